"""Stream a bedGraph file contig by contig into bins.

A bedGraph has whitespace-separated ``chrom start end value`` lines (0-based, half-open),
optionally after ``track`` / ``browser`` / ``#`` header lines, and may be gzipped. The file
is parsed with pandas in chunks of rows and only the current contig's intervals are held in
memory, so each contig must occupy one contiguous block of lines (as ``sort -k1,1 -k2,2n``
produces); intervals within a contig may come in any order. Bins come out a window at a
time (:func:`read_windows`).
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator, Mapping
from itertools import pairwise
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from epimpute.errors import InputError
from epimpute.io.binning import bin_window, n_bins, windows

__all__ = ["read_binned_contigs", "read_windows", "write_bedgraph"]

_HEADER_PREFIXES = ("track", "browser", "#")
_CHUNK_ROWS = 1_000_000
_WINDOW_BINS = 131_072
_SORT_HINT = "sort it with 'sort -k1,1 -k2,2n'"


def read_binned_contigs(
    path: str | os.PathLike[str],
    *,
    chrom_sizes: Mapping[str, int],
    bin_size: int,
    chroms: set[str] | None = None,
    chunk_rows: int = _CHUNK_ROWS,
) -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(contig, bins)`` for each contig present in a bedGraph, in file order.

    The windows of :func:`read_windows` put together, one whole contig at a time.

    Parameters
    ----------
    path, chrom_sizes, bin_size, chroms, chunk_rows
        As for :func:`read_windows`.

    Yields
    ------
    tuple[str, numpy.ndarray]
        The contig and its float32 bins, shape ``(ceil(chrom_sizes[contig] / bin_size),)``.

    Raises
    ------
    InputError
        As for :func:`read_windows`.
    """
    contig, out = "", None
    for name, first, values in read_windows(
        path, chrom_sizes=chrom_sizes, bin_size=bin_size, chroms=chroms, chunk_rows=chunk_rows
    ):
        if out is None or name != contig:
            if out is not None:
                yield contig, out
            contig, out = name, np.zeros(n_bins(chrom_sizes[name], bin_size), dtype=np.float32)
        out[first : first + values.size] = values
    if out is not None:
        yield contig, out


def read_windows(
    path: str | os.PathLike[str],
    *,
    chrom_sizes: Mapping[str, int],
    bin_size: int,
    chroms: set[str] | None = None,
    window_bins: int = _WINDOW_BINS,
    chunk_rows: int = _CHUNK_ROWS,
) -> Iterator[tuple[str, int, np.ndarray]]:
    """Yield each contig present in a bedGraph, in file order, a window of bins at a time.

    Bases without an interval count as 0. Contigs absent from the file are not yielded. A
    contig's intervals are held while it is read (they may come in any order); its bins
    are produced one window at a time.

    Parameters
    ----------
    path
        A bedGraph file, plain or gzipped (detected from its content).
    chrom_sizes
        Contig name to length in bases; every contig read must be in it.
    bin_size
        Bin width in bases.
    chroms
        If given, only these contigs are read; lines of other contigs are skipped unchecked.
    window_bins
        Bins per window.
    chunk_rows
        Lines parsed per pandas chunk.

    Yields
    ------
    tuple[str, int, numpy.ndarray]
        The contig, the window's first bin and its float32 bins (``window_bins`` of them,
        fewer in a contig's last window); every window of a contig, in increasing order.

    Raises
    ------
    InputError
        Naming the file and line: a missing or unreadable file, a line that does not parse,
        a contig missing from ``chrom_sizes``, a contig split over several blocks, an
        empty or reversed interval, overlapping intervals, an interval past the contig's
        end, or a NaN / infinite value. A contig is checked in full before its first window.
    """
    n_bins(1, bin_size)  # validates bin_size
    if isinstance(window_bins, bool) or not isinstance(window_bins, int) or window_bins <= 0:
        raise ValueError(f"window_bins must be a positive integer, got {window_bins!r}")
    if not Path(path).is_file():
        raise InputError(f"{path}: no such file")
    compression = "gzip" if _is_gzip(path) else None
    header_lines = _count_header_lines(path, compression)

    lines = _Lines(path, compression, header_lines)
    current: _Contig | None = None
    finished: set[str] = set()
    row = 0  # index of the next data row
    for frame in _chunks(path, compression, header_lines, chunk_rows):
        if frame.empty:
            continue
        codes, names = pd.factorize(frame["chrom"], sort=False)
        cuts = np.flatnonzero(codes[1:] != codes[:-1]) + 1
        bounds = np.concatenate(([0], cuts, [len(frame)]))
        for a, b in pairwise(bounds):
            name = str(names[codes[a]])
            if current is not None and name == current.name:
                current.add(frame, a, b)
                continue
            if current is not None:
                if current.wanted:
                    for first, values in current.windows(lines, chrom_sizes, bin_size,
                                                         window_bins):
                        yield current.name, first, values
                finished.add(current.name)
            wanted = chroms is None or name in chroms
            if wanted:
                _check_new_contig(lines, row + a, name, chrom_sizes, finished)
            current = _Contig(name, first_row=row + a, wanted=wanted)
            current.add(frame, a, b)
        row += len(frame)
    if current is not None and current.wanted:
        for first, values in current.windows(lines, chrom_sizes, bin_size, window_bins):
            yield current.name, first, values


