"""Metrics on the top 1% of bins (ENCODE Imputation Challenge definitions).

With ``N`` scored bins, ``n = int(N * fraction)`` (``fraction`` 0.01 by default). The "top n
observed" bins are those with ``y_true >= t``, ``t`` the ``n``-th largest observed value, so
ties at the threshold count as in the top (the set may hold more than ``n`` bins); likewise for
the imputed track and for the top ``5 n``.

- ``mse1obs``: MSE over the top-n observed bins; ``mse1imp``: over the top-n imputed bins.
- ``match1``: number of bins in both the top-n observed and the top-n imputed.
- ``catch1obs``: number of top-n observed bins within the top-5n imputed.
- ``catch1imp``: number of top-n imputed bins within the top-5n observed.
- ``aucobs1``: ROC-AUC of the imputed values for the top-n observed bins as positives.
- ``aucimp1``: ROC-AUC of the observed values for the top-n imputed bins as positives.

Counts are returned as floats. Every metric is NaN when ``n < 1`` (fewer than ``1 / fraction``
bins selected). All need the whole track at once. ``y_true`` / ``y_pred`` have shape
``(n_bins,)`` or ``(n_tracks, n_bins)``; ``mask`` selects the bins to score.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from epimpute.evaluation._arrays import per_track, select
from epimpute.evaluation._ranking import Ranked, roc_auc

__all__ = [
    "TOP_FRACTION",
    "aucimp1",
    "aucobs1",
    "catch1imp",
    "catch1obs",
    "match1",
    "mse1imp",
    "mse1obs",
    "top_count",
]

TOP_FRACTION = 0.01
"""Fraction of bins the challenge's "top" metrics look at."""

_NAMES = ("mse1obs", "mse1imp", "match1", "catch1obs", "catch1imp", "aucobs1", "aucimp1")


def top_count(n_bins: int, *, fraction: float = TOP_FRACTION) -> int:
    """Number of top bins ``n = int(n_bins * fraction)`` for ``n_bins`` scored bins."""
    if not 0 < fraction <= 0.2:
        raise ValueError(f"fraction must be in (0, 0.2] so that the top 5n fit, got {fraction}")
    return int(n_bins * fraction)


def _nth_largest(values: NDArray[np.floating], n: int) -> float:
    k = values.shape[0] - n
    return np.partition(values, k)[k]


def _squared_error_mean(
    yt: NDArray[np.floating], yp: NDArray[np.floating], where: NDArray[np.bool_]
) -> float:
    error = yt[where].astype(np.float64) - yp[where]
    return float(np.dot(error, error) / error.size)


def top_metrics_from_ranked(
    y_true: Ranked, y_pred: Ranked, *, fraction: float = TOP_FRACTION
) -> dict[str, float]:
    """All seven top-bin metrics from tracks already sorted by :class:`Ranked`."""
    n = top_count(y_true.size, fraction=fraction)
    if n < 1:
        return dict.fromkeys(_NAMES, float("nan"))
    yt, yp = y_true.values, y_pred.values
    top_true = yt >= y_true.nth_largest(n)
    top_pred = yp >= y_pred.nth_largest(n)
    wide_true = yt >= y_true.nth_largest(5 * n)
    wide_pred = yp >= y_pred.nth_largest(5 * n)
    return {
        "mse1obs": _squared_error_mean(yt, yp, top_true),
        "mse1imp": _squared_error_mean(yt, yp, top_pred),
        "match1": float(np.count_nonzero(top_true & top_pred)),
        "catch1obs": float(np.count_nonzero(top_true & wide_pred)),
        "catch1imp": float(np.count_nonzero(top_pred & wide_true)),
        "aucobs1": roc_auc(top_true, y_pred),
        "aucimp1": roc_auc(top_pred, y_true),
    }


def _top(values: NDArray[np.floating], n: int) -> NDArray[np.bool_]:
    return values >= _nth_largest(values, n)


@per_track
def mse1obs(
    y_true: ArrayLike, y_pred: ArrayLike, mask: ArrayLike | None = None, *, fraction: float = TOP_FRACTION
) -> float:
    """MSE over the top-n observed bins (see the module docstring).

    Parameters
    ----------
    y_true, y_pred
        Observed and imputed signal, shape ``(n_bins,)`` or ``(n_tracks, n_bins)``.
    mask
        Optional boolean array selecting the bins to score; ``n`` counts selected bins.
    fraction
        The top fraction, 0.01 in the challenge.

    Returns
    -------
    float or numpy.ndarray
    """
    yt, yp, _ = select(y_true, y_pred, mask)  # type: ignore[arg-type]
    n = top_count(yt.shape[0], fraction=fraction)
    return _squared_error_mean(yt, yp, _top(yt, n)) if n >= 1 else float("nan")


