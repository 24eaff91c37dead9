"""Individual-specific peaks: how well an imputation finds the peaks one individual has and
another lacks (the eDICE paper's evaluation of individual-specific imputation, Fig. 6).

For a target track of individual B (``y_true``) and the same tissue and assay in a
reference individual A (``reference``), peaks are called on both
(:func:`epimpute.evaluation.peaks.call_peaks`, MACS3 ``bdgpeakcall`` rules):

- *positives*: bins of B's peaks that span at least ``min_length`` (150) bp and overlap no
  peak of A (any length): B-specific peaks;
- *excluded*: bins of B's peaks shared with A, and of B-specific peaks shorter than
  ``min_length`` (neither clearly B-specific signal nor background);
- *negatives*: every other bin (including A-specific peaks, where copying A's track puts
  signal that B lacks).

The score is the average precision (area under the precision-recall curve) of the imputed
signal for telling positives from negatives. Arrays are one contig, shape ``(n_bins,)``,
on the arcsinh scale.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from numpy.typing import ArrayLike, NDArray

from epimpute.errors import InputError
from epimpute.evaluation._ranking import Ranked, average_precision
from epimpute.evaluation.peaks import (
    DEFAULT_PEAK_PARAMS,
    PeakParams,
    Peaks,
    call_peaks,
    overlaps_mask,
    peak_mask,
)

__all__ = ["individual_peaks_auprc", "individual_specific_bins"]

MIN_LENGTH = 150


def individual_specific_bins(
    y_true: ArrayLike,
    reference: ArrayLike,
    *,
    bin_size: int = 25,
    min_length: int = MIN_LENGTH,
    params: PeakParams = DEFAULT_PEAK_PARAMS,
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Labels and scored bins of the individual-specific-peak evaluation.

    Returns
    -------
    tuple
        ``(positive, scored)``, bool arrays of shape ``(n_bins,)``: bins of B-specific
        peaks, and bins that count (positives and negatives).
    """
    truth = np.asarray(y_true)
    other = np.asarray(reference)
    if truth.ndim != 1 or truth.shape != other.shape:
        raise InputError(f"y_true and reference must be one contig of the same length, got "
                         f"shapes {truth.shape} and {other.shape}")
    n_bins = truth.shape[0]
    any_length = replace(params, min_length=0)
    target_peaks = call_peaks(truth, bin_size=bin_size, params=any_length)
    reference_peaks = call_peaks(other, bin_size=bin_size, params=any_length)
    shared = overlaps_mask(target_peaks, peak_mask(reference_peaks, n_bins=n_bins,
                                                   bin_size=bin_size), bin_size=bin_size)
    specific = ~shared & ((target_peaks.end - target_peaks.start) >= min_length)
    chosen = Peaks(target_peaks.contig, target_peaks.start[specific],
                   target_peaks.end[specific], target_peaks.summit[specific],
                   target_peaks.score[specific])
    positive = peak_mask(chosen, n_bins=n_bins, bin_size=bin_size)
    in_peak = peak_mask(target_peaks, n_bins=n_bins, bin_size=bin_size)
    return positive, positive | ~in_peak


def individual_peaks_auprc(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    mask: ArrayLike | None = None,
    *,
    reference: ArrayLike,
    bin_size: int = 25,
    min_length: int = MIN_LENGTH,
    params: PeakParams = DEFAULT_PEAK_PARAMS,
) -> float:
    """Average precision of ``y_pred`` for the peaks of ``y_true`` absent from ``reference``.

    Parameters
    ----------
    y_true
        ``(n_bins,)`` observed track of the target individual.
    y_pred
        ``(n_bins,)`` its imputation.
    mask
        ``(n_bins,)`` bool: bins to evaluate (default all).
    reference
        ``(n_bins,)`` the same tissue and assay in the reference individual.
    bin_size, min_length, params
        Bin width, shortest B-specific peak counted (bp) and peak-calling thresholds.

    Returns
    -------
    float
        NaN when there is no B-specific peak.
    """
    positive, scored = individual_specific_bins(y_true, reference, bin_size=bin_size,
                                                min_length=min_length, params=params)
    predicted = np.asarray(y_pred)
    if predicted.shape != positive.shape:
        raise InputError(f"y_pred has shape {predicted.shape}, expected {positive.shape}")
    if mask is not None:
        scored = scored & np.asarray(mask, dtype=bool)
    return average_precision(positive[scored], Ranked(predicted[scored]))
