"""Decoder layers of Avocado: per-member linear layers and the dropouts it trains with."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import skip_init

__all__ = ["FastDropout", "MemberLinear", "RowDropout", "check_member"]


class FastDropout(nn.Module):
    """Dropout whose mask comes from random 16-bit integers.

    Same behaviour as :class:`torch.nn.Dropout` (each value zeroed with probability ``p``,
    the rest scaled by ``1 / (1 - p)``, identity in eval mode), with ``p`` rounded to a
    multiple of 1/65536; drawing 16 random bits per value instead of a Bernoulli variate
    makes it several times faster on CPUs, where dropout would otherwise cost a quarter
    of Avocado's training time. Uses torch's global generator, as ``nn.Dropout`` does.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError("dropout probability must be in [0, 1)")
        self.p = p
        self.threshold = round(p * 65536) - 32768

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        n = x.numel()
        bits = torch.randint(-2**31, 2**31, ((n + 1) // 2,), dtype=torch.int32,
                             device=x.device).view(torch.int16)[:n].view(x.shape)
        # a bool mask (1 byte a value) is all the backward pass keeps, not a float one
        return x.masked_fill(bits < self.threshold, 0.0).mul_(1.0 / (1.0 - self.p))

    def extra_repr(self) -> str:
        return f"p={self.p}"


class RowDropout(nn.Module):
    """Zero whole rows (vectors along the last dimension) with probability ``p``, scaling
    the rest by ``1 / (1 - p)``."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = (torch.rand(*x.shape[:-1], 1, device=x.device) >= self.p).to(x.dtype)
        return x * keep.mul_(1.0 / (1.0 - self.p))


class MemberLinear(nn.Module):
    """One linear layer per ensemble member: ``(M, ..., in) -> (M, ..., out)``.

    ``weight`` is ``(M, out, in)`` and ``bias`` ``(M, out)``; slice ``m`` is initialised like
    a :class:`torch.nn.Linear` (members in turn, weight then bias), so a one-member layer
    draws exactly what ``nn.Linear`` draws.
    """

    def __init__(self, members: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(members, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(members, out_features))
        with torch.no_grad():
            for m in range(members):
                layer = skip_init(nn.Linear, in_features, out_features)
                layer.reset_parameters()
                self.weight[m].copy_(layer.weight)
                self.bias[m].copy_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(x.shape[0], -1, x.shape[-1])
        out = torch.baddbmm(self.bias.unsqueeze(1), flat, self.weight.transpose(1, 2))
        return out.view(*x.shape[:-1], out.shape[-1])

    def extra_repr(self) -> str:
        members, out_features, in_features = self.weight.shape
        return f"members={members}, in_features={in_features}, out_features={out_features}"


def check_member(m: int, members: int) -> None:
    if not 0 <= m < members:
        raise IndexError(f"member {m} of a model with {members} member(s)")

