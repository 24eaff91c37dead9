"""What a downstream predictor learns: values per row id, or positive regions.

- An expression (or any value) table: tab-separated ``id<TAB>value`` lines; a first line
  whose value is not a number is a header. Ids must be unique.
- A BED of positive regions: a window is labelled 1 when it overlaps one, else 0.
- A precomputed feature matrix ``X.npy`` (rows x features), its rows named by the lines of
  ``X.rows.txt`` beside it, or, without that file, in the order of the labels.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from epimpute.downstream.windows import Windows
from epimpute.errors import InputError
from epimpute.io.bed import read_bed

__all__ = ["overlaps_positive", "read_matrix", "read_values", "rows_file"]


def read_values(path: str | os.PathLike[str]) -> pd.Series:
    """The float values of an ``id<TAB>value`` table, indexed by id, in file order.

    Raises
    ------
    InputError
        If the file is missing, a line has fewer than 2 columns or a value that is not a
        finite number (naming the line), an id repeats, or there are no rows.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InputError(f"{path}: labels file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot read the labels file ({error})") from None
    ids, values, first = [], [], True
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.startswith("#"):
            continue
        header, first = first, False
        fields = line.rstrip("\r").split("\t")
        if len(fields) < 2:
            raise InputError(f"{path}: line {number} has {len(fields)} tab-separated column; "
                             "expected id and value")
        try:
            value = float(fields[1])
        except ValueError:
            if header:
                continue
            raise InputError(f"{path}: line {number}: value {fields[1]!r} is not a number") from None
        if not np.isfinite(value):
            raise InputError(f"{path}: line {number}: value {fields[1]!r} is not finite")
        ids.append(fields[0])
        values.append(value)
    series = pd.Series(values, index=pd.Index(ids, dtype=object), dtype=np.float64)
    repeated = series.index[series.index.duplicated()]
    if len(repeated):
        raise InputError(f"{path}: id {repeated[0]!r} appears more than once")
    if series.empty:
        raise InputError(f"{path}: no labelled rows")
    return series


def overlaps_positive(windows: Windows, path: str | os.PathLike[str]) -> np.ndarray:
    """1.0 for each window overlapping a region of the BED at ``path``, else 0.0."""
    regions = read_bed(path, what="positive regions")
    if regions.empty:
        raise InputError(f"{path}: the positive regions BED holds no regions")
    out = np.zeros(len(windows), dtype=np.float64)
    for contig, group in regions.groupby("chrom", sort=False):
        rows = np.flatnonzero(windows.chrom == contig)
        if not rows.size:
            continue
        order = np.argsort(group["start"].to_numpy())
        starts = group["start"].to_numpy()[order]
        reach = np.maximum.accumulate(group["end"].to_numpy()[order])
        # the regions starting before a window's end; the furthest reaching one decides
        before = np.searchsorted(starts, windows.end[rows], side="left")
        hit = before > 0
        hit[hit] = reach[before[hit] - 1] > windows.start[rows][hit]
        out[rows[hit]] = 1.0
    return out


def rows_file(matrix: Path) -> Path:
    """Where the row names of ``X.npy`` are: ``X.rows.txt``."""
    return matrix.with_name(matrix.stem + ".rows.txt")


def read_matrix(path: Path, *, labels_order: list[str] | None) -> pd.DataFrame:
    """A precomputed ``(rows, features)`` matrix as a frame indexed by row id.

    Parameters
    ----------
    path
        The ``.npy`` file; row names are read from :func:`rows_file` when it exists.
    labels_order
        Ids of the labels in file order, naming the rows when there is no row-name file.

    Raises
    ------
    InputError
        If the file is unreadable or not 2-D real numbers, the row names repeat, or the row
        count differs from the row names or (without them) from the labels.
    """
    try:
        matrix = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise InputError(f"{path}: not a readable .npy matrix ({error})") from None
    if matrix.ndim != 2 or not np.issubdtype(matrix.dtype, np.number):
        raise InputError(f"{path}: expected a 2-D numeric matrix, got shape {matrix.shape} "
                         f"of {matrix.dtype}")
    names_path = rows_file(path)
    if names_path.is_file():
        names = [line for line in names_path.read_text(encoding="utf-8").splitlines() if line]
        source = str(names_path)
    elif labels_order is not None:
        names, source = list(labels_order), "the labels"
    else:
        raise InputError(f"{path}: no row names ({names_path}) and no labels file to take "
                         "the row order from")
    if len(names) != matrix.shape[0]:
        raise InputError(f"{path} has {matrix.shape[0]} rows but {source} name {len(names)}")
    index = pd.Index(names, dtype=object)
    if index.has_duplicates:
        raise InputError(f"{source}: row name {index[index.duplicated()][0]!r} repeats")
    columns = [f"{path.stem}.{j}" for j in range(matrix.shape[1])]
    return pd.DataFrame(matrix.astype(np.float32), index=index, columns=columns)
