"""The rows of a downstream task: genomic windows with an id (a gene, or a fixed tile).

- Genes (a BED with a name column, and a strand in column 6 when there is one): the
  *promoter* window is ``[TSS - promoter, TSS + promoter)`` with the TSS at ``start`` on
  ``+`` (or no strand) and at ``end - 1`` on ``-``; the *body* window is ``[start, end)``.
- Tiles: ``[i * tile, (i + 1) * tile)`` over each contig (the last one clipped to the
  contig's end), with ids ``chrom:start-end``.

A *flank* of a window is the window of the same width shifted by whole widths, downstream
being the gene's direction (``+`` for tiles and genes without a strand).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from epimpute.errors import InputError
from epimpute.io.bed import read_bed

__all__ = ["REGIONS", "Windows", "gene_windows", "tile_windows"]

log = logging.getLogger(__name__)

REGIONS = ("promoter", "body", "both")


@dataclass(frozen=True)
class Windows:
    """Windows in row order.

    Attributes
    ----------
    ids
        Row names (gene ids or ``chrom:start-end``).
    chrom
        Contig of each row.
    start, end
        int64 bp, 0-based, end exclusive.
    strand
        int8: +1, -1, or 0 for none.
    """

    ids: np.ndarray
    chrom: np.ndarray
    start: np.ndarray
    end: np.ndarray
    strand: np.ndarray

    def __len__(self) -> int:
        return int(self.ids.size)

    def take(self, rows: np.ndarray) -> Windows:
        """The windows at ``rows`` (indices or a boolean mask), in that order."""
        return Windows(self.ids[rows], self.chrom[rows], self.start[rows], self.end[rows],
                       self.strand[rows])

    def shifted(self, steps: int) -> Windows:
        """Each window moved by ``steps`` of its own width in its gene's direction."""
        width = self.end - self.start
        direction = np.where(self.strand < 0, -1, 1)
        offset = steps * width * direction
        return Windows(self.ids, self.chrom, self.start + offset, self.end + offset,
                       self.strand)


def gene_windows(path: str | os.PathLike[str], *, region: str = "promoter",
                 promoter: int = 2000) -> dict[str, Windows]:
    """Promoter and/or body windows of the genes of a BED file.

    Parameters
    ----------
    path
        BED with at least 4 columns (chrom, start, end, name); a 6th gives the strand.
        Plain or gzipped. A name seen twice keeps its first line.
    region
        ``promoter``, ``body`` or ``both``.
    promoter
        Half width of the promoter window in bp.

    Returns
    -------
    dict[str, Windows]
        ``{"promoter": ..., "body": ...}`` (the ones asked for), rows in the same order.

    Raises
    ------
    InputError
        If the file is unreadable or malformed, has no regions, or ``region`` or
        ``promoter`` is invalid.
    """
    if region not in REGIONS:
        raise InputError(f"--region must be one of {', '.join(REGIONS)}, got {region!r}")
    if isinstance(promoter, bool) or not isinstance(promoter, int) or promoter < 1:
        raise InputError(f"--promoter must be a positive number of bp, got {promoter!r}")
    try:
        frame = read_bed(path, min_columns=6, what="genes", names=True)
    except InputError:
        frame = read_bed(path, min_columns=4, what="genes", names=True)
    if frame.empty:
        raise InputError(f"{path}: the genes BED holds no regions")
    first = ~frame["name"].duplicated().to_numpy()
    if not first.all():
        log.info("%s: %d repeated gene names keep their first line", path, int((~first).sum()))
        frame = frame[first]
    strand = frame["strand"].map({"+": 1, "-": -1}).fillna(0).to_numpy(np.int8)
    ids = frame["name"].to_numpy(dtype=object)
    chrom = frame["chrom"].to_numpy(dtype=object)
    start, end = frame["start"].to_numpy(np.int64), frame["end"].to_numpy(np.int64)
    out = {}
    if region in ("promoter", "both"):
        tss = np.where(strand < 0, end - 1, start)
        out["promoter"] = Windows(ids, chrom, tss - promoter, tss + promoter, strand)
    if region in ("body", "both"):
        out["body"] = Windows(ids, chrom, start, np.maximum(end, start + 1), strand)
    return out


def tile_windows(contigs: Mapping[str, int], *, tile: int) -> Windows:
    """Tiles of ``tile`` bp over every contig (``{name: length in bp}``), in order.

    Raises
    ------
    InputError
        If ``tile`` is not a positive integer.
    """
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 1:
        raise InputError(f"--tile must be a positive number of bp, got {tile!r}")
    chrom, start, end = [], [], []
    for name, length in contigs.items():
        lo = np.arange(0, int(length), tile, dtype=np.int64)
        chrom.append(np.full(lo.size, name, dtype=object))
        start.append(lo)
        end.append(np.minimum(lo + tile, int(length)))
    chroms = np.concatenate(chrom) if chrom else np.zeros(0, dtype=object)
    starts = np.concatenate(start) if start else np.zeros(0, np.int64)
    ends = np.concatenate(end) if end else np.zeros(0, np.int64)
    ids = np.array([f"{c}:{s}-{e}" for c, s, e in zip(chroms, starts, ends)], dtype=object)
    return Windows(ids, chroms, starts, ends, np.zeros(ids.size, np.int8))
