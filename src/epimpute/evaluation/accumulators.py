"""Streaming accumulators: exact MSE, Pearson and weighted MSE from running sums.

Feed a track contig by contig (or chunk by chunk); memory stays constant and the result equals
the metric on the concatenated track up to float64 rounding. Pearson is kept as centred
moments (count, means, sums of squared deviations, co-moment) merged with the exact pooling
formula, so it does not suffer the cancellation of raw sums of squares.

:class:`PairMoments` is the algebra underneath: moments of many groups at once (for example
specificity stratum x foreground x genomic block), which can be pooled over any axis, or
re-weighted for a block bootstrap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from epimpute.errors import InputError
from epimpute.evaluation._arrays import as_mask, as_signal, as_weights

__all__ = ["PairMoments", "RunningVariance", "StreamingPairMetrics", "StreamingWeightedMSE"]

_FIELDS = ("n", "mean_true", "mean_pred", "m2_true", "m2_pred", "comoment", "sse")


@dataclass(frozen=True)
class PairMoments:
    """Moments of (observed, imputed) pairs for an array of groups.

    Every attribute is a float64 array of the same shape (one entry per group).

    Attributes
    ----------
    n
        Number of bins.
    mean_true, mean_pred
        Means of the observed and imputed signal (0 for empty groups).
    m2_true, m2_pred
        Sums of squared deviations from the group mean.
    comoment
        Sum of the products of the two deviations.
    sse
        Sum of squared errors.
    """

    n: NDArray[np.float64]
    mean_true: NDArray[np.float64]
    mean_pred: NDArray[np.float64]
    m2_true: NDArray[np.float64]
    m2_pred: NDArray[np.float64]
    comoment: NDArray[np.float64]
    sse: NDArray[np.float64]

    @classmethod
    def from_groups(
        cls,
        y_true: NDArray[np.floating],
        y_pred: NDArray[np.floating],
        groups: NDArray[np.integer],
        n_groups: int,
    ) -> PairMoments:
        """Moments of each group, computed in two passes (means, then centred sums).

        Parameters
        ----------
        y_true, y_pred
            Arrays of shape ``(n,)``.
        groups
            Integer array of shape ``(n,)`` with values in ``0 .. n_groups - 1``.
        n_groups
            Number of groups; the result has shape ``(n_groups,)``.
        """
        yt = y_true.astype(np.float64, copy=False)
        yp = y_pred.astype(np.float64, copy=False)
        count = np.bincount(groups, minlength=n_groups).astype(np.float64)
        safe = np.maximum(count, 1.0)
        mean_true = np.bincount(groups, yt, n_groups) / safe
        mean_pred = np.bincount(groups, yp, n_groups) / safe
        dt = yt - mean_true[groups]
        dp = yp - mean_pred[groups]
        error = yt - yp
        return cls(
            count,
            mean_true,
            mean_pred,
            np.bincount(groups, dt * dt, n_groups),
            np.bincount(groups, dp * dp, n_groups),
            np.bincount(groups, dt * dp, n_groups),
            np.bincount(groups, error * error, n_groups),
        )

    @classmethod
    def of(cls, y_true: NDArray[np.floating], y_pred: NDArray[np.floating]) -> PairMoments:
        """Moments of one group: all the bins given (shape ``()`` attributes)."""
        moments = cls.from_groups(y_true, y_pred, np.zeros(y_true.shape[0], dtype=np.intp), 1)
        return moments.pool()

    @classmethod
    def concatenate(cls, parts: list[PairMoments], *, axis: int = -1) -> PairMoments:
        """Join the group arrays of several :class:`PairMoments` along ``axis``."""
        return cls(*(np.concatenate([getattr(p, name) for p in parts], axis=axis) for name in _FIELDS))

    @classmethod
    def zeros(cls, shape: tuple[int, ...] = ()) -> PairMoments:
        """Moments of empty groups."""
        return cls(*(np.zeros(shape) for _ in _FIELDS))

    def map(self, func) -> PairMoments:  # type: ignore[no-untyped-def]
        """Apply ``func`` to every attribute array (for slicing, reshaping, concatenating)."""
        return PairMoments(*(func(getattr(self, name)) for name in _FIELDS))

    def pool(self, axis: int | tuple[int, ...] | None = None) -> PairMoments:
        """Moments of the union of the groups along ``axis`` (all groups when None)."""
        n = self.n.sum(axis=axis)
        safe = np.maximum(n, 1.0)
        mean_true = (self.n * self.mean_true).sum(axis=axis) / safe
        mean_pred = (self.n * self.mean_pred).sum(axis=axis) / safe
        shift_true = self.mean_true - _expand(mean_true, axis, self.n.ndim)
        shift_pred = self.mean_pred - _expand(mean_pred, axis, self.n.ndim)
        return PairMoments(
            n,
            mean_true,
            mean_pred,
            (self.m2_true + self.n * shift_true * shift_true).sum(axis=axis),
            (self.m2_pred + self.n * shift_pred * shift_pred).sum(axis=axis),
            (self.comoment + self.n * shift_true * shift_pred).sum(axis=axis),
            self.sse.sum(axis=axis),
        )

    def merge(self, other: PairMoments) -> PairMoments:
        """Moments of the union of two sets of groups, group by group."""
        both = PairMoments(*(np.stack((getattr(self, f), getattr(other, f))) for f in _FIELDS))
        return both.pool(axis=0)

    def resample(self, counts: NDArray[np.floating]) -> PairMoments:
        """Pool the groups (last axis) with integer multiplicities, as a bootstrap does.

        Parameters
        ----------
        counts
            Array of shape ``(n_boot, n_groups)``: how often each group is drawn.

        Returns
        -------
        PairMoments
            Attributes of shape ``(n_boot,)``.
        """
        centre = self.pool()
        wn = counts @ self.n
        safe = np.maximum(wn, 1.0)
        dt = self.mean_true - centre.mean_true
        dp = self.mean_pred - centre.mean_pred
        shift_true = counts @ (self.n * dt) / safe
        shift_pred = counts @ (self.n * dp) / safe
        return PairMoments(
            wn,
            centre.mean_true + shift_true,
            centre.mean_pred + shift_pred,
            counts @ (self.m2_true + self.n * dt * dt) - wn * shift_true * shift_true,
            counts @ (self.m2_pred + self.n * dp * dp) - wn * shift_pred * shift_pred,
            counts @ (self.comoment + self.n * dt * dp) - wn * shift_true * shift_pred,
            counts @ self.sse,
        )

    def mse(self) -> NDArray[np.float64]:
        """Mean squared error per group (NaN for empty groups)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.n > 0, self.sse / self.n, np.nan)

    def pearson(self) -> NDArray[np.float64]:
        """Pearson correlation per group (NaN for fewer than 2 bins or a constant side)."""
        denominator = np.sqrt(self.m2_true * self.m2_pred)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where((self.n >= 2) & (denominator > 0), self.comoment / denominator, np.nan)


