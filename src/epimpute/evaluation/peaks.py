"""Peak calling on ``-log10 p`` signal the way ``macs3 bdgpeakcall`` does, and peak files.

The signal is a step function over one contig: contiguous intervals with one value each
(the bins of a track, or the lines of a bedGraph). As in MACS3:

1. adjacent intervals with the same value are one interval;
2. an interval is *enriched* when its value is ``>= cutoff`` (compared in float32);
3. enriched intervals are joined into one peak while the gap between the end of the last
   one and the start of the next is ``<= max_gap`` bp;
4. a peak is kept when ``end - start >= min_length`` bp;
5. its summit is the midpoint ``(start + end) // 2`` of its highest enriched interval; when
   several share the highest value, the middle one of them (the lower middle for an even
   count), and its score is that value.

:func:`call_peaks` takes a binned track, on the arcsinh scale by default (the bins are
turned back into ``-log10 p`` with ``sinh`` in float32 before the cutoff), so the default
cutoff of 2 (p = 0.01) is arcsinh 1.4436. ``min_length`` 200 and ``max_gap`` 30 are
``bdgpeakcall``'s defaults.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from epimpute.errors import InputError

__all__ = [
    "DEFAULT_PEAK_PARAMS",
    "PeakParams",
    "Peaks",
    "call_peaks",
    "call_peaks_intervals",
    "overlaps_mask",
    "peak_mask",
    "write_bed",
    "write_narrowpeak",
]


@dataclass(frozen=True)
class PeakParams:
    """Peak-calling thresholds, in ``bdgpeakcall``'s units.

    Attributes
    ----------
    cutoff
        Minimum ``-log10 p`` of an enriched interval (2 means p <= 0.01).
    min_length
        Minimum peak length in bp.
    max_gap
        Largest gap in bp between enriched intervals that are joined into one peak.
    """

    cutoff: float = 2.0
    min_length: int = 200
    max_gap: int = 30

    def __post_init__(self) -> None:
        if self.min_length < 0 or self.max_gap < 0:
            raise InputError(
                f"peak min_length and max_gap must be >= 0, got {self.min_length} and {self.max_gap}"
            )


DEFAULT_PEAK_PARAMS = PeakParams()
"""``bdgpeakcall``'s rules at ``-log10 p >= 2``: the thresholds used unless told otherwise."""


