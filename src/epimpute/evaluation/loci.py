"""Example windows for the report: a cell-type-specific peak, and the best, median and
worst windows of a model with a predicted sd (drawn with its +-1 sd band)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from epimpute.evaluation.peaks import PeakParams, call_peaks, peak_mask
from epimpute.evaluation.plots import Locus
from epimpute.evaluation.sources import PredictionDir, TruthSource, read_truth
from epimpute.io.trackkey import spread_key

__all__ = ["LOCUS_BP", "error_loci", "specific_peak_locus"]

LOCUS_BP = 20_000
"""Width of an example window."""

CountsOf = Callable[[str], "NDArray[np.integer] | None"]
"""Specificity counts of a contig (None when there are none)."""


def specific_peak_locus(store: TruthSource, sources: Mapping[str, PredictionDir], target: Any,
                        counts_of: CountsOf, *, n_cells: int, bin_size: int,
                        params: PeakParams) -> Locus | None:
    """A window centred on the strongest of the track's most cell-type-specific peaks.

    ``target`` has ``key``, ``row``, ``models`` and ``contigs``; ``n_cells`` is the number
    of cell types of its assay. None when the track has no peak.
    """
    lengths = store.contigs
    half = max(1, LOCUS_BP // bin_size // 2)
    for contig in target.contigs:
        truth = read_truth(store, contig, target.row)
        peaks = call_peaks(truth, bin_size=bin_size, length=lengths[contig], contig=contig,
                           params=params)
        if not len(peaks):
            continue
        counts = counts_of(contig)
        summit_bins = peaks.summit // bin_size
        specificity = (np.asarray(counts[summit_bins]) if counts is not None
                       else np.ones(len(peaks), dtype=np.uint16))
        candidates = np.flatnonzero(specificity == specificity.min())
        best = candidates[np.argmax(peaks.score[candidates])]
        centre = int(summit_bins[best])
        note = (f"centre peak observed in {int(specificity[best])} of {n_cells} cell types"
                if counts is not None else "")
        first, last = max(0, centre - half), min(truth.size, centre + half)
        return Locus(
            key=target.key, contig=contig, start_bin=first, bin_size=bin_size,
            truth=truth[first:last].copy(),
            peaks=peak_mask(peaks, n_bins=truth.size, bin_size=bin_size)[first:last],
            specificity=None if counts is None else np.asarray(counts[first:last]).copy(),
            predictions={model: sources[model].read(target.key, contig, length=lengths[contig],
                                                    bin_size=bin_size)[first:last]
                         for model in target.models},
            note=note,
        )
    return None


def error_loci(store: TruthSource, source: PredictionDir, target: Any, counts_of: CountsOf, *,
               bin_size: int, params: PeakParams) -> list[Locus]:
    """The best, median and worst window by ``source``'s MSE, with its +-1 sd band.

    The track is cut into windows of :data:`LOCUS_BP`; windows holding an observed peak
    are ranked (every window when none has one). ``source`` must hold the track's sd.
    """
    lengths = store.contigs
    width = max(1, LOCUS_BP // bin_size)
    candidates: list[tuple[float, bool, str, int]] = []
    for contig in target.contigs:
        truth = read_truth(store, contig, target.row)
        mean = source.read(target.key, contig, length=lengths[contig], bin_size=bin_size)
        peaks = peak_mask(call_peaks(truth, bin_size=bin_size, length=lengths[contig],
                                     contig=contig, params=params),
                          n_bins=truth.size, bin_size=bin_size)
        for lo in range(0, truth.size - width + 1, width):
            error = float(np.mean((truth[lo:lo + width] - mean[lo:lo + width]) ** 2))
            candidates.append((error, bool(peaks[lo:lo + width].any()), contig, lo))
    with_peak = [c for c in candidates if c[1]] or candidates
    if not with_peak:
        return []
    ranked = sorted(with_peak, key=lambda c: (c[0], c[2], c[3]))
    chosen = {"best": ranked[0], "median": ranked[len(ranked) // 2], "worst": ranked[-1]}
    out = []
    contig_data: dict[str, tuple[NDArray[np.floating], NDArray[np.bool_]]] = {}
    for label, (error, _, contig, lo) in chosen.items():
        if contig not in contig_data:  # the windows often share a contig: call its peaks once
            truth = read_truth(store, contig, target.row)
            contig_data[contig] = (truth, peak_mask(
                call_peaks(truth, bin_size=bin_size, length=lengths[contig], contig=contig,
                           params=params), n_bins=truth.size, bin_size=bin_size))
        truth, peaks = contig_data[contig]
        read = {"length": lengths[contig], "bin_size": bin_size}
        counts = counts_of(contig)
        window = slice(lo, lo + width)
        out.append(Locus(
            key=target.key, contig=contig, start_bin=lo, bin_size=bin_size,
            truth=truth[window].copy(),
            peaks=peaks[window].copy(),
            specificity=None if counts is None else np.asarray(counts[window]).copy(),
            predictions={source.name: source.read(target.key, contig, **read)[window]},
            bands={source.name: source.read(spread_key(target.key), contig, **read)[window]},
            note=f"{label} of {len(ranked)} windows by {source.name} MSE, {error:.3g}; "
                 "band +-1 sd"))
    return out
