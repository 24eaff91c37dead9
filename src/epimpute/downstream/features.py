"""Feature matrices of windows: the mean of every column of a source over each window, and
optionally over its flanks, computed contig by contig.

Columns are named ``VIEW.COLUMN`` (``promoter.cell1:H3K4me3``) and, for flanks,
``VIEW.COLUMN@-K`` / ``@+K`` (K widths upstream / downstream in the gene's direction).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from epimpute.downstream.sources import FeatureSource
from epimpute.downstream.windows import Windows
from epimpute.errors import InputError

__all__ = ["build_features", "check_within"]


def _shifts(flank: int) -> list[int]:
    return [0] + [s for k in range(1, flank + 1) for s in (-k, k)]


def build_features(source: FeatureSource, views: Mapping[str, Windows], *, flank: int = 0,
                   progress: bool = False) -> pd.DataFrame:
    """Mean signal of each of ``source``'s columns per window of each view (and flank).

    Parameters
    ----------
    source
        Where the values come from.
    views
        Windows of the same rows (e.g. ``{"promoter": ..., "body": ...}``), ids equal.
    flank
        Flanking windows on each side (0: none).
    progress
        Show a progress bar over contigs.

    Returns
    -------
    pandas.DataFrame
        float32, indexed by row id, in the rows' order.
    """
    if isinstance(flank, bool) or not isinstance(flank, int) or flank < 0:
        raise InputError(f"--flank must be a non-negative integer, got {flank!r}")
    first = next(iter(views.values()))
    shifts = _shifts(flank)
    names = [f"{view}.{column}" + (f"@{shift:+d}" if shift else "")
             for view in views for shift in shifts for column in source.columns]
    values = np.full((len(first), len(names)), np.nan, dtype=np.float32)
    contigs = list(dict.fromkeys(first.chrom.tolist()))
    for contig in tqdm(contigs, desc=f"features {source.name}", unit="contig",
                       disable=not progress):
        rows = np.flatnonzero(first.chrom == contig)
        blocks = [source.means(contig, w.start[rows], w.end[rows])
                  for view in views.values() for w in (view.shifted(s) for s in shifts)]
        values[rows] = np.concatenate(blocks, axis=1)
    return pd.DataFrame(values, index=pd.Index(first.ids, dtype=object), columns=names)


def check_within(windows: Windows, sources: list[FeatureSource], *, what: str) -> np.ndarray:
    """Rows on contigs that every source has (bool mask).

    Raises
    ------
    InputError
        If no row is on such a contig (naming the windows' and the sources' contigs, as for
        a BED of another assembly) or a row starts past its contig's end in a source.
    """
    keep = np.ones(len(windows), dtype=bool)
    for source in sources:
        keep &= np.isin(windows.chrom.astype(str), list(source.contigs))
    if not keep.any():
        ours = sorted(set(windows.chrom.tolist()))
        raise InputError(
            f"{what}: none of its contigs ({_few(ours)}) is in every feature source ("
            + "; ".join(f"{s.name}: {_few(list(s.contigs))}" for s in sources)
            + "); is it on another assembly?")
    for source in sources:
        length = np.array([source.contigs.get(c, 0) for c in windows.chrom.tolist()])
        past = np.flatnonzero(keep & (windows.start >= length))
        if past.size:
            i = past[0]
            raise InputError(f"{what}: {windows.ids[i]} at {windows.chrom[i]}:{windows.start[i]}"
                             f" starts past the end of {windows.chrom[i]} ({length[i]} bp in "
                             f"{source.name}); is it on another assembly?")
    return keep


def _few(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