@dataclass(frozen=True)
class Peaks:
    """Peaks of one contig, sorted by position, in bp (0-based, half-open).

    Attributes
    ----------
    contig
        Contig name.
    start, end
        int64 arrays of shape ``(n_peaks,)``.
    summit
        int64 array of shape ``(n_peaks,)``: absolute summit position.
    score
        float32 array of shape ``(n_peaks,)``: the ``-log10 p`` value at the summit.
    """

    contig: str
    start: NDArray[np.int64]
    end: NDArray[np.int64]
    summit: NDArray[np.int64]
    score: NDArray[np.float32]

    def __len__(self) -> int:
        return int(self.start.shape[0])

    @classmethod
    def empty(cls, contig: str = "") -> Peaks:
        """A contig without peaks."""
        none = np.zeros(0, dtype=np.int64)
        return cls(contig, none, none.copy(), none.copy(), np.zeros(0, dtype=np.float32))

    def bins(self, bin_size: int) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
        """``(first_bin, end_bin, summit_bin)``: the bins each peak covers, ``[first, end)``."""
        first = self.start // bin_size
        end = -(-self.end // bin_size)
        return first, end, self.summit // bin_size


def call_peaks_intervals(
    starts: ArrayLike,
    ends: ArrayLike,
    values: ArrayLike,
    *,
    contig: str = "",
    params: PeakParams = DEFAULT_PEAK_PARAMS,
) -> Peaks:
    """Call peaks on a step function given as contiguous intervals (MACS3 ``bdgpeakcall``).

    Parameters
    ----------
    starts, ends
        Integer arrays of shape ``(n,)``, sorted; each interval starts where the previous ends.
    values
        Array of shape ``(n,)``: ``-log10 p`` of each interval (used as float32).
    contig
        Name recorded in the result.
    params
        Cutoff, minimum length and maximum gap.

    Returns
    -------
    Peaks
    """
    s = np.asarray(starts, dtype=np.int64)
    e = np.asarray(ends, dtype=np.int64)
    v = np.asarray(values, dtype=np.float32)
    if not (s.shape == e.shape == v.shape) or s.ndim != 1:
        raise InputError(
            f"starts, ends and values must be 1-D of one length, got {s.shape}, {e.shape}, {v.shape}"
        )
    if s.size == 0:
        return Peaks.empty(contig)
    if np.any(s[1:] != e[:-1]) or np.any(e <= s):
        raise InputError(f"contig {contig!r}: intervals must be non-empty, sorted and contiguous")

    # 1. one interval per run of equal values
    run_first = np.flatnonzero(np.concatenate(([True], v[1:] != v[:-1])))
    run_last = np.concatenate((run_first[1:] - 1, [v.size - 1]))
    run_start, run_end, run_value = s[run_first], e[run_last], v[run_first]

    # 2. enriched intervals
    enriched = np.flatnonzero(run_value >= np.float32(params.cutoff))
    if enriched.size == 0:
        return Peaks.empty(contig)
    a_start, a_end, a_value = run_start[enriched], run_end[enriched], run_value[enriched]

    # 3. join across small gaps
    opens = np.concatenate(([True], (a_start[1:] - a_end[:-1]) > params.max_gap))
    first = np.flatnonzero(opens)
    last = np.concatenate((first[1:] - 1, [a_start.size - 1]))
    peak_of = np.cumsum(opens) - 1

    # 5. summit: middle of the intervals sharing the peak's highest value
    highest = np.maximum.reduceat(a_value, first)
    tied = np.flatnonzero(a_value == highest[peak_of])
    tied_peak = peak_of[tied]
    n_tied = np.bincount(tied_peak, minlength=first.size)
    first_tied = np.searchsorted(tied_peak, np.arange(first.size))
    chosen = tied[first_tied + (n_tied + 1) // 2 - 1]
    summit = (a_start[chosen] + a_end[chosen]) // 2

    # 4. length filter
    p_start, p_end = a_start[first], a_end[last]
    keep = (p_end - p_start) >= params.min_length
    return Peaks(contig, p_start[keep], p_end[keep], summit[keep], a_value[chosen][keep])


def call_peaks(
    signal: ArrayLike,
    *,
    bin_size: int,
    length: int | None = None,
    contig: str = "",
    params: PeakParams = DEFAULT_PEAK_PARAMS,
    scale: Literal["arcsinh", "log10p"] = "arcsinh",
) -> Peaks:
    """Call peaks on one binned contig.

    Parameters
    ----------
    signal
        Array of shape ``(n_bins,)``; bin ``j`` covers ``[j * bin_size, (j + 1) * bin_size)``.
    bin_size
        Bin width in bp.
    length
        Contig length in bp (the last bin may be shorter); default ``n_bins * bin_size``.
    contig
        Name recorded in the result.
    params
        Cutoff (in ``-log10 p``), minimum length and maximum gap.
    scale
        ``"arcsinh"`` (store and prediction scale) or ``"log10p"`` (raw ``-log10 p``).

    Returns
    -------
    Peaks
    """
    values = np.asarray(signal)
    if values.ndim != 1:
        raise InputError(f"signal must have shape (n_bins,), got {values.shape}")
    if bin_size <= 0:
        raise InputError(f"bin_size must be positive, got {bin_size}")
    n = values.shape[0]
    if length is None:
        length = n * bin_size
    if not (n - 1) * bin_size < length <= n * bin_size:
        raise InputError(f"contig {contig!r}: {n} bins of {bin_size} bp do not fit a length of {length} bp")
    if scale == "arcsinh":
        values = np.sinh(values.astype(np.float32, copy=False))
    elif scale != "log10p":
        raise InputError(f"scale must be 'arcsinh' or 'log10p', got {scale!r}")
    starts = np.arange(n, dtype=np.int64) * bin_size
    ends = np.minimum(starts + bin_size, length)
    return call_peaks_intervals(starts, ends, values, contig=contig, params=params)


def peak_mask(peaks: Peaks, *, n_bins: int, bin_size: int) -> NDArray[np.bool_]:
    """Boolean array of shape ``(n_bins,)``: True for bins overlapping a peak."""
    first, end, _ = peaks.bins(bin_size)
    edges = np.zeros(n_bins + 1, dtype=np.int64)
    np.add.at(edges, np.minimum(first, n_bins), 1)
    np.add.at(edges, np.minimum(end, n_bins), -1)
    return np.cumsum(edges[:-1]) > 0


def overlaps_mask(peaks: Peaks, mask: NDArray[np.bool_], *, bin_size: int) -> NDArray[np.bool_]:
    """For each peak, whether any bin it covers is True in ``mask`` (shape ``(n_bins,)``).

    Returns
    -------
    numpy.ndarray
        Boolean array of shape ``(n_peaks,)``.
    """
    first, end, _ = peaks.bins(bin_size)
    n_bins = mask.shape[0]
    covered = np.concatenate(([0], np.cumsum(mask, dtype=np.int64)))
    return covered[np.minimum(end, n_bins)] > covered[np.minimum(first, n_bins)]


def _write(path: str | os.PathLike[str], lines: Iterable[str]) -> None:
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.writelines(lines)
    except OSError as exc:
        raise InputError(f"{path}: cannot write peaks ({exc.strerror})") from exc


def write_narrowpeak(path: str | os.PathLike[str], peaks: Iterable[Peaks], *, name: str = "peaks") -> None:
    """Write peaks as ENCODE narrowPeak (BED6+4), contigs in the order given.

    Columns: contig, start, end, ``{name}_peak{i}`` (numbered from 1), score
    ``int(10 * summit -log10 p)`` (as MACS3), strand ``.``, signalValue and pValue (both
    the summit ``-log10 p``), qValue ``-1`` (not computed) and the summit offset from start.

    Parameters
    ----------
    path
        Output file.
    peaks
        One :class:`Peaks` per contig.
    name
        Prefix of the peak names.
    """

    def lines() -> Iterable[str]:
        number = 0
        for contig_peaks in peaks:
            for start, end, summit, score in zip(
                contig_peaks.start.tolist(),
                contig_peaks.end.tolist(),
                contig_peaks.summit.tolist(),
                contig_peaks.score.tolist(),
            ):
                number += 1
                yield (
                    f"{contig_peaks.contig}\t{start}\t{end}\t{name}_peak{number}\t{int(10 * score)}\t.\t"
                    f"{score:.6g}\t{score:.6g}\t-1\t{summit - start}\n"
                )

    _write(path, lines())


def write_bed(path: str | os.PathLike[str], peaks: Iterable[Peaks]) -> None:
    """Write peaks as BED3 (contig, start, end), contigs in the order given.

    Parameters
    ----------
    path
        Output file.
    peaks
        One :class:`Peaks` per contig.
    """
    _write(
        path,
        (
            f"{p.contig}\t{start}\t{end}\n"
            for p in peaks
            for start, end in zip(p.start.tolist(), p.end.tolist())
        ),
    )
