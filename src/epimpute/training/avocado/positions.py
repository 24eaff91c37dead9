"""The positions Avocado trains on: their signal, factor rows and validation entries."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from epimpute.models.avocado import AvocadoConfig, GenomeFactors
from epimpute.store import Store
from epimpute.training.data import Block

__all__ = ["PositionData", "compact_factors", "load_positions",
           "whole_contig_factors"]


@dataclass
class PositionData:
    """Observed signal of a set of positions, with what is hidden for validation.

    Attributes
    ----------
    values
        ``(N, T)`` float32 signal of the ``T`` training tracks at ``N`` positions.
    rows
        For each scale, ``(N,)`` long row of each position in that scale's factor table;
        ``None`` when the positions are a whole contig (row = bin // scale).
    scales
        Bins per row at each scale.
    hidden
        ``(N,)`` int16 track hidden for validation at each position, ``-1`` for none.
    """

    values: torch.Tensor
    rows: list[torch.Tensor] | None
    scales: tuple[int, ...]
    hidden: torch.Tensor

    def __len__(self) -> int:
        return self.values.shape[0]

    @property
    def n_tracks(self) -> int:
        return self.values.shape[1]

    def scale_rows(self, positions: torch.Tensor) -> list[torch.Tensor]:
        """Rows of ``positions`` in each scale's table."""
        if self.rows is None:
            return [torch.div(positions, s, rounding_mode="floor") for s in self.scales]
        return [r[positions] for r in self.rows]

    def table_rows(self) -> list[int]:
        """Rows each scale's table needs."""
        if self.rows is None:
            return [-(-len(self) // s) for s in self.scales]
        return [int(r.max()) + 1 if len(r) else 0 for r in self.rows]


def _hide_blocks(keys: np.ndarray, n_tracks: int, *, fraction: float,
                 rng: np.random.Generator) -> np.ndarray:
    """One hidden track for a random ``fraction`` of the blocks named by ``keys``."""
    hidden = np.full(keys.shape[0], -1, dtype=np.int16)
    if fraction <= 0 or n_tracks < 2 or keys.size == 0:
        return hidden
    blocks, block_of = np.unique(keys, return_inverse=True)
    n_chosen = min(blocks.size, max(1, int(round(fraction * blocks.size))))
    chosen = np.full(blocks.size, -1, dtype=np.int16)
    picked = rng.choice(blocks.size, size=n_chosen, replace=False)
    chosen[picked] = rng.integers(n_tracks, size=picked.size)
    return chosen[block_of.reshape(-1)]


def load_positions(
    store: Store,
    rows: Sequence[int],
    blocks: Sequence[Block],
    *,
    scales: Sequence[int],
    hide_fraction: float = 0.0,
    hide_block_bins: int = 200,
    rng: np.random.Generator | None = None,
    whole_contig: bool = False,
) -> PositionData:
    """Read the signal of ``blocks`` and number their factor rows at every scale.

    Rows are numbered compactly over the blocks: a contig covered whole gets the rows
    ``bin // scale`` shifted by the rows of the contigs before it. With ``whole_contig``
    (one block covering a contig) the rows are left implicit. A ``hide_fraction`` of the
    ``hide_block_bins``-bin blocks get one track hidden for validation.
    """
    n_total = sum(end - start for _, start, end in blocks)
    values = np.empty((n_total, len(rows)), dtype=np.float32)
    contig_ids = {c: i for i, c in enumerate(dict.fromkeys(c for c, _, _ in blocks))}
    contig_of = np.empty(n_total, dtype=np.int64)
    bins = np.empty(n_total, dtype=np.int64)
    at = 0
    for contig, start, end in blocks:
        n = end - start
        values[at:at + n] = store.read(contig, start, end, tracks=list(rows)).T
        contig_of[at:at + n] = contig_ids[contig]
        bins[at:at + n] = np.arange(start, end)
        at += n
    hidden = _hide_blocks((contig_of << 40) | (bins // hide_block_bins), len(rows),
                          fraction=hide_fraction, rng=rng or np.random.default_rng(0))
    scale_rows: list[torch.Tensor] | None = None
    if not whole_contig:
        scale_rows = []
        for scale in scales:
            _, inverse = np.unique((contig_of << 40) | (bins // scale), return_inverse=True)
            scale_rows.append(torch.from_numpy(inverse.astype(np.int64).reshape(-1)))
    return PositionData(torch.from_numpy(values), scale_rows, tuple(scales),
                        torch.from_numpy(hidden))


def whole_contig_factors(genome: GenomeFactors, data: PositionData, blocks: Sequence[Block],
                          store: Store, config: AvocadoConfig) -> dict[str, GenomeFactors]:
    """Factors of the contigs that the stage-1 blocks cover whole, cut out of ``genome``."""
    out: dict[str, GenomeFactors] = {}
    at = 0
    for contig, start, end in blocks:
        n = end - start
        n_bins = store.n_bins(contig)
        if start == 0 and end == n_bins:
            part = GenomeFactors.for_contig(n_bins, config, initialise=False)
            with torch.no_grad():
                for k, table in enumerate(part.tables):
                    first = int(data.scale_rows(torch.tensor([at]))[k])
                    table.weight.copy_(genome.tables[k].weight[first:first + table.num_embeddings])
            out[contig] = part
        at += n
    return out


def compact_factors(factors_of: Callable[[str], GenomeFactors], blocks: Sequence[Block],
                    config: AvocadoConfig) -> GenomeFactors:
    """Contig factors (``factors_of(contig)``) cut down to ``blocks``, rows numbered as
    :func:`load_positions` numbers them (the inverse of :func:`whole_contig_factors`)."""
    contig_ids = {c: i for i, c in enumerate(dict.fromkeys(c for c, _, _ in blocks))}
    tables: list[torch.Tensor] = []
    for k, scale in enumerate(config.scales):
        keys = np.concatenate([
            (contig_ids[c] << 40) | np.arange(start // scale, (end - 1) // scale + 1)
            for c, start, end in blocks])
        keys = np.unique(keys)
        parts = []
        for contig, cid in contig_ids.items():
            rows = keys[(keys >> 40) == cid] & ((1 << 40) - 1)
            weight = factors_of(contig).tables[k].weight.detach().cpu()
            parts.append(weight[torch.from_numpy(rows)])
        tables.append(torch.cat(parts))
    genome = GenomeFactors([t.shape[0] for t in tables], config, sparse=True,
                           initialise=False)
    with torch.no_grad():
        for table, values in zip(genome.tables, tables):
            table.weight.copy_(values)
    return genome
