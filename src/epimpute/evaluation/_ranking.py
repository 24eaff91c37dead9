"""Sorting-based building blocks for rank metrics (private).

A :class:`Ranked` sorts one track once; Spearman correlation, ROC-AUC, average precision and
top-n thresholds are then read off that single sort, so the scorer never sorts a track twice.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


class Ranked:
    """One track sorted once, with its tie groups.

    Parameters
    ----------
    values
        Array of shape ``(n,)``; compared in its own dtype, so float32 ties stay ties.
    """

    def __init__(self, values: NDArray[np.floating]) -> None:
        n = values.shape[0]
        index = np.int32 if n < np.iinfo(np.int32).max else np.int64  # halves the scratch memory
        self.values = values
        self.order = np.argsort(values).astype(index, copy=False)
        self.sorted = values[self.order]
        breaks = (np.flatnonzero(self.sorted[1:] != self.sorted[:-1]) + 1).astype(index)
        self.group_starts = np.concatenate((np.zeros(min(n, 1), dtype=index), breaks))
        self.group_ends = np.concatenate((breaks, np.full(min(n, 1), n, dtype=index)))
        self._ranks: NDArray[np.float64] | None = None

    @property
    def size(self) -> int:
        return int(self.values.shape[0])

    @property
    def ranks(self) -> NDArray[np.float64]:
        """1-based ranks, ties given the mean of the ranks they span (shape ``(n,)``)."""
        if self._ranks is None:
            mean_rank = (self.group_starts.astype(np.float64) + self.group_ends + 1) / 2.0
            ranks = np.empty(self.size, dtype=np.float64)
            ranks[self.order] = np.repeat(mean_rank, self.group_ends - self.group_starts)
            self._ranks = ranks
        return self._ranks

    def nth_largest(self, n: int) -> float:
        """The ``n``-th largest value (``sorted[-n]``); ``n`` must be in ``1..size``."""
        return self.sorted[self.size - n]


def pearson(x: NDArray[np.floating], y: NDArray[np.floating]) -> float:
    """Pearson correlation of two equal-length arrays, NaN if either is constant or empty."""
    if x.shape[0] < 2:
        return float("nan")
    dx = x.astype(np.float64) - x.mean(dtype=np.float64)
    dy = y.astype(np.float64) - y.mean(dtype=np.float64)
    denominator = np.sqrt(np.dot(dx, dx) * np.dot(dy, dy))
    if denominator == 0:
        return float("nan")
    return float(np.dot(dx, dy) / denominator)


def roc_auc(labels: NDArray[np.bool_], scores: Ranked) -> float:
    """Area under the ROC curve of ``scores`` for ``labels``, ties counted as one half.

    Uses the rank-sum identity ``(R+ - P (P + 1) / 2) / (P N)``, which equals the trapezoidal
    area that scikit-learn reports. NaN when one class is empty.
    """
    positives = int(np.count_nonzero(labels))
    negatives = labels.shape[0] - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    rank_sum = float(scores.ranks[labels].sum())
    return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)


def average_precision(labels: NDArray[np.bool_], scores: Ranked) -> float:
    """Average precision (area under the precision-recall curve) of ``scores`` for ``labels``.

    The step-wise sum ``sum_k (R_k - R_{k-1}) P_k`` over thresholds at each distinct score,
    highest first, as scikit-learn's ``average_precision_score``. NaN with no positives.
    """
    positives = int(np.count_nonzero(labels))
    if positives == 0:
        return float("nan")
    hits = labels[scores.order[::-1]]
    true_positives = np.cumsum(hits, dtype=np.int64)
    # last position (in descending order) of each tie group = one threshold
    last = (scores.size - scores.group_starts[::-1]) - 1
    tp = true_positives[last]
    precision = tp / (last + 1.0)
    recall = tp / float(positives)
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))