def _expand(
    pooled: NDArray[np.float64], axis: int | tuple[int, ...] | None, ndim: int
) -> NDArray[np.float64]:
    if axis is None:
        return pooled
    axes = (axis,) if isinstance(axis, int) else axis
    return np.expand_dims(pooled, tuple(a % ndim for a in axes))


class StreamingPairMetrics:
    """Exact genome-wide MSE and Pearson correlation of one track, fed chunk by chunk.

    Examples
    --------
    >>> import numpy as np
    >>> acc = StreamingPairMetrics()
    >>> acc.update(np.array([0.0, 1.0]), np.array([0.0, 2.0]))
    >>> acc.update(np.array([2.0]), np.array([3.0]))
    >>> round(acc.mse(), 6), round(acc.pearson(), 6)
    (0.666667, 0.981981)
    """

    def __init__(self) -> None:
        self._moments = PairMoments.zeros()

    def update(self, y_true: ArrayLike, y_pred: ArrayLike, mask: ArrayLike | None = None) -> None:
        """Add a chunk of bins.

        Parameters
        ----------
        y_true, y_pred
            Arrays of shape ``(n,)``.
        mask
            Optional boolean array of shape ``(n,)``: the bins to add.
        """
        yt = as_signal(y_true, name="y_true")
        yp = as_signal(y_pred, name="y_pred")
        if yt.shape != yp.shape or yt.ndim != 1:
            raise InputError(f"y_true and y_pred must be 1-D of one length, got {yt.shape} and {yp.shape}")
        checked = as_mask(mask, yt.shape)
        if checked is not None:
            yt, yp = yt[checked], yp[checked]
        self._moments = self._moments.merge(PairMoments.of(yt, yp))

    @property
    def n(self) -> int:
        """Number of bins added so far."""
        return int(self._moments.n)

    def mse(self) -> float:
        """Mean squared error of everything added (NaN if nothing was)."""
        return float(self._moments.mse())

    def pearson(self) -> float:
        """Pearson correlation of everything added."""
        return float(self._moments.pearson())


