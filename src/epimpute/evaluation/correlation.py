"""Genome-wide correlation between observed and imputed signal.

``y_true`` and ``y_pred`` have shape ``(n_bins,)`` (one track, returns a float) or
``(n_tracks, n_bins)`` (returns shape ``(n_tracks,)``); ``mask`` selects the bins to score.
Both return NaN when fewer than two bins are selected or either side is constant.
"""

from __future__ import annotations

from numpy.typing import ArrayLike

from epimpute.evaluation._arrays import per_track, select
from epimpute.evaluation._ranking import Ranked, pearson

__all__ = ["gwcorr", "gwspear"]


@per_track
def gwcorr(y_true: ArrayLike, y_pred: ArrayLike, mask: ArrayLike | None = None) -> float:
    """Pearson correlation over the (masked) bins (challenge ``gwcorr``).

    Parameters
    ----------
    y_true, y_pred
        Observed and imputed signal, shape ``(n_bins,)`` or ``(n_tracks, n_bins)``.
    mask
        Optional boolean array of the same shape (or ``(n_bins,)`` shared) selecting bins.

    Returns
    -------
    float or numpy.ndarray
    """
    yt, yp, _ = select(y_true, y_pred, mask)  # type: ignore[arg-type]
    return pearson(yt, yp)


@per_track
def gwspear(y_true: ArrayLike, y_pred: ArrayLike, mask: ArrayLike | None = None) -> float:
    """Spearman correlation over the (masked) bins (challenge ``gwspear``).

    The Pearson correlation of the ranks, ties given their mean rank (as ``scipy.stats.spearmanr``).
    Needs the whole track at once.

    Parameters
    ----------
    y_true, y_pred
        Observed and imputed signal, shape ``(n_bins,)`` or ``(n_tracks, n_bins)``.
    mask
        Optional boolean array of the same shape (or ``(n_bins,)`` shared) selecting bins.

    Returns
    -------
    float or numpy.ndarray
    """
    yt, yp, _ = select(y_true, y_pred, mask)  # type: ignore[arg-type]
    return spearman_from_ranked(Ranked(yt), Ranked(yp))


def spearman_from_ranked(y_true: Ranked, y_pred: Ranked) -> float:
    """Spearman correlation of two tracks already sorted by :class:`Ranked`."""
    return pearson(y_true.ranks, y_pred.ranks)
