"""Squared-error metrics: genome-wide, weighted, and over annotated regions.

All take signal on the arcsinh scale, ``y_true`` and ``y_pred`` of shape ``(n_bins,)`` (one
track, returns a float) or ``(n_tracks, n_bins)`` (returns an array of shape ``(n_tracks,)``),
and an optional boolean ``mask`` of the same shape selecting the bins to score.

The region metrics follow the ENCODE Imputation Challenge scorer: a bin inside ``k``
overlapping regions counts ``k`` times, so they are weighted means with the per-bin region
coverage as weight (see :mod:`epimpute.evaluation.regions` for the coverage arrays).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from epimpute.evaluation._arrays import as_weights, per_track, select

__all__ = ["mse", "mseenh", "msegene", "mseprom", "msevar", "weighted_mse"]


def _weighted(
    y_true: NDArray[np.floating],
    y_pred: NDArray[np.floating],
    mask: ArrayLike | None,
    weights: ArrayLike,
    name: str,
) -> float:
    w = as_weights(weights, y_true.shape, name=name)
    yt, yp, checked = select(y_true, y_pred, mask)
    if checked is not None:
        w = w[checked]
    total = w.sum()
    if total <= 0:
        return float("nan")
    error = yt.astype(np.float64) - yp
    return float(np.dot(w, error * error) / total)


@per_track
def mse(y_true: ArrayLike, y_pred: ArrayLike, mask: ArrayLike | None = None) -> float:
    """Mean squared error over the (masked) bins (challenge ``mse``).

    Parameters
    ----------
    y_true, y_pred
        Observed and imputed signal, shape ``(n_bins,)`` or ``(n_tracks, n_bins)``.
    mask
        Boolean array of the same shape (or ``(n_bins,)`` shared by all tracks); bins to score.

    Returns
    -------
    float or numpy.ndarray
        The MSE, or one per track for 2-D input; NaN when no bin is selected.
    """
    yt, yp, _ = select(y_true, y_pred, mask)  # type: ignore[arg-type]
    if yt.size == 0:
        return float("nan")
    error = yt.astype(np.float64) - yp
    return float(np.dot(error, error) / error.size)


@per_track
def weighted_mse(
    y_true: ArrayLike, y_pred: ArrayLike, mask: ArrayLike | None = None, *, weights: ArrayLike
) -> float:
    """Weighted mean squared error ``sum(w (y - yhat)^2) / sum(w)``.

    Parameters
    ----------
    y_true, y_pred
        Observed and imputed signal, shape ``(n_bins,)`` or ``(n_tracks, n_bins)``.
    mask
        Optional boolean array selecting the bins to score.
    weights
        Non-negative weights of shape ``(n_bins,)`` (shared) or the signal's shape.

    Returns
    -------
    float or numpy.ndarray
        NaN when the selected weights sum to zero.
    """
    return _weighted(y_true, y_pred, mask, weights, "weights")  # type: ignore[arg-type]


@per_track
def msevar(
    y_true: ArrayLike, y_pred: ArrayLike, mask: ArrayLike | None = None, *, variance: ArrayLike
) -> float:
    """Squared error weighted by the cross-cell-type variance of the assay (challenge ``msevar``).

    ``sum(v (y - yhat)^2) / sum(v)``: the per-bin variance, normalised to sum to one over the
    scored bins, weights each squared error. The variance is the population variance
    (``ddof=0``) across every observed cell type of the assay, the target included (see
    :class:`epimpute.evaluation.accumulators.RunningVariance`).

    Parameters
    ----------
    y_true, y_pred
        Observed and imputed signal, shape ``(n_bins,)`` or ``(n_tracks, n_bins)``.
    mask
        Optional boolean array selecting the bins to score.
    variance
        Shape ``(n_bins,)``: variance of the assay's signal across cell types in each bin.

    Returns
    -------
    float or numpy.ndarray
        NaN when the variance is zero everywhere (for example a single cell type).
    """
    return _weighted(y_true, y_pred, mask, variance, "variance")  # type: ignore[arg-type]


@per_track
def mseprom(
    y_true: ArrayLike, y_pred: ArrayLike, mask: ArrayLike | None = None, *, coverage: ArrayLike
) -> float:
    """Mean squared error over promoters: the 2 kb upstream of each gene start (``mseprom``).

    Parameters
    ----------
    y_true, y_pred
        Observed and imputed signal, shape ``(n_bins,)`` or ``(n_tracks, n_bins)``.
    mask
        Optional boolean array selecting the bins to score.
    coverage
        Shape ``(n_bins,)``: number of promoters covering each bin, from
        :func:`epimpute.evaluation.regions.promoter_coverage`.

    Returns
    -------
    float or numpy.ndarray
        NaN when no promoter bin is selected.
    """
    return _weighted(y_true, y_pred, mask, coverage, "coverage")  # type: ignore[arg-type]


@per_track
def msegene(
    y_true: ArrayLike, y_pred: ArrayLike, mask: ArrayLike | None = None, *, coverage: ArrayLike
) -> float:
    """Mean squared error over gene bodies (challenge ``msegene``).

    Parameters
    ----------
    y_true, y_pred
        Observed and imputed signal, shape ``(n_bins,)`` or ``(n_tracks, n_bins)``.
    mask
        Optional boolean array selecting the bins to score.
    coverage
        Shape ``(n_bins,)``: number of genes covering each bin, from
        :func:`epimpute.evaluation.regions.gene_coverage`.

    Returns
    -------
    float or numpy.ndarray
        NaN when no gene bin is selected.
    """
    return _weighted(y_true, y_pred, mask, coverage, "coverage")  # type: ignore[arg-type]


@per_track
def mseenh(
    y_true: ArrayLike, y_pred: ArrayLike, mask: ArrayLike | None = None, *, coverage: ArrayLike
) -> float:
    """Mean squared error over enhancers (challenge ``mseenh``).

    Parameters
    ----------
    y_true, y_pred
        Observed and imputed signal, shape ``(n_bins,)`` or ``(n_tracks, n_bins)``.
    mask
        Optional boolean array selecting the bins to score.
    coverage
        Shape ``(n_bins,)``: number of enhancers covering each bin, from
        :func:`epimpute.evaluation.regions.enhancer_coverage`.

    Returns
    -------
    float or numpy.ndarray
        NaN when no enhancer bin is selected.
    """
    return _weighted(y_true, y_pred, mask, coverage, "coverage")  # type: ignore[arg-type]
