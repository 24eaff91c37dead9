"""Optimisers of epimpute's training loops."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

__all__ = ["LazyAdam"]


class LazyAdam(torch.optim.Optimizer):
    """Adam that, for sparse gradients, updates only the rows a step touched.

    Dense parameters get AdamW (decoupled ``weight_decay``). Parameters with sparse
    gradients (embeddings built with ``sparse=True``) get Adam moments, on the touched rows
    only, with a step count per row, so the bias correction of a row depends on how often
    it was updated (they take no weight decay). Untouched rows do
    not move, which keeps a step's cost proportional to the batch, not to the genome.

    Parameters
    ----------
    params
        Parameters or parameter groups (groups may override ``lr`` and ``weight_decay``).
    lr, betas, eps
        As in :class:`torch.optim.Adam`.
    weight_decay
        Decoupled weight decay of dense parameters.
    """

    def __init__(self, params: Iterable[Any], *, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    self._sparse_step(p, group)
                else:
                    self._dense_step(p, group)
        return loss

    def _dense_step(self, p: torch.Tensor, group: dict[str, Any]) -> None:
        state = self.state[p]
        if not state:
            state["step"] = torch.zeros((), dtype=torch.float64)
            state["exp_avg"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
        beta1, beta2 = group["betas"]
        state["step"] += 1
        t = float(state["step"])
        if group["weight_decay"]:
            p.mul_(1.0 - group["lr"] * group["weight_decay"])
        state["exp_avg"].lerp_(p.grad, 1.0 - beta1)
        state["exp_avg_sq"].mul_(beta2).addcmul_(p.grad, p.grad, value=1.0 - beta2)
        denominator = (state["exp_avg_sq"] / (1.0 - beta2 ** t)).sqrt_().add_(group["eps"])
        p.addcdiv_(state["exp_avg"], denominator, value=-group["lr"] / (1.0 - beta1 ** t))

    def _sparse_step(self, p: torch.Tensor, group: dict[str, Any]) -> None:
        state = self.state[p]
        if not state:
            state["row_steps"] = torch.zeros(p.shape[0], dtype=torch.int32, device=p.device)
            state["exp_avg"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
        beta1, beta2 = group["betas"]
        rows, values = _distinct_rows(p.grad)
        current = p.index_select(0, rows)
        steps = state["row_steps"].index_select(0, rows) + 1
        state["row_steps"].index_copy_(0, rows, steps)
        exp_avg = state["exp_avg"].index_select(0, rows).lerp_(values, 1.0 - beta1)
        exp_avg_sq = state["exp_avg_sq"].index_select(0, rows).mul_(beta2)
        exp_avg_sq.addcmul_(values, values, value=1.0 - beta2)
        state["exp_avg"].index_copy_(0, rows, exp_avg)
        state["exp_avg_sq"].index_copy_(0, rows, exp_avg_sq)
        t = steps.to(p.dtype).unsqueeze(1)
        correction1 = 1.0 - torch.pow(beta1, t)
        correction2 = 1.0 - torch.pow(beta2, t)
        update = (exp_avg / correction1) / ((exp_avg_sq / correction2).sqrt_().add_(group["eps"]))
        # rows are distinct: a copy is exact, and much faster than index_add_ with alpha
        p.index_copy_(0, rows, current.sub_(update, alpha=group["lr"]))


def _distinct_rows(grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows and values of a sparse row gradient, each row once.

    Gradients from :class:`~epimpute.models.avocado.GenomeFactors` already list distinct
    rows in increasing order (autograd drops the flag that says so); checking that is
    linear, coalescing sorts.
    """
    if not grad.is_coalesced():
        rows = grad._indices()[0]
        if rows.numel() < 2 or bool((rows[1:] > rows[:-1]).all()):
            return rows, grad._values()
        grad = grad.coalesce()
    return grad.indices()[0], grad.values()