@per_track
def mse1imp(
    y_true: ArrayLike, y_pred: ArrayLike, mask: ArrayLike | None = None, *, fraction: float = TOP_FRACTION
) -> float:
    """MSE over the top-n imputed bins (see the module docstring).

    Parameters
    ----------
    y_true, y_pred
        Observed and imputed signal, shape ``(n_bins,)`` or ``(n_tracks, n_bins)``.
    mask
        Optional boolean array selecting the bins to score.
    fraction
        The top fraction, 0.01 in the challenge.

    Returns
    -------
    float or numpy.ndarray
    """
    yt, yp, _ = select(y_true, y_pred, mask)  # type: ignore[arg-type]
    n = top_count(yt.shape[0], fraction=fraction)
    return _squared_error_mean(yt, yp, _top(yp, n)) if n >= 1 else float("nan")


@per_track
def match1(
    y_true: ArrayLike, y_pred: ArrayLike, mask: ArrayLike | None = None, *, fraction: float = TOP_FRACTION
) -> float:
    """Number of bins in both the top-n observed and the top-n imputed bins.

    Parameters
    ----------
    y_true, y_pred
        Observed and imputed signal, shape ``(n_bins,)`` or ``(n_tracks, n_bins)``.
    mask
        Optional boolean array selecting the bins to score.
    fraction
        The top fraction, 0.01 in the challenge.

    Returns
    -------
    float or numpy.ndarray
    """
    yt, yp, _ = select(y_true, y_pred, mask)  # type: ignore[arg-type]
    n = top_count(yt.shape[0], fraction=fraction)
    return float(np.count_nonzero(_top(yt, n) & _top(yp, n))) if n >= 1 else float("nan")


@per_track
def catch1obs(
    y_true: ArrayLike, y_pred: ArrayLike, mask: ArrayLike | None = None, *, fraction: float = TOP_FRACTION
) -> float:
    """Number of top-n observed bins that are within the top-5n imputed bins.

    Parameters
    ----------
    y_true, y_pred
        Observed and imputed signal, shape ``(n_bins,)`` or ``(n_tracks, n_bins)``.
    mask
        Optional boolean array selecting the bins to score.
    fraction
        The top fraction, 0.01 in the challenge.

    Returns
    -------
    float or numpy.ndarray
    """
    yt, yp, _ = select(y_true, y_pred, mask)  # type: ignore[arg-type]
    n = top_count(yt.shape[0], fraction=fraction)
    return float(np.count_nonzero(_top(yt, n) & _top(yp, 5 * n))) if n >= 1 else float("nan")


@per_track
def catch1imp(
    y_true: ArrayLike, y_pred: ArrayLike, mask: ArrayLike | None = None, *, fraction: float = TOP_FRACTION
) -> float:
    """Number of top-n imputed bins that are within the top-5n observed bins.

    Parameters
    ----------
    y_true, y_pred
        Observed and imputed signal, shape ``(n_bins,)`` or ``(n_tracks, n_bins)``.
    mask
        Optional boolean array selecting the bins to score.
    fraction
        The top fraction, 0.01 in the challenge.

    Returns
    -------
    float or numpy.ndarray
    """
    yt, yp, _ = select(y_true, y_pred, mask)  # type: ignore[arg-type]
    n = top_count(yt.shape[0], fraction=fraction)
    return float(np.count_nonzero(_top(yp, n) & _top(yt, 5 * n))) if n >= 1 else float("nan")


@per_track
def aucobs1(
    y_true: ArrayLike, y_pred: ArrayLike, mask: ArrayLike | None = None, *, fraction: float = TOP_FRACTION
) -> float:
    """ROC-AUC of the imputed signal for the top-n observed bins as the positive class.

    Parameters
    ----------
    y_true, y_pred
        Observed and imputed signal, shape ``(n_bins,)`` or ``(n_tracks, n_bins)``.
    mask
        Optional boolean array selecting the bins to score.
    fraction
        The top fraction, 0.01 in the challenge.

    Returns
    -------
    float or numpy.ndarray
        NaN when every selected bin ties into the top (one class only).
    """
    yt, yp, _ = select(y_true, y_pred, mask)  # type: ignore[arg-type]
    n = top_count(yt.shape[0], fraction=fraction)
    return roc_auc(_top(yt, n), Ranked(yp)) if n >= 1 else float("nan")


@per_track
def aucimp1(
    y_true: ArrayLike, y_pred: ArrayLike, mask: ArrayLike | None = None, *, fraction: float = TOP_FRACTION
) -> float:
    """ROC-AUC of the observed signal for the top-n imputed bins as the positive class.

    Parameters
    ----------
    y_true, y_pred
        Observed and imputed signal, shape ``(n_bins,)`` or ``(n_tracks, n_bins)``.
    mask
        Optional boolean array selecting the bins to score.
    fraction
        The top fraction, 0.01 in the challenge.

    Returns
    -------
    float or numpy.ndarray
        NaN when every selected bin ties into the top (one class only).
    """
    yt, yp, _ = select(y_true, y_pred, mask)  # type: ignore[arg-type]
    n = top_count(yt.shape[0], fraction=fraction)
    return roc_auc(_top(yp, n), Ranked(yt)) if n >= 1 else float("nan")
