"""The region set of Avocado's stage 1."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from epimpute.errors import InputError
from epimpute.io.bed import read_bed
from epimpute.store import Store
from epimpute.training.avocado.config import AvocadoTrainingConfig
from epimpute.training.data import Block, genome_blocks

__all__ = ["stage1_blocks"]


def stage1_blocks(store: Store, training: AvocadoTrainingConfig, *, align: int,
                  rng: np.random.Generator) -> list[Block]:
    """The stage-1 region set as ``(contig, start_bin, end_bin)`` blocks in genome order.

    A BED file's regions are widened to whole multiples of ``align`` bins (the coarsest
    scale) and merged; otherwise the whole store, or random ``stage1_block_bins`` blocks
    adding up to ``stage1_max_bins``.
    """
    contig_bins = {c: store.n_bins(c) for c in store.contigs}
    if training.stage1_bed is not None:
        return _bed_blocks(Path(training.stage1_bed), contig_bins, bin_size=store.bin_size,
                           align=align)
    if sum(contig_bins.values()) <= training.stage1_max_bins:
        return [(c, 0, n) for c, n in contig_bins.items() if n > 0]
    size = max(align, training.stage1_block_bins // align * align)
    blocks = genome_blocks(contig_bins, block_bins=size)
    chosen, total = [], 0
    for i in rng.permutation(len(blocks)):
        if total >= training.stage1_max_bins:
            break
        chosen.append(int(i))
        total += blocks[i][2] - blocks[i][1]
    return [blocks[i] for i in sorted(chosen)]


def _bed_blocks(path: Path, contig_bins: dict[str, int], *, bin_size: int, align: int
                ) -> list[Block]:
    regions = read_bed(path, what="stage-1 regions")
    spans: dict[str, list[tuple[int, int]]] = {}
    for contig, start, end, number in zip(regions["chrom"], regions["start"], regions["end"],
                                          regions["line"]):
        if contig not in contig_bins:
            raise InputError(f"{path}: line {number} names contig '{contig}', which the store "
                             f"does not have")
        start, end = int(start), int(end)
        end_bin = -(-end // bin_size)  # first bin past the region
        first = start // bin_size // align * align
        last = min(contig_bins[contig], -(-end_bin // align) * align)
        if last > first:
            spans.setdefault(contig, []).append((first, last))
    blocks: list[Block] = []
    for contig in contig_bins:
        merged: list[list[int]] = []
        for first, last in sorted(spans.get(contig, [])):
            if merged and first <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], last)
            else:
                merged.append([first, last])
        blocks += [(contig, a, b) for a, b in merged]
    if not blocks:
        raise InputError(f"{path}: no regions on the store's contigs")
    return blocks

