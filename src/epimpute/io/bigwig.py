"""Read bigWig files into bins and write binned signal as bigWig.

Reading streams one contig in windows of bins (:func:`read_windows`), so memory is
bounded by a window, whatever the contig's length. Writing emits fixed-step entries (one per bin) and only puts the file in
place once it has been closed successfully.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from itertools import chain
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pyBigWig

from epimpute.errors import InputError
from epimpute.io.atomic import atomic_file
from epimpute.io.binning import bin_window, n_bins, windows

__all__ = ["BigWigWriter", "chrom_sizes", "read_binned", "read_windows"]

_REQUEST_BINS = 16_384  # bins per intervals request (410 kb at 25 bp)


def chrom_sizes(path: str | os.PathLike[str]) -> dict[str, int]:
    """Contig lengths from a bigWig header.

    Parameters
    ----------
    path
        A bigWig file.

    Returns
    -------
    dict[str, int]
        Contig name to length in bases, in the order the header lists them.

    Raises
    ------
    InputError
        If the file is missing or is not a readable bigWig.
    """
    with _open_bigwig(path) as bw:
        return {name: int(size) for name, size in bw.chroms().items()}


def read_binned(
    path: str | os.PathLike[str],
    chrom: str,
    *,
    length: int,
    bin_size: int,
    chunk_bins: int = 100_000,
) -> np.ndarray:
    """Mean signal per bin over one whole contig of a bigWig.

    The bins of :func:`read_windows` put together; use that to keep memory independent
    of the contig's length.

    Parameters
    ----------
    path, chrom, length, bin_size
        As for :func:`read_windows`.
    chunk_bins
        Bins read per request to the file.

    Returns
    -------
    numpy.ndarray
        float32 array of shape ``(ceil(length / bin_size),)``.

    Raises
    ------
    InputError
        As for :func:`read_windows`.
    """
    out = np.zeros(n_bins(length, bin_size), dtype=np.float32)
    for first, values in read_windows(
        path, chrom, length=length, bin_size=bin_size, window_bins=chunk_bins
    ):
        out[first : first + values.size] = values
    return out


def read_windows(
    path: str | os.PathLike[str],
    chrom: str,
    *,
    length: int,
    bin_size: int,
    window_bins: int = 131_072,
) -> Iterator[tuple[int, np.ndarray]]:
    """Mean signal per bin over one contig of a bigWig, one window of bins at a time.

    Bases without data count as 0 (see :func:`epimpute.io.binning.bin_intervals`). Only
    one window's intervals and bins are in memory at a time; the header is checked before
    the first window is yielded.

    Parameters
    ----------
    path
        A bigWig file.
    chrom
        Contig to read; must be in the file's header.
    length
        Expected contig length in bases; must equal the header's.
    bin_size
        Bin width in bases.
    window_bins
        Bins per window; the file is asked for at most 16,384 bins' worth of intervals
        at a time.

    Yields
    ------
    tuple[int, numpy.ndarray]
        The window's first bin and its float32 bins, ``window_bins`` of them (fewer in the
        last window), in increasing order.

    Raises
    ------
    InputError
        If the file is missing or unreadable, lacks ``chrom``, gives it another length,
        or stores a NaN or infinite value.
    """
    if isinstance(window_bins, bool) or not isinstance(window_bins, int) or window_bins <= 0:
        raise ValueError(f"window_bins must be a positive integer, got {window_bins!r}")
    n_bins(length, bin_size)  # validates both
    with _open_bigwig(path) as bw:
        header = bw.chroms()
        if chrom not in header:
            raise InputError(f"{path}: contig {chrom!r} is not in the file's header")
        if header[chrom] != length:
            raise InputError(
                f"{path}: contig {chrom!r} is {header[chrom]} bp in the file but "
                f"{length} bp was expected (assembly mismatch?)"
            )
        for first, last, _, _ in windows(length, bin_size, window_bins):
            out = np.empty(last - first, dtype=np.float32)
            # a dense file can hold one interval per base: ask for at most _REQUEST_BINS
            # bins' worth of intervals at a time so that their Python tuples stay few
            for a in range(first, last, _REQUEST_BINS):
                b = min(a + _REQUEST_BINS, last)
                out[a - first : b - first] = _bin_request(
                    bw, path, chrom, a * bin_size, min(b * bin_size, length), bin_size
                )
            yield first, out


def _bin_request(
    bw: Any, path: str | os.PathLike[str], chrom: str, lo: int, hi: int, bin_size: int
) -> np.ndarray:
    """Bins of ``[lo, hi)`` (a bin edge to a bin edge or the contig's end) from one request."""
    starts, ends, values = _intervals(bw, path, chrom, lo, hi)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        i = bad[0]
        raise InputError(f"{path}: {chrom}:{starts[i]}-{ends[i]} has the value {values[i]}")
    try:
        return bin_window(starts, ends, values, lo=lo, hi=hi, bin_size=bin_size)
    except InputError as exc:
        raise InputError(f"{path}: {chrom}:{lo}-{hi}: {exc}") from None


class BigWigWriter:
    """Write binned signal to a bigWig, one chunk of bins at a time.

    Use as a context manager. Contigs must be written in the order of ``chrom_sizes`` and,
    within a contig, chunks in increasing order; contigs or bins never written have no data
    in the file. Each bin becomes one fixed-step entry of width ``bin_size``; the last bin of
    a contig is clipped to the contig's end. The file is written under a temporary name in
    the same folder and renamed to ``path`` when the block exits without an error;
    otherwise the temporary file is removed and nothing is left behind.

    Parameters
    ----------
    path
        Output file.
    chrom_sizes
        Contig name to length in bases; becomes the file's header, in this order.
    bin_size
        Bin width in bases.

    Examples
    --------
    >>> with BigWigWriter("out.bw", {"chr1": 1000}, bin_size=25) as writer:  # doctest: +SKIP
    ...     writer.write("chr1", 0, values)
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        chrom_sizes: Mapping[str, int],
        *,
        bin_size: int,
    ) -> None:
        if not chrom_sizes:
            raise ValueError("chrom_sizes is empty")
        for size in chrom_sizes.values():
            n_bins(size, bin_size)  # validates both
        self.path = Path(path)
        self.bin_size = int(bin_size)
        self._sizes = {str(name): int(size) for name, size in chrom_sizes.items()}
        self._rank = {name: i for i, name in enumerate(self._sizes)}
        self._file = atomic_file(self.path)
        self._tmp: Path | None = None
        self._bw: Any = None
        self._cursor = (-1, 0)  # (rank of the contig written last, next free bin)

    def __enter__(self) -> BigWigWriter:
        if not self.path.parent.is_dir():
            raise InputError(f"{self.path}: the folder {self.path.parent} does not exist")
        self._tmp = self._file.__enter__()
        try:
            bw = pyBigWig.open(str(self._tmp), "w")
        except RuntimeError as exc:
            bw = exc
        if not hasattr(bw, "addHeader"):
            self._release()
            detail = f" ({bw})" if bw is not None else ""
            raise InputError(f"{self.path}: cannot be created{detail}")
        self._bw = bw
        try:
            bw.addHeader(list(self._sizes.items()), maxZooms=10)
        except BaseException:
            self._discard()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bw is None:
            return
        if exc_type is not None:
            self._discard()
            return
        try:
            self._bw.close()
        except BaseException:
            self._bw = None
            self._release()
            raise
        self._bw = None
        self._file.__exit__(None, None, None)

    def write(self, chrom: str, start_bin: int, values: np.ndarray) -> None:
        """Write bins ``start_bin .. start_bin + len(values)`` of ``chrom``.

        Parameters
        ----------
        chrom
            A contig of ``chrom_sizes``, not before the contig written last.
        start_bin
            First bin written; not before the end of the previous chunk of ``chrom``.
        values
            Finite values of shape ``(n,)``, one per bin.

        Raises
        ------
        ValueError
            If the writer is not open, the chunk is out of order or out of range, or a
            value is not finite.
        """
        if self._bw is None:
            raise ValueError(f"{self.path}: write() outside the writer's 'with' block")
        if chrom not in self._rank:
            raise ValueError(f"{self.path}: contig {chrom!r} is not in chrom_sizes")
        data = np.asarray(values, dtype=np.float64)
        if data.ndim != 1:
            raise ValueError(f"values must be 1-D, got shape {data.shape}")
        length = self._sizes[chrom]
        total = n_bins(length, self.bin_size)
        if start_bin < 0 or start_bin + data.size > total:
            raise ValueError(
                f"bins {start_bin}-{start_bin + data.size} are outside {chrom} ({total} bins)"
            )
        rank = self._rank[chrom]
        if (rank, start_bin) < self._cursor:
            raise ValueError(
                f"{self.path}: {chrom} bin {start_bin} written out of order (contigs in "
                "the order of chrom_sizes, bins increasing)"
            )
        if not np.isfinite(data).all():
            raise ValueError(f"{self.path}: {chrom}: values must be finite")
        if data.size == 0:
            return
        self._cursor = (rank, start_bin + data.size)

        end_bin = start_bin + data.size
        clipped = end_bin == total and length % self.bin_size != 0
        full = data[:-1] if clipped else data
        if full.size:
            self._add(chrom, start_bin * self.bin_size, full, span=self.bin_size)
        if clipped:
            self._add(chrom, (total - 1) * self.bin_size, data[-1:], span=length % self.bin_size)

    def _add(self, chrom: str, start: int, values: np.ndarray, *, span: int) -> None:
        payload = values if pyBigWig.numpy else values.tolist()
        self._bw.addEntries(chrom, int(start), values=payload, span=span, step=span)

    def _discard(self) -> None:
        bw, self._bw = self._bw, None
        with suppress(Exception):  # the file is removed anyway
            bw.close()
        self._release()

    def _release(self) -> None:
        """Remove the temporary file (the destination stays untouched)."""
        with suppress(_Discarded):
            self._file.__exit__(_Discarded, _Discarded(), None)


class _Discarded(Exception):
    """Thrown into the temporary file's context to discard it."""


@contextmanager
def _open_bigwig(path: str | os.PathLike[str]) -> Iterator[Any]:
    """Open a bigWig for reading, turning every failure into an InputError."""
    if not Path(path).is_file():
        raise InputError(f"{path}: no such file")
    try:
        bw = pyBigWig.open(str(path))
    except RuntimeError as exc:
        raise InputError(f"{path}: not a readable bigWig file ({exc})") from None
    if bw is None:
        raise InputError(f"{path}: not a readable bigWig file")
    try:
        if not bw.isBigWig():
            raise InputError(f"{path}: not a bigWig file (bigBed?)")
        yield bw
    finally:
        bw.close()


def _intervals(
    bw: Any, path: str | os.PathLike[str], chrom: str, lo: int, hi: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Intervals overlapping ``[lo, hi)`` as (starts, ends, values) arrays."""
    try:
        found = bw.intervals(chrom, lo, hi)
    except RuntimeError as exc:
        raise InputError(f"{path}: cannot read {chrom}:{lo}-{hi} ({exc})") from None
    if not found:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.float64)
    flat = np.fromiter(chain.from_iterable(found), dtype=np.float64, count=3 * len(found))
    table = flat.reshape(-1, 3)
    return table[:, 0].astype(np.int64), table[:, 1].astype(np.int64), table[:, 2]
