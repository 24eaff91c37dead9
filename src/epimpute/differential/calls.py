"""Differential peaks between two cell types from replicate tracks, tested with PyDESeq2.

1. Consensus peaks: :func:`epimpute.evaluation.peaks.call_peaks` on each cell type's
   replicate mean (divided by the replicate store's scale, i.e. back to ``-log10 p``); the
   peaks of both are merged where they overlap or touch.
2. Counts: each replicate's counts summed over each consensus peak's bins.
3. PyDESeq2 (size factors, parametric dispersion trend, Wald test) with the design
   ``~condition``; ``log2FoldChange`` is ``log2(second / first)`` cell type, and ``padj``
   is Benjamini-Hochberg adjusted after DESeq2's independent filtering.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from epimpute.errors import InputError
from epimpute.evaluation.peaks import DEFAULT_PEAK_PARAMS, PeakParams, Peaks, call_peaks

__all__ = ["PeakTable", "consensus_peaks", "deseq_table", "merge_intervals", "peak_counts"]


@dataclass(frozen=True)
class PeakTable:
    """Intervals of one contig, sorted and disjoint, in bp (0-based, half-open)."""

    contig: str
    start: NDArray[np.int64]
    end: NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.start.size)


def consensus_peaks(signals: Sequence[NDArray[np.floating]], *, bin_size: int, length: int,
                    contig: str, params: PeakParams = DEFAULT_PEAK_PARAMS) -> PeakTable:
    """Union of the peaks called on each signal (``-log10 p`` scale), overlapping or touching
    peaks merged.

    Parameters
    ----------
    signals
        Arrays of shape ``(n_bins,)``, one per cell type, in ``-log10 p``.
    bin_size
        Bin width in bp.
    length
        Contig length in bp.
    contig
        Contig name.
    params
        Peak-calling thresholds.

    Returns
    -------
    PeakTable
    """
    called: list[Peaks] = [call_peaks(s, bin_size=bin_size, length=length, contig=contig,
                                      params=params, scale="log10p") for s in signals]
    return merge_intervals(contig, np.concatenate([p.start for p in called]),
                           np.concatenate([p.end for p in called]))


def merge_intervals(contig: str, start: NDArray[np.integer], end: NDArray[np.integer]) -> PeakTable:
    """Sort intervals and merge those that overlap or touch."""
    start, end = np.asarray(start, dtype=np.int64), np.asarray(end, dtype=np.int64)
    if start.size == 0:
        return PeakTable(contig, start, end)
    order = np.argsort(start, kind="stable")
    start, end = start[order], end[order]
    reach = np.maximum.accumulate(end)
    first = np.flatnonzero(np.concatenate(([True], start[1:] > reach[:-1])))
    last = np.concatenate((first[1:] - 1, [start.size - 1]))
    return PeakTable(contig, start[first], reach[last])


def peak_counts(values: NDArray[np.floating], peaks: PeakTable, *, bin_size: int) -> NDArray[np.int64]:
    """Sum of each row of ``values`` (shape ``(n_samples, n_bins)``) over each peak's bins.

    Returns
    -------
    numpy.ndarray
        int64 array of shape ``(n_samples, n_peaks)``.
    """
    x = np.asarray(values, dtype=np.float64)
    first = peaks.start // bin_size
    end = np.minimum(-(-peaks.end // bin_size), x.shape[1])
    total = np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(x, axis=1)], axis=1)
    return np.rint(total[:, end] - total[:, first]).astype(np.int64)


def deseq_table(counts: NDArray[np.integer], conditions: Sequence[str], *,
                first: str, second: str, fdr: float = 0.05) -> pd.DataFrame:
    """PyDESeq2's Wald test of ``second`` against ``first`` for each region.

    Parameters
    ----------
    counts
        Array of shape ``(n_samples, n_regions)`` of counts.
    conditions
        Cell type of each sample (``first`` or ``second``, at least 2 samples each).
    first, second
        The reference and the compared cell type.
    fdr
        False discovery rate of DESeq2's independent filtering.

    Returns
    -------
    pandas.DataFrame
        One row per region: ``baseMean``, ``log2FC``, ``pvalue``, ``padj`` (NaN where DESeq2
        gives none, e.g. regions without counts).
    """
    from pydeseq2.dds import DeseqDataSet
    from pydeseq2.ds import DeseqStats

    x = np.asarray(counts, dtype=np.int64)
    labels = list(conditions)
    for name in (first, second):
        if labels.count(name) < 2:
            raise InputError(f"cell type {name!r} has {labels.count(name)} replicate(s); "
                             "the test needs at least 2")
    samples = [f"s{i}" for i in range(x.shape[0])]
    regions = [f"r{j}" for j in range(x.shape[1])]
    covered = x.sum(axis=0) > 0
    table = pd.DataFrame({"baseMean": 0.0, "log2FC": np.nan, "pvalue": np.nan, "padj": np.nan},
                         index=regions)
    if covered.sum() < 2:
        return table.reset_index(drop=True)
    data = pd.DataFrame(x[:, covered], index=samples, columns=np.asarray(regions)[covered])
    meta = pd.DataFrame({"condition": labels}, index=samples)
    dds = DeseqDataSet(counts=data, metadata=meta, design="~condition", refit_cooks=True,
                       n_cpus=1, quiet=True)
    dds.deseq2()
    stats = DeseqStats(dds, contrast=["condition", second, first], alpha=fdr, n_cpus=1,
                       quiet=True)
    stats.summary()
    result = stats.results_df
    table.loc[result.index, "baseMean"] = result["baseMean"].to_numpy()
    table.loc[result.index, "log2FC"] = result["log2FoldChange"].to_numpy()
    table.loc[result.index, "pvalue"] = result["pvalue"].to_numpy()
    table.loc[result.index, "padj"] = result["padj"].to_numpy()
    return table.reset_index(drop=True)