def write_bedgraph(
    path: str | os.PathLike[str],
    chrom: str,
    starts: ArrayLike,
    ends: ArrayLike,
    values: ArrayLike,
) -> None:
    """Write one contig's intervals as a 4-column bedGraph.

    Parameters
    ----------
    path
        Output file; gzipped if its name ends in ``.gz``.
    chrom
        Contig name written on every line.
    starts, ends
        Integer arrays of shape ``(n,)``: 0-based starts and exclusive ends.
    values
        Array of shape ``(n,)``: the value of each interval.
    """
    frame = pd.DataFrame(
        {
            "chrom": chrom,
            "start": np.asarray(starts, dtype=np.int64),
            "end": np.asarray(ends, dtype=np.int64),
            "value": np.asarray(values, dtype=np.float64),
        }
    )
    compression = "gzip" if str(path).endswith(".gz") else None
    frame.to_csv(path, sep="\t", header=False, index=False, compression=compression)


def _check_new_contig(
    lines: _Lines, row: int, name: str, chrom_sizes: Mapping[str, int], finished: set[str]
) -> None:
    """Reject a contig that was seen before or has no size (``row`` is its first row)."""
    if name in finished:
        problem = f"contig {name!r} appears again after other contigs; {_SORT_HINT}"
    elif name not in chrom_sizes:
        problem = f"contig {name!r} is not in the chromosome sizes (assembly mismatch?)"
    else:
        return
    line, text = lines.locate(row)
    raise InputError(f"{lines.path}, line {line}: {text!r}: {problem}")


