"""Average base-level signal intervals into fixed-size bins.

Bin ``j`` of a contig of ``length`` bases covers ``[j * bin_size, min((j + 1) * bin_size,
length))``, so there are ``ceil(length / bin_size)`` bins and the last one may be shorter.
A bin's value is the mean signal over its bases, with bases that no interval covers
counting as 0.

Long contigs are binned in windows of whole bins (:func:`windows`, :func:`bin_window`), so
memory depends on the window, not on the contig's length; windowed bins equal whole-contig
bins because a window edge is always a bin edge.

Signal is stored and modelled on the arcsinh scale; :func:`arcsinh` and :func:`sinh` convert
to and from it.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.typing import ArrayLike

from epimpute.errors import InputError

__all__ = ["arcsinh", "bin_intervals", "bin_window", "n_bins", "sinh", "windows"]


def n_bins(length: int, bin_size: int) -> int:
    """Number of bins covering a contig: ``ceil(length / bin_size)``.

    Parameters
    ----------
    length
        Contig length in bases (> 0).
    bin_size
        Bin width in bases (> 0).

    Returns
    -------
    int
        The number of bins.
    """
    _check_positive("length", length)
    _check_positive("bin_size", bin_size)
    return -(-int(length) // int(bin_size))


def bin_intervals(
    starts: ArrayLike,
    ends: ArrayLike,
    values: ArrayLike,
    *,
    length: int,
    bin_size: int,
) -> np.ndarray:
    """Mean signal per bin from half-open intervals ``[start, end)`` carrying a value.

    The intervals need not be sorted but must not overlap. The result is exact: each bin's
    value is the integral of the signal over the bin divided by the bin's width, computed
    from the cumulative integral at the bin boundaries, so the cost is
    ``O(n log n + n_bins)`` with no Python loop over intervals.

    Parameters
    ----------
    starts, ends
        Integer arrays of shape ``(n,)``: 0-based interval starts and exclusive ends.
    values
        Float array of shape ``(n,)``: the signal on each interval; must be finite.
    length
        Contig (or region) length in bases; every interval must end at or before it.
    bin_size
        Bin width in bases.

    Returns
    -------
    numpy.ndarray
        float32 array of shape ``(ceil(length / bin_size),)``.

    Raises
    ------
    InputError
        If an interval is empty or reversed (``end <= start``), starts before 0, ends
        past ``length``, overlaps another interval, or carries a non-finite value.
    """
    size = n_bins(length, bin_size)
    starts_a = np.asarray(starts, dtype=np.int64)
    ends_a = np.asarray(ends, dtype=np.int64)
    values_a = np.asarray(values, dtype=np.float64)
    if not starts_a.ndim == ends_a.ndim == values_a.ndim == 1 or not (
        starts_a.size == ends_a.size == values_a.size
    ):
        raise InputError(
            "starts, ends and values must be 1-D arrays of one length, got shapes "
            f"{starts_a.shape}, {ends_a.shape} and {values_a.shape}"
        )
    if starts_a.size == 0:
        return np.zeros(size, dtype=np.float32)

    if np.any(starts_a[1:] < starts_a[:-1]):
        order = np.argsort(starts_a, kind="stable")
        starts_a, ends_a, values_a = starts_a[order], ends_a[order], values_a[order]
    _check_intervals(starts_a, ends_a, values_a, length=length)

    boundaries = np.minimum(np.arange(size + 1, dtype=np.int64) * bin_size, length)
    # integral[k] = signal summed over [0, boundaries[k]); intervals are sorted and disjoint,
    # so their ends are sorted too.
    cumulative = np.concatenate(([0.0], np.cumsum(values_a * (ends_a - starts_a))))
    done = np.searchsorted(ends_a, boundaries, side="right")  # intervals ending <= boundary
    integral = cumulative[done]
    nxt = np.minimum(done, starts_a.size - 1)
    straddles = (done < starts_a.size) & (starts_a[nxt] < boundaries)
    integral += np.where(straddles, values_a[nxt] * (boundaries - starts_a[nxt]), 0.0)
    return (np.diff(integral) / np.diff(boundaries)).astype(np.float32)


def windows(length: int, bin_size: int, window_bins: int) -> Iterator[tuple[int, int, int, int]]:
    """Split a contig into consecutive windows of ``window_bins`` whole bins.

    Parameters
    ----------
    length
        Contig length in bases.
    bin_size
        Bin width in bases.
    window_bins
        Bins per window (the last window may have fewer).

    Yields
    ------
    tuple[int, int, int, int]
        ``(first_bin, end_bin, lo, hi)``: the window's bins ``first_bin .. end_bin`` cover
        the bases ``[lo, hi)``, with ``hi`` clipped to ``length``.
    """
    size = n_bins(length, bin_size)
    _check_positive("window_bins", window_bins)
    for first in range(0, size, window_bins):
        last = min(first + window_bins, size)
        yield first, last, first * bin_size, min(last * bin_size, length)


def bin_window(
    starts: ArrayLike,
    ends: ArrayLike,
    values: ArrayLike,
    *,
    lo: int,
    hi: int,
    bin_size: int,
) -> np.ndarray:
    """Mean signal per bin over the bases ``[lo, hi)`` of a contig.

    Intervals are in contig coordinates; those that do not overlap the window are ignored
    and those that cross its edges are clipped to it, so binning a contig window by window
    (:func:`windows`) gives the bins of :func:`bin_intervals` over the whole contig.

    Parameters
    ----------
    starts, ends, values
        As for :func:`bin_intervals`.
    lo, hi
        The window: ``lo`` a multiple of ``bin_size`` (a bin edge), ``hi > lo``.
    bin_size
        Bin width in bases.

    Returns
    -------
    numpy.ndarray
        float32 array of shape ``(ceil((hi - lo) / bin_size),)``.

    Raises
    ------
    InputError
        As for :func:`bin_intervals`, for the intervals overlapping the window (an interval
        past ``hi`` is clipped, not refused: checking the contig's end is the caller's job).
    """
    if lo % bin_size or hi <= lo:
        raise ValueError(f"window {lo}-{hi} must start on a bin edge and not be empty")
    starts_a = np.asarray(starts, dtype=np.int64)
    ends_a = np.asarray(ends, dtype=np.int64)
    values_a = np.asarray(values, dtype=np.float64)
    inside = (ends_a > lo) & (starts_a < hi)
    if not inside.all():
        starts_a, ends_a, values_a = starts_a[inside], ends_a[inside], values_a[inside]
    return bin_intervals(
        np.maximum(starts_a, lo) - lo,
        np.minimum(ends_a, hi) - lo,
        values_a,
        length=hi - lo,
        bin_size=bin_size,
    )


def arcsinh(x: ArrayLike) -> np.ndarray:
    """The signal transform: ``numpy.arcsinh``, elementwise, same shape as ``x``."""
    return np.arcsinh(x)


def sinh(x: ArrayLike) -> np.ndarray:
    """Inverse of :func:`arcsinh`: ``numpy.sinh``, elementwise, same shape as ``x``."""
    return np.sinh(x)


def _check_intervals(
    starts: np.ndarray, ends: np.ndarray, values: np.ndarray, *, length: int
) -> None:
    """Raise InputError on the first malformed interval (arrays sorted by start)."""
    bad = np.flatnonzero(ends <= starts)
    if bad.size:
        i = bad[0]
        raise InputError(f"interval {starts[i]}-{ends[i]} is empty or reversed (end <= start)")
    if starts[0] < 0:
        raise InputError(f"interval {starts[0]}-{ends[0]} starts before 0")
    bad = np.flatnonzero(starts[1:] < ends[:-1])
    if bad.size:
        i = bad[0]
        raise InputError(
            f"intervals {starts[i]}-{ends[i]} and {starts[i + 1]}-{ends[i + 1]} overlap"
        )
    if ends[-1] > length:
        raise InputError(f"interval {starts[-1]}-{ends[-1]} ends past the length {length}")
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        i = bad[0]
        raise InputError(f"interval {starts[i]}-{ends[i]} has the value {values[i]}")


def _check_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise InputError(f"{name} must be a positive integer, got {value!r}")
