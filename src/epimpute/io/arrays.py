"""Read pre-binned signal from ``.npy`` and ``.npz`` files.

An array file holds bins that are already averaged (one value per bin), as 1-D real arrays:

- ``.npy``: one contig; its name comes from the sample sheet's ``chrom`` column.
- ``.npz`` with arrays named after contigs (``np.savez(path, chr1=..., chr2=...)``).
- ``.npz`` with a single array, whatever its name, when ``chrom`` names the contig.

:func:`read_windows` streams one contig's array from the file (plain or compressed ``.npz``)
a window of bins at a time, without holding the whole array.
"""

from __future__ import annotations

import os
import re
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np

from epimpute.errors import InputError

__all__ = ["array_lengths", "read_array", "read_windows"]

_DEFAULT_NAME = re.compile(r"arr_\d+")


def read_array(path: str | os.PathLike[str], *, chrom: str | None = None) -> dict[str, np.ndarray]:
    """Read binned signal arrays keyed by contig.

    Parameters
    ----------
    path
        A ``.npy`` or ``.npz`` file.
    chrom
        Contig name. Required for ``.npy`` and single-array ``.npz`` files; for an ``.npz``
        keyed by contig, selects that one contig (all contigs when ``None``).

    Returns
    -------
    dict[str, numpy.ndarray]
        Contig name to a float32 array of shape ``(n_bins,)``.

    Raises
    ------
    InputError
        If the file is missing or unreadable, ``chrom`` is needed but not given or not
        found, or an array is not 1-D or not real-valued.
    """
    names = _select(path, chrom)
    out: dict[str, np.ndarray] = {}
    try:
        if Path(path).suffix == ".npy":
            out[names[0][0]] = np.load(path, allow_pickle=False)
        else:
            with np.load(path, allow_pickle=False) as archive:
                for contig, key in names:
                    out[contig] = archive[key]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path}: not a readable NumPy file ({exc})") from None
    for contig, arr in out.items():
        _check_array(path, contig, arr.shape, arr.dtype)
        out[contig] = arr.astype(np.float32, copy=False)
    return out


def read_windows(
    path: str | os.PathLike[str], *, chrom: str, window_bins: int = 131_072
) -> Iterator[tuple[int, np.ndarray]]:
    """Stream one contig's binned signal, a window of bins at a time.

    Parameters
    ----------
    path
        A ``.npy`` or ``.npz`` file.
    chrom
        Contig name, selecting the array as for :func:`read_array`.
    window_bins
        Bins per window.

    Yields
    ------
    tuple[int, numpy.ndarray]
        The window's first bin and its float32 values (``window_bins`` of them, fewer in
        the last window); together, the array :func:`read_array` returns for ``chrom``.

    Raises
    ------
    InputError
        As for :func:`read_array`, and if the file ends before the array does.
    """
    if isinstance(window_bins, bool) or not isinstance(window_bins, int) or window_bins <= 0:
        raise ValueError(f"window_bins must be a positive integer, got {window_bins!r}")
    ((contig, key),) = _select(path, chrom)
    try:
        if Path(path).suffix == ".npy":
            with open(path, "rb") as fh:
                yield from _stream(path, contig, fh, window_bins)
        else:
            with zipfile.ZipFile(path) as archive, archive.open(f"{key}.npy") as fh:
                yield from _stream(path, contig, fh, window_bins)
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise InputError(f"{path}: not a readable NumPy file ({exc})") from None


def _stream(
    path: str | os.PathLike[str], contig: str, fh: IO[bytes], window_bins: int
) -> Iterator[tuple[int, np.ndarray]]:
    """Windows of the 1-D array whose ``.npy`` header starts at ``fh``'s position."""
    shape, dtype = _read_header(fh)
    _check_array(path, contig, shape, dtype)
    for first in range(0, shape[0], window_bins):
        count = min(window_bins, shape[0] - first)
        raw = fh.read(count * dtype.itemsize)
        if len(raw) != count * dtype.itemsize:
            raise InputError(f"{path}: the array for {contig!r} ends early (truncated file?)")
        yield first, np.frombuffer(raw, dtype=dtype).astype(np.float32)


def array_lengths(path: str | os.PathLike[str], *, chrom: str | None = None) -> dict[str, int]:
    """Bins per contig of an array file, read from the array headers only.

    Parameters
    ----------
    path, chrom
        As for :func:`read_array`.

    Returns
    -------
    dict[str, int]
        Contig name to the number of bins :func:`read_array` would return for it.

    Raises
    ------
    InputError
        As for :func:`read_array`.
    """
    names = _select(path, chrom)
    headers = _headers(path)
    lengths = {}
    for contig, key in names:
        shape, dtype = headers[key]
        _check_array(path, contig, shape, dtype)
        lengths[contig] = shape[0]
    return lengths


def _select(path: str | os.PathLike[str], chrom: str | None) -> list[tuple[str, str]]:
    """(contig, array name in the file) pairs that ``read_array`` returns."""
    keys = list(_headers(path))
    if Path(path).suffix == ".npy":
        if not chrom:
            raise InputError(f"{path}: a .npy file holds one contig; give its name (chrom)")
        return [(chrom, keys[0])]
    if not keys:
        raise InputError(f"{path}: the .npz file holds no arrays")
    if chrom:
        if chrom in keys:
            return [(chrom, chrom)]
        if len(keys) == 1:
            return [(chrom, keys[0])]
        raise InputError(
            f"{path}: no array named {chrom!r} (arrays: {', '.join(keys[:5])}"
            f"{', ...' if len(keys) > 5 else ''})"
        )
    unnamed = [k for k in keys if _DEFAULT_NAME.fullmatch(k)]
    if unnamed:
        raise InputError(
            f"{path}: array {unnamed[0]!r} is not named after a contig; save with "
            "np.savez(path, chr1=..., ...) or give the contig (chrom)"
        )
    return [(k, k) for k in keys]


def _headers(path: str | os.PathLike[str]) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Array name to (shape, dtype) without reading the data."""
    path = Path(path)
    if path.suffix not in (".npy", ".npz"):
        raise InputError(f"{path}: expected a .npy or .npz file")
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        if path.suffix == ".npy":
            with open(path, "rb") as fh:
                return {"": _read_header(fh)}
        with zipfile.ZipFile(path) as archive:
            headers = {}
            for member in archive.namelist():
                if member.endswith(".npy"):
                    with archive.open(member) as fh:
                        headers[member[: -len(".npy")]] = _read_header(fh)
            return headers
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path}: not a readable NumPy file ({exc})") from None


def _read_header(fh: IO[bytes]) -> tuple[tuple[int, ...], np.dtype]:
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
    else:
        shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
    return tuple(shape), np.dtype(dtype)


def _check_array(
    path: str | os.PathLike[str], contig: str, shape: tuple[int, ...], dtype: np.dtype
) -> None:
    if len(shape) != 1:
        raise InputError(
            f"{path}: array for {contig!r} has shape {shape}; expected one value per bin (1-D)"
        )
    if dtype.kind not in "fiu":
        raise InputError(f"{path}: array for {contig!r} has dtype {dtype}; expected numbers")