class StreamingWeightedMSE:
    """Exact weighted MSE ``sum(w e^2) / sum(w)`` of one track, fed chunk by chunk.

    Used for ``msevar`` (weights: cross-cell-type variance) and the region metrics
    (weights: region coverage).
    """

    def __init__(self) -> None:
        self._weight = 0.0
        self._weighted_sse = 0.0

    def update(
        self, y_true: ArrayLike, y_pred: ArrayLike, mask: ArrayLike | None = None, *, weights: ArrayLike
    ) -> None:
        """Add a chunk of bins.

        Parameters
        ----------
        y_true, y_pred
            Arrays of shape ``(n,)``.
        mask
            Optional boolean array of shape ``(n,)``: the bins to add.
        weights
            Non-negative array of shape ``(n,)``.
        """
        yt = as_signal(y_true, name="y_true")
        yp = as_signal(y_pred, name="y_pred")
        if yt.shape != yp.shape or yt.ndim != 1:
            raise InputError(f"y_true and y_pred must be 1-D of one length, got {yt.shape} and {yp.shape}")
        w = as_weights(weights, yt.shape, name="weights")
        checked = as_mask(mask, yt.shape)
        if checked is not None:
            yt, yp, w = yt[checked], yp[checked], w[checked]
        error = yt.astype(np.float64) - yp
        self._weight += float(w.sum())
        self._weighted_sse += float(np.dot(w, error * error))

    def value(self) -> float:
        """The weighted MSE of everything added (NaN while the weights sum to zero)."""
        return self._weighted_sse / self._weight if self._weight > 0 else float("nan")


class RunningVariance:
    """Per-bin mean and population variance over tracks added one at a time (Welford).

    Gives the cross-cell-type variance of an assay that weights ``msevar`` without holding
    every cell type's track at once.

    Parameters
    ----------
    n_bins
        Length of the tracks.
    """

    def __init__(self, n_bins: int) -> None:
        self.count = 0
        self._mean = np.zeros(n_bins, dtype=np.float64)
        self._m2 = np.zeros(n_bins, dtype=np.float64)

    def update(self, track: ArrayLike) -> None:
        """Add one track of shape ``(n_bins,)``."""
        values = np.asarray(track, dtype=np.float64)
        if values.shape != self._mean.shape:
            raise InputError(f"track has shape {values.shape}, expected {self._mean.shape}")
        self.count += 1
        delta = values - self._mean
        self._mean += delta / self.count
        self._m2 += delta * (values - self._mean)

    def mean(self) -> NDArray[np.float64]:
        """Per-bin mean, shape ``(n_bins,)``."""
        return self._mean

    def variance(self) -> NDArray[np.float64]:
        """Per-bin population variance (``ddof=0``), shape ``(n_bins,)``; zeros before any track."""
        if self.count == 0:
            return np.zeros_like(self._m2)
        return self._m2 / self.count
