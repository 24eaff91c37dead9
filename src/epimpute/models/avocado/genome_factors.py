"""Genome factors: the per-position tables of Avocado, one per scale."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import nn
from torch.nn.utils import skip_init

from epimpute.errors import InputError
from epimpute.models.avocado.config import AvocadoConfig
from epimpute.models.avocado.layers import check_member

__all__ = ["GenomeFactors", "factors_from_state", "scale_rows"]


def scale_rows(n_bins: int, scales: Sequence[int]) -> list[int]:
    """Rows of each scale's table for a contig of ``n_bins`` bins."""
    return [-(-n_bins // s) for s in scales]


class _GatherRows(torch.autograd.Function):
    """``weight[rows]`` whose gradient is a coalesced sparse tensor over the distinct rows.

    Rows that arrive sorted (as training batches do) are deduplicated in linear time and,
    when all distinct, their gradient is passed on without any scatter.
    """

    @staticmethod
    def forward(ctx: Any, weight: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        in_order = bool((rows[1:] >= rows[:-1]).all()) if rows.numel() > 1 else True
        if in_order:
            unique, inverse = torch.unique_consecutive(rows, return_inverse=True)
        else:
            unique, inverse = torch.unique(rows, sorted=True, return_inverse=True)
        ctx.save_for_backward(unique, inverse)
        ctx.shape = weight.shape
        ctx.passthrough = in_order and unique.numel() == rows.numel()
        return weight.index_select(0, rows)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        unique, inverse = ctx.saved_tensors
        if ctx.passthrough:
            values = grad.contiguous()
        else:
            values = grad.new_zeros(unique.numel(), grad.shape[1]).index_add_(0, inverse, grad)
        sparse = torch.sparse_coo_tensor(unique.unsqueeze(0), values, ctx.shape,
                                         is_coalesced=True, check_invariants=False)
        return sparse, None


class GenomeFactors(nn.Module):
    """Genome factors of one stretch of genome: one table per scale.

    For a contig, row ``r`` of table ``k`` holds the factors of bins
    ``[r * scales[k], (r + 1) * scales[k])``: ``members * genome_factors[k]`` values, member
    by member. During training on a set of regions the rows
    are numbered compactly instead (see :mod:`epimpute.training.avocado`).

    Parameters
    ----------
    rows
        Rows of each table.
    config
        A resolved configuration (sizes and scales).
    sparse
        Produce sparse gradients (only the rows a batch touches), for training.
    n_bins
        Bins of the contig the factors cover (``rows[0] * scales[0]`` when not given);
        recorded so imputation can check a region lies inside the contig.
    initialise
        Draw initial values (uniform in +-0.05, from torch's global generator); without it
        the tables are left uninitialised, to be loaded.
    """

    def __init__(self, rows: Sequence[int], config: AvocadoConfig, *, sparse: bool = False,
                 n_bins: int | None = None, initialise: bool = True) -> None:
        super().__init__()
        config = config._resolved()
        if len(rows) != len(config.scales):
            raise ValueError("one row count per scale is needed")
        self.config = config
        self.scales = config.scales
        self.members = config.members
        self.sparse = sparse
        self.tables = nn.ModuleList(
            skip_init(nn.Embedding, int(n), config.members * size)
            for n, size in zip(rows, config.genome_factors)
        )
        if initialise:
            for table in self.tables:
                nn.init.uniform_(table.weight, -0.05, 0.05)
        n_bins = int(rows[0]) * self.scales[0] if n_bins is None else int(n_bins)
        self.register_buffer("n_bins", torch.tensor(n_bins, dtype=torch.long))

    @classmethod
    def for_contig(cls, n_bins: int, config: AvocadoConfig, *, sparse: bool = False,
                   initialise: bool = True) -> GenomeFactors:
        """Factors of a whole contig of ``n_bins`` bins."""
        return cls(scale_rows(n_bins, config.scales), config, sparse=sparse, n_bins=n_bins,
                   initialise=initialise)

    @property
    def size(self) -> int:
        """``M * G``: features per bin, all members together."""
        return sum(table.embedding_dim for table in self.tables)

    def _by_member(self, parts: list[torch.Tensor]) -> torch.Tensor:
        """Per-scale ``(N, M * f_k)`` blocks to member-major ``(N, M * G)`` features."""
        if self.members == 1:
            return torch.cat(parts, dim=1)
        n = parts[0].shape[0]
        return torch.cat([p.view(n, self.members, -1) for p in parts], dim=2).view(n, -1)

    def forward(self, rows: Sequence[torch.Tensor]) -> torch.Tensor:
        """Features of ``N`` positions given their ``(N,)`` row at each scale:
        ``(N, M * G)``, member-major."""
        if self.sparse and torch.is_grad_enabled():
            parts = [_GatherRows.apply(table.weight, r) for table, r in zip(self.tables, rows)]
        else:
            parts = [table.weight.index_select(0, r) for table, r in zip(self.tables, rows)]
        return self._by_member(parts)

    def span(self, start: int, end: int) -> torch.Tensor:
        """Features of contig bins ``start .. end`` (end exclusive): ``(end - start, M * G)``,
        member-major."""
        if not 0 <= start <= end <= int(self.n_bins):
            raise IndexError(f"bins {start}..{end} are outside 0..{int(self.n_bins)}")
        parts = []
        for table, scale in zip(self.tables, self.scales):
            if scale == 1:
                parts.append(table.weight[start:end])
                continue
            first, last = start // scale, -(-end // scale)
            block = table.weight[first:last].repeat_interleave(scale, dim=0)
            parts.append(block[start - first * scale:end - first * scale])
        return self._by_member(parts)

    def parameter_count(self) -> int:
        """Number of learnt values (all scales and members)."""
        return sum(table.weight.numel() for table in self.tables)

    def member(self, m: int) -> GenomeFactors:
        """Member ``m``'s factors alone, as a one-member copy."""
        check_member(m, self.members)
        config = replace(self.config, members=1)
        part = GenomeFactors([t.num_embeddings for t in self.tables], config,
                             n_bins=int(self.n_bins), initialise=False)
        with torch.no_grad():
            for table, size, source in zip(part.tables, config.genome_factors, self.tables):
                table.weight.copy_(source.weight[:, m * size:(m + 1) * size])
        return part


def factors_from_state(state: dict[str, torch.Tensor], config: AvocadoConfig) -> GenomeFactors:
    """Rebuild a contig's :class:`GenomeFactors` from its state_dict."""
    try:
        rows = [int(state[f"tables.{k}.weight"].shape[0]) for k in range(len(config.scales))]
        factors = GenomeFactors(rows, config, n_bins=int(state["n_bins"]), initialise=False)
        factors.load_state_dict(state)
    except (KeyError, RuntimeError) as error:
        raise InputError(f"genome factors do not match the model's configuration ({error})"
                         ) from None
    return factors