class _Contig:
    """Intervals of the contig being read, gathered from one or more chunks."""

    def __init__(self, name: str, *, first_row: int, wanted: bool) -> None:
        self.name = name
        self.first_row = first_row
        self.wanted = wanted
        self._parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def add(self, frame: pd.DataFrame, a: int, b: int) -> None:
        if self.wanted:
            self._parts.append(
                (
                    frame["start"].to_numpy()[a:b].copy(),
                    frame["end"].to_numpy()[a:b].copy(),
                    frame["value"].to_numpy()[a:b].copy(),
                )
            )

    def windows(
        self, lines: _Lines, chrom_sizes: Mapping[str, int], bin_size: int, window_bins: int
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Check the contig's intervals, then yield ``(first_bin, bins)`` per window."""
        starts, ends, values = (np.concatenate(col) for col in zip(*self._parts, strict=True))
        self._parts = []
        length = chrom_sizes[self.name]
        order = None
        if np.any(starts[1:] < starts[:-1]):
            order = np.argsort(starts, kind="stable")
            starts, ends, values = starts[order], ends[order], values[order]

        def fail(i: int, problem: str) -> InputError:
            row = self.first_row + int(order[i] if order is not None else i)
            line, text = lines.locate(row)
            return InputError(f"{lines.path}, line {line}: {text!r}: {problem}")

        bad = np.flatnonzero((ends <= starts) | (starts < 0))
        if bad.size:
            raise fail(bad[0], "the interval is empty, reversed or starts before 0")
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise fail(bad[0], f"the value is {values[bad[0]]}")
        bad = np.flatnonzero(ends > length)
        if bad.size:
            raise fail(
                bad[0], f"the interval ends past {self.name} ({length} bp; assembly mismatch?)"
            )
        bad = np.flatnonzero(starts[1:] < ends[:-1])
        if bad.size:
            i = bad[0]
            row = self.first_row + int(order[i] if order is not None else i)
            other, other_text = lines.locate(row)
            raise fail(i + 1, f"the interval overlaps line {other} ({other_text!r})")
        # sorted and disjoint, so the ends are sorted too
        for first, _, lo, hi in windows(length, bin_size, window_bins):
            a, b = np.searchsorted(ends, lo, side="right"), np.searchsorted(starts, hi)
            yield first, bin_window(
                starts[a:b], ends[a:b], values[a:b], lo=lo, hi=hi, bin_size=bin_size
            )


class _Lines:
    """Maps data-row indices back to line numbers and text (used only to report errors)."""

    def __init__(self, path: str | os.PathLike[str], compression: str | None, skip: int):
        self.path = path
        self._compression = compression
        self._skip = skip

    def locate(self, row: int) -> tuple[int, str]:
        """Line number (1-based) and text of data row ``row`` (0-based)."""
        seen = -1
        with _open_text(self.path, self._compression) as fh:
            for number, line in enumerate(fh, start=1):
                if number <= self._skip or not line.strip():
                    continue
                seen += 1
                if seen == row:
                    return number, " ".join(line.split())
        return -1, ""


def _chunks(
    path: str | os.PathLike[str], compression: str | None, skip: int, chunk_rows: int
) -> Iterator[pd.DataFrame]:
    """Parse the data lines in chunks, reporting the first bad line on a parse failure."""
    try:
        reader = pd.read_csv(
            path,
            sep=r"\s+",
            header=None,
            names=["chrom", "start", "end", "value"],
            usecols=[0, 1, 2, 3],
            dtype={"chrom": str, "start": np.int64, "end": np.int64, "value": np.float64},
            skiprows=skip,
            na_filter=False,  # a missing field or "NA" is a parse error, not a NaN
            compression=compression,
            chunksize=chunk_rows,
            engine="c",
        )
    except pd.errors.EmptyDataError:
        return
    except (ValueError, OSError, EOFError, zlib.error) as exc:
        raise _parse_error(path, compression, skip, exc) from None
    with reader:
        while True:
            try:
                frame = next(reader)
            except StopIteration:
                return
            except pd.errors.EmptyDataError:
                return
            except (ValueError, OSError, EOFError, zlib.error) as exc:
                raise _parse_error(path, compression, skip, exc) from None
            yield frame


def _parse_error(
    path: str | os.PathLike[str], compression: str | None, skip: int, exc: Exception
) -> InputError:
    """Find the first data line that is not ``chrom start end value`` and describe it."""
    try:
        with _open_text(path, compression) as fh:
            for number, line in enumerate(fh, start=1):
                if number <= skip or not line.strip():
                    continue
                fields = line.split()
                where = f"{path}, line {number}: {' '.join(fields)!r}"
                try:
                    int(fields[1]), int(fields[2])
                    value = float(fields[3])
                except (IndexError, ValueError):
                    return InputError(f"{where}: expected 'chrom start end value'")
                if not np.isfinite(value):
                    return InputError(f"{where}: the value is {value}")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as err:
        return InputError(f"{path}: not a readable bedGraph file ({err})")
    return InputError(f"{path}: not a readable bedGraph file ({exc})")


def _count_header_lines(path: str | os.PathLike[str], compression: str | None) -> int:
    """Number of leading lines that are blank or ``track`` / ``browser`` / ``#`` lines."""
    count = 0
    try:
        with _open_text(path, compression) as fh:
            for line in fh:
                stripped = line.strip()
                if stripped and not stripped.startswith(_HEADER_PREFIXES):
                    break
                count += 1
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable bedGraph file ({exc})") from None
    return count


def _is_gzip(path: str | os.PathLike[str]) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(2) == b"\x1f\x8b"
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc})") from None


def _open_text(path: str | os.PathLike[str], compression: str | None) -> IO[str]:
    if compression == "gzip":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")
