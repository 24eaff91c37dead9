"""Peak shapes: how differently two cell types' signal is spread over each peak.

Over a peak the signal (``-log10 p``, negatives taken as 0) of a cell type is a
distribution over bin positions (bin centres, weights the bin values). The 1-Wasserstein
distance between the two cell types' distributions (:func:`scipy.stats.wasserstein_distance`,
in bp) is 0 for the same shape whatever the heights, and grows as the signal moves within
the peak. Computed on observed and on imputed tracks over the same peaks, the Spearman
correlation of the two says whether imputations keep the cell-type-specific shapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.stats import spearmanr, wasserstein_distance
from tqdm.auto import tqdm

from epimpute.differential.calls import PeakTable, consensus_peaks
from epimpute.errors import InputError
from epimpute.evaluation.sources import PredictionDir
from epimpute.io.atomic import atomic_file, check_destination
from epimpute.store import Store

__all__ = ["SHAPE_COLUMNS", "ShapeComparison", "compare", "peak_wasserstein"]

SHAPE_COLUMNS = ("chrom", "start", "end", "ws_observed", "ws_imputed")


def peak_wasserstein(first: NDArray[np.floating], second: NDArray[np.floating],
                     peaks: PeakTable, *, bin_size: int) -> NDArray[np.float64]:
    """Wasserstein distance (bp) between two binned signals over each peak.

    Parameters
    ----------
    first, second
        Arrays of shape ``(n_bins,)`` on the ``-log10 p`` scale.
    peaks
        The peaks.
    bin_size
        Bin width in bp.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(n_peaks,)``; NaN where a signal is 0 over the whole peak.
    """
    a = np.maximum(np.asarray(first, dtype=np.float64), 0.0)
    b = np.maximum(np.asarray(second, dtype=np.float64), 0.0)
    out = np.full(len(peaks), np.nan)
    for j, (start, end) in enumerate(zip(peaks.start.tolist(), peaks.end.tolist())):
        lo, hi = start // bin_size, min(-(-end // bin_size), a.size)
        wa, wb = a[lo:hi], b[lo:hi]
        if wa.sum() > 0 and wb.sum() > 0:
            centres = (np.arange(lo, hi) + 0.5) * bin_size
            out[j] = wasserstein_distance(centres, centres, wa, wb)
    return out


@dataclass(frozen=True)
class ShapeComparison:
    """What :func:`compare` found.

    Attributes
    ----------
    tsv
        Per-peak table: chrom, start, end, ws_observed, ws_imputed.
    n_peaks
        Peaks with both distances defined.
    spearman
        Spearman correlation of the observed and imputed distances across those peaks.
    """

    tsv: Path
    n_peaks: int
    spearman: float


def compare(
    truth: Path | Store,
    imputed: Path,
    out: Path,
    *,
    cell_types: Sequence[str],
    assay: str,
    overwrite: bool = False,
    progress: bool = False,
) -> ShapeComparison:
    """Peak-shape distances of two cell types, observed vs imputed, over the observed peaks.

    The peaks are the consensus of both cell types' observed tracks
    (:func:`epimpute.differential.calls.consensus_peaks`).

    Parameters
    ----------
    truth
        Store with the observed tracks of both cell types.
    imputed
        Folder written by ``epimpute impute`` holding both cell types' imputed tracks.
    out
        TSV file to write.
    cell_types
        The two cell types.
    assay
        The assay compared.
    overwrite
        Replace an earlier table at ``out``.
    progress
        Show a progress bar.

    Returns
    -------
    ShapeComparison
    """
    store = truth if isinstance(truth, Store) else Store.open(truth)
    if len(cell_types) != 2 or cell_types[0] == cell_types[1]:
        raise InputError(f"give two different cell types, got {list(cell_types)}")
    keys = [f"{c}:{assay}" for c in cell_types]
    rows = [store.track_index(k) for k in keys]
    for key, row in zip(keys, rows):
        if row is None:
            raise InputError(f"{store.path}: no observed track {key!r}")
    predictions = PredictionDir(imputed, name="imputed")
    for key in keys:
        if predictions.file_for(key) is None:
            raise InputError(f"{imputed}: no imputed track {key!r}")
        missing = set(store.contigs) - predictions.contigs(key)
        if missing:
            raise InputError(f"{predictions.file_for(key)}: no contig(s) {', '.join(sorted(missing))}"
                             f" of {store.path}")
    out = Path(out)
    check_destination(out, kind="shape table", is_own=_is_own, overwrite=overwrite,
                      inputs=[store.path, Path(imputed)])
    tables = []
    for contig, length in tqdm(list(store.contigs.items()), desc="peak shapes", unit="contig",
                               disable=not progress):
        observed = np.sinh(store.read(contig, tracks=rows).astype(np.float64))
        guessed = [np.sinh(predictions.read(k, contig, length=length, bin_size=store.bin_size)
                           .astype(np.float64)) for k in keys]
        peaks = consensus_peaks(list(observed), bin_size=store.bin_size, length=length,
                                contig=contig)
        tables.append(pd.DataFrame({
            "chrom": contig, "start": peaks.start, "end": peaks.end,
            "ws_observed": peak_wasserstein(observed[0], observed[1], peaks,
                                            bin_size=store.bin_size),
            "ws_imputed": peak_wasserstein(guessed[0], guessed[1], peaks,
                                           bin_size=store.bin_size)}))
    table = pd.concat(tables, ignore_index=True)[list(SHAPE_COLUMNS)]
    both = table.dropna()
    rho = float(spearmanr(both["ws_observed"], both["ws_imputed"]).statistic) if len(both) > 2 \
        else float("nan")
    with atomic_file(out) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.6g", na_rep="NA")
    return ShapeComparison(out, len(both), rho)


def _is_own(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.readline().rstrip("\n").split("\t") == list(SHAPE_COLUMNS)
    except OSError:
        return False
