"""Annotated regions (genes, promoters, enhancers) as per-bin coverage counts.

The region metrics of the ENCODE Imputation Challenge (``mseprom``, ``msegene``, ``mseenh``)
sum the squared error over the bins of every region and divide by the total number of region
bins, so a bin inside ``k`` overlapping regions counts ``k`` times. Here that is expressed as
a coverage array (regions per bin) used as weights. Bin ranges follow the challenge scorer,
with ``b = bin_size`` and integer division:

- gene body: bins ``[start // b, end // b + 1)``;
- promoter of a ``+`` gene: the ``upstream // b`` bins before ``start // b``;
  of a ``-`` gene: the ``upstream // b`` bins from ``end // b + 1`` on (2 kb: 80 bins of 25 bp);
- enhancer: bins ``[start // b, end // b + 1)`` of the BED12 span (blocks are ignored).

Ranges are clipped to the contig. Genes with a strand other than ``+`` / ``-`` have no promoter.

Distance-to-TSS strata: the TSS of a ``+`` gene is its ``start``, of a ``-`` gene ``end - 1``
(of an unstranded one, ``start``); a bin's distance is from its centre to the nearest TSS
on the contig, and its class the interval of :data:`TSS_EDGES` it falls in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from epimpute.io.bed import read_bed

__all__ = [
    "PROMOTER_UPSTREAM",
    "RegionSet",
    "enhancer_coverage",
    "gene_coverage",
    "promoter_coverage",
    "read_enhancers",
    "read_genes",
    "TSS_EDGES",
    "tss_classes",
    "tss_labels",
]

PROMOTER_UPSTREAM = 2000
"""Promoter length in bp upstream of the gene start, as in the challenge."""
TSS_EDGES = (1_000, 5_000, 20_000, 100_000)
"""Bounds in bp of the distance-to-TSS strata: < 1 kb, 1-5 kb, 5-20 kb, 20-100 kb, >= 100 kb."""


@dataclass(frozen=True)
class RegionSet:
    """Regions from a BED file, grouped by contig.

    Attributes
    ----------
    path
        The file they came from (for messages).
    by_contig
        Contig name to a frame with int64 ``start``, ``end`` and str ``strand`` columns.
    """

    path: str
    by_contig: dict[str, pd.DataFrame]

    def on(self, contig: str) -> pd.DataFrame:
        """The regions of one contig (an empty frame if it has none)."""
        empty = pd.DataFrame({"start": np.zeros(0, np.int64), "end": np.zeros(0, np.int64), "strand": []})
        return self.by_contig.get(contig, empty)

    def __len__(self) -> int:
        return sum(len(frame) for frame in self.by_contig.values())


def _group(path: str | os.PathLike[str], frame: pd.DataFrame) -> RegionSet:
    by_contig = {
        str(chrom): group[["start", "end", "strand"]].reset_index(drop=True)
        for chrom, group in frame.groupby("chrom", sort=False)
    }
    return RegionSet(str(path), by_contig)


def read_genes(path: str | os.PathLike[str]) -> RegionSet:
    """Read a genes BED (``chrom, start, end, id, score, strand``), plain or gzipped.

    Parameters
    ----------
    path
        Tab-separated BED6 or wider; ``track`` / ``browser`` / ``#`` lines are skipped.

    Returns
    -------
    RegionSet

    Raises
    ------
    InputError
        If the file is missing, unreadable, or a line is malformed.
    """
    return _group(path, read_bed(path, min_columns=6, what="genes"))


def read_enhancers(path: str | os.PathLike[str]) -> RegionSet:
    """Read an enhancers BED (BED12 or any BED with at least 3 columns), plain or gzipped.

    Parameters
    ----------
    path
        Tab-separated BED; only the first three columns are used.

    Returns
    -------
    RegionSet

    Raises
    ------
    InputError
        If the file is missing, unreadable, or a line is malformed.
    """
    return _group(path, read_bed(path, min_columns=3, what="enhancers"))


def _coverage(first: NDArray[np.int64], end: NDArray[np.int64], n_bins: int) -> NDArray[np.int32]:
    first = np.clip(first, 0, n_bins)
    end = np.clip(end, 0, n_bins)
    keep = end > first
    edges = np.bincount(first[keep], minlength=n_bins + 1) - np.bincount(end[keep], minlength=n_bins + 1)
    return np.cumsum(edges[:n_bins]).astype(np.int32)


def gene_coverage(genes: RegionSet, contig: str, *, n_bins: int, bin_size: int) -> NDArray[np.int32]:
    """Number of gene bodies covering each bin of ``contig``, shape ``(n_bins,)``."""
    frame = genes.on(contig)
    return _coverage(frame["start"].to_numpy() // bin_size, frame["end"].to_numpy() // bin_size + 1, n_bins)


def promoter_coverage(
    genes: RegionSet, contig: str, *, n_bins: int, bin_size: int, upstream: int = PROMOTER_UPSTREAM
) -> NDArray[np.int32]:
    """Number of promoters (``upstream`` bp before each strand-aware gene start) per bin.

    Returns
    -------
    numpy.ndarray
        int32 array of shape ``(n_bins,)``.
    """
    frame = genes.on(contig)
    width = upstream // bin_size
    strand = frame["strand"].to_numpy()
    plus = strand == "+"
    minus = strand == "-"
    start_bin = frame["start"].to_numpy()[plus] // bin_size
    after_end = frame["end"].to_numpy()[minus] // bin_size + 1
    first = np.concatenate((start_bin - width, after_end))
    end = np.concatenate((start_bin, after_end + width))
    return _coverage(first, end, n_bins)


def enhancer_coverage(enhancers: RegionSet, contig: str, *, n_bins: int, bin_size: int) -> NDArray[np.int32]:
    """Number of enhancers covering each bin of ``contig``, shape ``(n_bins,)``."""
    frame = enhancers.on(contig)
    return _coverage(frame["start"].to_numpy() // bin_size, frame["end"].to_numpy() // bin_size + 1, n_bins)


def tss_labels(edges: tuple[int, ...] = TSS_EDGES) -> list[str]:
    """Stratum names of the distance classes: ``tss<1kb``, ``tss1-5kb``, ..., ``tss>=100kb``."""
    kb = [f"{e / 1000:g}" for e in edges]
    return ([f"tss<{kb[0]}kb"] + [f"tss{a}-{b}kb" for a, b in zip(kb, kb[1:])]
            + [f"tss>={kb[-1]}kb"])


def tss_classes(genes: RegionSet, contig: str, *, n_bins: int, bin_size: int,
                edges: tuple[int, ...] = TSS_EDGES) -> NDArray[np.uint8]:
    """Distance class of each bin of ``contig`` to the nearest TSS (index into
    :func:`tss_labels`); bins of a contig without genes are in the last class.

    Returns
    -------
    numpy.ndarray
        uint8 array of shape ``(n_bins,)``.
    """
    frame = genes.on(contig)
    minus = frame["strand"].to_numpy() == "-"
    tss = np.sort(np.where(minus, frame["end"].to_numpy() - 1, frame["start"].to_numpy()))
    if tss.size == 0:
        return np.full(n_bins, len(edges), dtype=np.uint8)
    centre = np.arange(n_bins, dtype=np.float64) * bin_size + bin_size / 2
    right = np.searchsorted(tss, centre)
    after = tss[np.minimum(right, tss.size - 1)]
    before = tss[np.maximum(right - 1, 0)]
    distance = np.minimum(np.abs(after - centre), np.abs(centre - before))
    return np.searchsorted(np.asarray(edges, dtype=np.float64), distance,
                           side="right").astype(np.uint8)
