"""Binned genome-wide features to average over windows: observed tracks of a store, imputed
tracks of an ``epimpute impute`` folder, or an Avocado model's genome factors.

Every source gives, per contig, the mean of each of its columns over the bins of each
window. A window covers bins ``[start // b, ceil(end / b))`` of bin size ``b``, clipped to
the contig; a window with no bin inside the contig gets NaN. Stores and factors files are
read a block of bins at a time (all columns of the block), so memory does not grow with the
contig's length; an imputation folder is read one track's contig at a time.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from epimpute.errors import InputError
from epimpute.evaluation.sources import PredictionDir
from epimpute.factors import is_factors_file
from epimpute.imputation import RECORD_FILE
from epimpute.store import Store
from epimpute.store.store import is_store

__all__ = ["FactorsSource", "FeatureSource", "PredictionSource", "StoreSource", "open_source",
           "window_means"]

_BLOCK_VALUES = 16_000_000
"""Values read at a time (64 MB of float32)."""


class FeatureSource(Protocol):
    """Columns of binned values along contigs."""

    name: str
    columns: list[str]
    contigs: dict[str, int]
    """Contig to length in bp."""

    def means(self, contig: str, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """``(n_windows, n_columns)`` float32 means over the windows ``[start, end)``."""
        ...


def _bin_ranges(start: np.ndarray, end: np.ndarray, bin_size: int, n_bins: int
                ) -> tuple[np.ndarray, np.ndarray]:
    lo = np.clip(np.asarray(start, np.int64) // bin_size, 0, n_bins)
    hi = np.clip(-(-np.asarray(end, np.int64) // bin_size), 0, n_bins)
    return lo, np.maximum(hi, lo)


def window_means(blocks: Iterator[tuple[int, np.ndarray]], lo: np.ndarray, hi: np.ndarray,
                 n_columns: int) -> np.ndarray:
    """Means over bin ranges ``[lo, hi)`` of values given block by block.

    Parameters
    ----------
    blocks
        ``(first_bin, values)`` pairs, ``values`` of shape ``(n_columns, n)`` holding bins
        ``first_bin .. first_bin + n``; blocks may come in any order but must not overlap.
    lo, hi
        Bin range of each window.
    n_columns
        Rows of every block.

    Returns
    -------
    numpy.ndarray
        float32 ``(n_windows, n_columns)``; NaN for empty ranges.
    """
    sums = np.zeros((lo.size, n_columns), dtype=np.float64)
    for first, values in blocks:
        last = first + values.shape[1]
        a, b = np.clip(lo, first, last) - first, np.clip(hi, first, last) - first
        hit = np.flatnonzero(b > a)
        if not hit.size:
            continue
        padded = np.concatenate([values, np.zeros((n_columns, 1), values.dtype)], axis=1)
        pairs = np.stack([a[hit], b[hit]], axis=1).reshape(-1)
        sums[hit] += np.add.reduceat(padded, pairs, axis=1, dtype=np.float64)[:, ::2].T
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / (hi - lo)[:, None]
    means[hi <= lo] = np.nan
    return means.astype(np.float32)


class StoreSource:
    """The observed tracks of a store (arcsinh scale), one column per track."""

    def __init__(self, store: Store, *, name: str) -> None:
        self.name = name
        self.store = store
        self.columns = [t.key for t in store.tracks]
        self.contigs = store.contigs

    def means(self, contig: str, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        store, n_bins = self.store, self.store.n_bins(contig)
        lo, hi = _bin_ranges(start, end, store.bin_size, n_bins)
        step = max(4096, _BLOCK_VALUES // max(1, len(self.columns)))

        def blocks() -> Iterator[tuple[int, np.ndarray]]:
            for first in range(0, n_bins, step):
                values = store.read(contig, first, min(first + step, n_bins))
                yield first, np.arcsinh(values) if store.transform == "none" else values

        return window_means(blocks(), lo, hi, len(self.columns))


class PredictionSource:
    """The imputed tracks of an ``epimpute impute`` folder (arcsinh scale), one column per
    track; contig lengths and bin size come from the store the imputation read."""

    def __init__(self, folder: Path, *, name: str) -> None:
        self.name = name
        record_path = Path(folder) / RECORD_FILE
        try:
            record = json.loads(record_path.read_text())
            targets, store_path = list(record["targets"]), Path(record["store"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise InputError(f"{record_path}: not a readable imputation record ({error})") from None
        if not is_store(store_path):
            raise InputError(f"{record_path}: the store it was imputed from, {store_path}, is "
                             "not there (it gives the contig lengths and bin size)")
        self.store = Store.open(store_path)
        self.folder = PredictionDir(folder, name=name)
        self.columns = self.folder.keys(targets)
        if not self.columns:
            raise InputError(f"{folder}: none of the imputed tracks of {record_path} is there")
        present = self.folder.contigs(self.columns[0])
        self.contigs = {c: n for c, n in self.store.contigs.items() if c in present}

    def means(self, contig: str, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        store = self.store
        lo, hi = _bin_ranges(start, end, store.bin_size, store.n_bins(contig))
        length = store.contigs[contig]
        blocks = ((0, self.folder.read(key, contig, length=length, bin_size=store.bin_size)[None])
                  for key in self.columns)
        return np.concatenate([window_means(iter([block]), lo, hi, 1) for block in blocks],
                              axis=1)


class FactorsSource:
    """Genome factors of ``epimpute factors`` files (one contig each), one column per
    factor (``m<member>.<scale>bp.<index>``)."""

    def __init__(self, paths: Sequence[Path], *, name: str) -> None:
        self.name = name
        self.paths: dict[str, Path] = {}
        self.contigs: dict[str, int] = {}
        self.columns: list[str] = []
        for path in paths:
            with np.load(path, allow_pickle=False) as saved:
                contig, bin_size = str(saved["chrom"]), int(saved["bin_size"])
                scale, member = saved["factor_scale_bp"], saved["factor_member"]
                n_bins = int(saved["start"].shape[0])
            columns = [f"m{m}.{s}bp.{j}" for j, (m, s) in enumerate(zip(member, scale))]
            if self.columns and columns != self.columns:
                raise InputError(f"{path}: its factors ({len(columns)} columns) differ from "
                                 f"those of {next(iter(self.paths.values()))}")
            if contig in self.paths:
                raise InputError(f"{path}: a second factors file of {contig} for {name!r}")
            self.columns, self.bin_size = columns, bin_size
            self.paths[contig] = Path(path)
            self.contigs[contig] = n_bins * bin_size

    def means(self, contig: str, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        path, width = self.paths[contig], len(self.columns)
        n_bins = self.contigs[contig] // self.bin_size
        lo, hi = _bin_ranges(start, end, self.bin_size, n_bins)
        step = max(1024, _BLOCK_VALUES // width)

        def blocks() -> Iterator[tuple[int, np.ndarray]]:
            with zipfile.ZipFile(path) as archive, archive.open("factors.npy") as member:
                version = np.lib.format.read_magic(member)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read_header(member)
                for first in range(0, shape[0], step):
                    rows = min(step, shape[0] - first)
                    raw = member.read(rows * width * dtype.itemsize)
                    yield first, np.frombuffer(raw, dtype=dtype).reshape(rows, width).T

        return window_means(blocks(), lo, hi, width)


def open_source(name: str, paths: Sequence[Path]) -> FeatureSource:
    """The source at ``paths``: a store, an imputation folder, or factors files.

    Raises
    ------
    InputError
        If a path is none of those, or several paths are given for a store or folder.
    """
    paths = [Path(p) for p in paths]
    if all(p.suffix == ".npz" and is_factors_file(p) for p in paths):
        return FactorsSource(paths, name=name)
    if len(paths) > 1:
        raise InputError(f"feature set {name!r}: several paths are allowed only for factors "
                         f"files, got {', '.join(map(str, paths))}")
    path = paths[0]
    if not path.exists():
        raise InputError(f"{path}: feature source of {name!r} not found")
    if is_store(path):
        return StoreSource(Store.open(path), name=name)
    if (path / RECORD_FILE).is_file():
        return PredictionSource(path, name=name)
    raise InputError(f"{path}: not an epimpute store, imputation folder, factors file or "
                     ".npy feature matrix")
