"""Metrics relative to the peaks of the observed track (the eDICE evaluation set).

The *foreground* is the set of bins overlapping a peak called on the observed track (by
:func:`epimpute.evaluation.peaks.call_peaks`, MACS3 ``bdgpeakcall`` rules, ``-log10 p >= 2``
by default); the *background* is every other bin.

- ``mse_fg`` / ``mse_bg``: MSE over foreground / background bins.
- ``corr_fg`` / ``corr_bg``: Pearson correlation over foreground / background bins.
- ``auprc``: average precision (area under the precision-recall curve) of the imputed signal
  for classifying foreground bins.
- ``peak_precision``: fraction of the peaks called on the imputed track that overlap a peak of
  the observed track by at least one bin; ``peak_recall``: fraction of the observed peaks that
  overlap an imputed peak. With a ``mask``, a peak is counted when its summit bin is selected.

``y_true`` / ``y_pred`` have shape ``(n_bins,)`` (one contig) or ``(n_tracks, n_bins)``, on
the arcsinh scale. ``foreground`` may be given to skip calling peaks on ``y_true``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from epimpute.errors import InputError
from epimpute.evaluation._arrays import as_mask, per_track, select
from epimpute.evaluation._ranking import Ranked, average_precision, pearson
from epimpute.evaluation.peaks import (
    DEFAULT_PEAK_PARAMS,
    PeakParams,
    Peaks,
    call_peaks,
    overlaps_mask,
    peak_mask,
)

__all__ = [
    "PeakOverlap",
    "auprc",
    "corr_bg",
    "corr_fg",
    "mse_bg",
    "mse_fg",
    "peak_overlap",
    "peak_precision",
    "peak_recall",
]


def _foreground(
    y_true: NDArray[np.floating], foreground: ArrayLike | None, bin_size: int, params: PeakParams
) -> NDArray[np.bool_]:
    if foreground is not None:
        return as_mask(foreground, y_true.shape, name="foreground")  # type: ignore[return-value]
    peaks = call_peaks(y_true, bin_size=bin_size, params=params)
    return peak_mask(peaks, n_bins=y_true.shape[0], bin_size=bin_size)


def _part(
    y_true: NDArray[np.floating],
    y_pred: NDArray[np.floating],
    mask: ArrayLike | None,
    foreground: ArrayLike | None,
    bin_size: int,
    params: PeakParams,
    *,
    inside: bool,
) -> tuple[NDArray[np.floating], NDArray[np.floating]]:
    fg = _foreground(y_true, foreground, bin_size, params)
    chosen = fg if inside else ~fg
    checked = as_mask(mask, y_true.shape)
    if checked is not None:
        chosen = chosen & checked
    return y_true[chosen], y_pred[chosen]


def _mse(yt: NDArray[np.floating], yp: NDArray[np.floating]) -> float:
    if yt.size == 0:
        return float("nan")
    error = yt.astype(np.float64) - yp
    return float(np.dot(error, error) / error.size)


@per_track
def mse_fg(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    mask: ArrayLike | None = None,
    *,
    foreground: ArrayLike | None = None,
    bin_size: int = 25,
    params: PeakParams = DEFAULT_PEAK_PARAMS,
) -> float:
    """MSE over bins inside observed peaks.

    Parameters
    ----------
    y_true, y_pred
        Observed and imputed signal, shape ``(n_bins,)`` or ``(n_tracks, n_bins)``.
    mask
        Optional boolean array selecting the bins to score.
    foreground
        Boolean array of the signal's shape (or ``(n_bins,)``): bins in observed peaks;
        called from ``y_true`` (as one contig) when None.
    bin_size, params
        Bin width in bp and peak-calling thresholds, used when ``foreground`` is None.

    Returns
    -------
    float or numpy.ndarray
    """
    return _mse(*_part(y_true, y_pred, mask, foreground, bin_size, params, inside=True))  # type: ignore[arg-type]


@per_track
def mse_bg(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    mask: ArrayLike | None = None,
    *,
    foreground: ArrayLike | None = None,
    bin_size: int = 25,
    params: PeakParams = DEFAULT_PEAK_PARAMS,
) -> float:
    """MSE over bins outside observed peaks (parameters as :func:`mse_fg`)."""
    return _mse(*_part(y_true, y_pred, mask, foreground, bin_size, params, inside=False))  # type: ignore[arg-type]


@per_track
def corr_fg(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    mask: ArrayLike | None = None,
    *,
    foreground: ArrayLike | None = None,
    bin_size: int = 25,
    params: PeakParams = DEFAULT_PEAK_PARAMS,
) -> float:
    """Pearson correlation over bins inside observed peaks (parameters as :func:`mse_fg`)."""
    return pearson(*_part(y_true, y_pred, mask, foreground, bin_size, params, inside=True))  # type: ignore[arg-type]


@per_track
def corr_bg(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    mask: ArrayLike | None = None,
    *,
    foreground: ArrayLike | None = None,
    bin_size: int = 25,
    params: PeakParams = DEFAULT_PEAK_PARAMS,
) -> float:
    """Pearson correlation over bins outside observed peaks (parameters as :func:`mse_fg`)."""
    return pearson(*_part(y_true, y_pred, mask, foreground, bin_size, params, inside=False))  # type: ignore[arg-type]


@per_track
def auprc(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    mask: ArrayLike | None = None,
    *,
    foreground: ArrayLike | None = None,
    bin_size: int = 25,
    params: PeakParams = DEFAULT_PEAK_PARAMS,
) -> float:
    """Average precision of the imputed signal for the observed-peak bins.

    Needs the whole track at once. Parameters as :func:`mse_fg`; NaN when no selected bin is
    in a peak.
    """
    fg = _foreground(y_true, foreground, bin_size, params)  # type: ignore[arg-type]
    _, yp, checked = select(y_true, y_pred, mask)  # type: ignore[arg-type]
    labels = fg if checked is None else fg[checked]
    return average_precision(labels, Ranked(yp))


@dataclass(frozen=True)
class PeakOverlap:
    """Peak counts behind ``peak_precision`` and ``peak_recall``.

    Attributes
    ----------
    predicted, predicted_hit
        Imputed peaks, and those overlapping an observed peak.
    observed, observed_hit
        Observed peaks, and those overlapping an imputed peak.
    """

    predicted: int
    predicted_hit: int
    observed: int
    observed_hit: int

    @property
    def precision(self) -> float:
        return self.predicted_hit / self.predicted if self.predicted else float("nan")

    @property
    def recall(self) -> float:
        return self.observed_hit / self.observed if self.observed else float("nan")


def peak_overlap(
    observed: Peaks, predicted: Peaks, *, n_bins: int, bin_size: int, mask: ArrayLike | None = None
) -> PeakOverlap:
    """Count observed and imputed peaks of one contig that overlap each other.

    Parameters
    ----------
    observed, predicted
        Peaks called on the observed and the imputed track of the same contig.
    n_bins, bin_size
        Contig length in bins and bin width in bp.
    mask
        Optional boolean array of shape ``(n_bins,)``: only peaks whose summit bin is
        selected are counted.

    Returns
    -------
    PeakOverlap
    """
    observed_bins = peak_mask(observed, n_bins=n_bins, bin_size=bin_size)
    predicted_bins = peak_mask(predicted, n_bins=n_bins, bin_size=bin_size)
    predicted_hit = overlaps_mask(predicted, observed_bins, bin_size=bin_size)
    observed_hit = overlaps_mask(observed, predicted_bins, bin_size=bin_size)
    checked = as_mask(mask, (n_bins,))
    if checked is not None:
        predicted_hit = predicted_hit[checked[predicted.bins(bin_size)[2]]]
        observed_hit = observed_hit[checked[observed.bins(bin_size)[2]]]
    return PeakOverlap(
        int(predicted_hit.size), int(predicted_hit.sum()), int(observed_hit.size), int(observed_hit.sum())
    )


def _overlap(
    y_true: NDArray[np.floating],
    y_pred: NDArray[np.floating],
    mask: ArrayLike | None,
    bin_size: int,
    params: PeakParams,
) -> PeakOverlap:
    if y_true.shape != y_pred.shape:
        raise InputError(f"y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}")
    observed = call_peaks(y_true, bin_size=bin_size, params=params)
    predicted = call_peaks(y_pred, bin_size=bin_size, params=params)
    return peak_overlap(observed, predicted, n_bins=y_true.shape[0], bin_size=bin_size, mask=mask)


@per_track
def peak_precision(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    mask: ArrayLike | None = None,
    *,
    bin_size: int = 25,
    params: PeakParams = DEFAULT_PEAK_PARAMS,
) -> float:
    """Fraction of imputed peaks that overlap an observed peak.

    Parameters
    ----------
    y_true, y_pred
        Observed and imputed signal of one contig, shape ``(n_bins,)`` or ``(n_tracks, n_bins)``.
    mask
        Optional boolean array; only peaks whose summit bin is selected count.
    bin_size, params
        Bin width in bp and peak-calling thresholds.

    Returns
    -------
    float or numpy.ndarray
        NaN when no imputed peak is counted.
    """
    return _overlap(y_true, y_pred, mask, bin_size, params).precision  # type: ignore[arg-type]


@per_track
def peak_recall(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    mask: ArrayLike | None = None,
    *,
    bin_size: int = 25,
    params: PeakParams = DEFAULT_PEAK_PARAMS,
) -> float:
    """Fraction of observed peaks that overlap an imputed peak (parameters as :func:`peak_precision`).

    Returns
    -------
    float or numpy.ndarray
        NaN when no observed peak is counted.
    """
    return _overlap(y_true, y_pred, mask, bin_size, params).recall  # type: ignore[arg-type]
