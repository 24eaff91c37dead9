"""Reading BED files (plain or gzipped): the one parser of regions in epimpute."""

from __future__ import annotations

import gzip
import os

import numpy as np
import pandas as pd

from epimpute.errors import InputError

__all__ = ["read_bed"]


def read_bed(path: str | os.PathLike[str], *, min_columns: int = 3,
             what: str = "BED", names: bool = False) -> pd.DataFrame:
    """Read the regions of a tab-separated BED file, plain or gzipped.

    Blank lines and ``#`` / ``track`` / ``browser`` lines are skipped.

    Parameters
    ----------
    path
        The file.
    min_columns
        Columns every data line must have (3, or 6 to read the strand).
    what
        What the file holds, for messages (``"genes"``, ``"stage-1 regions"``).
    names
        Also return the fourth column as str ``name`` (needs ``min_columns`` of 4 or more).

    Returns
    -------
    pandas.DataFrame
        One row per region, in file order: str ``chrom``, int64 ``start`` and ``end``
        (0-based, end exclusive), str ``strand`` (``"."`` with fewer than 6 columns) and
        int64 ``line``, the region's line number in the file; with ``names``, str ``name``.

    Raises
    ------
    InputError
        If the file is missing or unreadable, or a line has too few columns, a start or
        end that is not an integer, a negative start or an end before its start; the
        message names the file and the line.
    """
    try:
        with open(path, "rb") as probe:
            gzipped = probe.read(2) == b"\x1f\x8b"
        opener = gzip.open if gzipped else open
        with opener(path, "rt", encoding="utf-8") as handle:  # type: ignore[operator]
            numbered = [
                (number, line.rstrip("\n").split("\t"))
                for number, line in enumerate(handle, start=1)
                if line.strip() and not line.startswith(("#", "track", "browser"))
            ]
    except FileNotFoundError:
        raise InputError(f"{path}: {what} file not found") from None
    except (OSError, UnicodeDecodeError, EOFError) as error:
        raise InputError(f"{path}: cannot read the {what} file ({error})") from None
    lines = np.array([number for number, _ in numbered], dtype=np.int64)
    for number, row in numbered:
        if len(row) < min_columns:
            raise InputError(f"{path}: line {number} has {len(row)} tab-separated columns, "
                             f"a {what} BED needs at least {min_columns}")
    frame = pd.DataFrame([row[:min_columns] for _, row in numbered],
                         columns=range(min_columns))
    if frame.empty:
        frame = pd.DataFrame({k: pd.Series(dtype=object) for k in range(min_columns)})
    start = pd.to_numeric(frame[1], errors="coerce", downcast=None)
    end = pd.to_numeric(frame[2], errors="coerce", downcast=None)
    integral = start.notna() & end.notna() & (start % 1 == 0) & (end % 1 == 0)
    if not bool(integral.all()):
        first = int(np.flatnonzero(~integral.to_numpy())[0])
        raise InputError(f"{path}: line {lines[first]}: start and end (columns 2 and 3) must "
                         f"be integers, not {frame[1].iloc[first]!r}, {frame[2].iloc[first]!r}")
    start, end = start.to_numpy(np.int64), end.to_numpy(np.int64)
    bad = np.flatnonzero((start < 0) | (end < start))
    if bad.size:
        raise InputError(f"{path}: line {lines[bad[0]]} has a negative start or end before "
                         f"start")
    strand = frame[5] if min_columns >= 6 else pd.Series(["."] * len(frame), dtype=object)
    regions = pd.DataFrame({"chrom": frame[0].astype(str), "start": start, "end": end,
                            "strand": strand.to_numpy(), "line": lines})
    if names:
        if min_columns < 4:
            raise ValueError("names=True needs min_columns >= 4")
        regions["name"] = frame[3].astype(str).to_numpy()
    return regions
