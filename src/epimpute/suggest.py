"""Which unmeasured track to measure next: the one the model is least sure of.

Every (biosample, assay) pair of a model that the store lacks is imputed with its
predicted sd (models with ``uncertainty``) over a sample of the genome: windows of
:data:`SAMPLE_WINDOW` bins spread evenly over the concatenated contigs, as many as make
``sample_bins`` bins (the whole genome when it is smaller). A pair's score is its mean
predicted sd over those bins (arcsinh scale): the expected size of the imputation's error,
so measuring the top-ranked pair replaces the least certain imputation.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from epimpute.errors import InputError
from epimpute.imputation import Window, WindowImputer, resolve_targets, window_bins
from epimpute.io.atomic import atomic_file
from epimpute.io.trackkey import TrackKey
from epimpute.models.base import Imputer
from epimpute.store import Store

__all__ = ["COLUMNS", "SAMPLE_WINDOW", "is_suggestion_table", "rank_unmeasured",
           "sample_windows", "write_suggestions"]

log = logging.getLogger(__name__)

COLUMNS = ["rank", "cell_type", "assay", "score"]
SAMPLE_WINDOW = 10_000
"""Bins per sampled window."""


def sample_windows(store: Store, sample_bins: int, *, window: int = SAMPLE_WINDOW
                   ) -> list[Window]:
    """Windows of ``window`` bins evenly spread over the store's contigs, ``sample_bins``
    bins in all (every bin when the genome is not larger); windows never cross contigs."""
    if sample_bins < 1:
        raise InputError(f"--sample-bins must be positive, got {sample_bins}")
    lengths = {c: store.n_bins(c) for c in store.contigs if store.n_bins(c) > 0}
    total = sum(lengths.values())
    if total <= sample_bins:
        starts = [(c, lo) for c, n in lengths.items() for lo in range(0, n, window)]
    else:
        count = -(-sample_bins // window)
        offsets = np.linspace(0, total, count, endpoint=False).astype(np.int64)
        edges = np.cumsum([0, *lengths.values()])
        starts = []
        for offset in offsets:
            i = int(np.searchsorted(edges, offset, side="right") - 1)
            contig = list(lengths)[i]
            starts.append((contig, int(offset - edges[i])))
    windows = []
    for index, (contig, lo) in enumerate(starts):
        hi = min(lo + window, lengths[contig])
        windows.append(Window(contig, index, lo, hi))
    return windows


def rank_unmeasured(imputer: Imputer, store: Store, *, sample_bins: int = 200_000,
                    device: str = "cpu", precision: str = "fp32",
                    progress: bool = False) -> pd.DataFrame:
    """Rank the pairs of ``imputer`` that ``store`` lacks by mean predicted sd.

    Parameters
    ----------
    imputer
        A model that predicts uncertainty.
    store
        The measured tracks (the model's inputs).
    sample_bins
        Bins the mean is taken over (see :func:`sample_windows`).
    device, precision
        Where and how the model runs (as for imputation).
    progress
        Show a progress bar.

    Returns
    -------
    pandas.DataFrame
        :data:`COLUMNS`, highest score first (ties in the model's pair order); ``cell_type``
        holds the biosample.

    Raises
    ------
    InputError
        If the model predicts no uncertainty or the store measures every pair it can impute.
    """
    imputer.require_uncertainty()
    learnt = {a for _, a in imputer.layout.tracks}
    try:
        targets = [t for t in resolve_targets(imputer, store, missing=True)
                   if t.pair[1] in learnt]
    except InputError:
        targets = []
    if not targets:
        raise InputError(f"{store.path} measures every cell type x assay the model can impute; "
                         "nothing to rank")
    work = WindowImputer(imputer, store, targets, device=device, precision=precision,
                         spread=True)
    step = window_bins(SAMPLE_WINDOW, 2 * len(targets), len(work.rows))
    windows = sample_windows(store, sample_bins, window=step)
    totals = np.zeros(len(targets), dtype=np.float64)
    bins = 0
    for window in tqdm(windows, desc="ranking", unit="window", disable=not progress):
        block = work(window)
        totals += block[len(targets):].sum(axis=1, dtype=np.float64)
        bins += window.hi - window.lo
    scores = totals / max(bins, 1)
    order = np.argsort(-scores, kind="stable")
    keys = [TrackKey.parse(targets[i].key) for i in order]
    log.info("ranked %d unmeasured tracks over %d bins", len(targets), bins)
    return pd.DataFrame({"rank": np.arange(1, len(order) + 1),
                         "cell_type": [k.biosample for k in keys],
                         "assay": [k.assay for k in keys], "score": scores[order]})


def is_suggestion_table(path: Path) -> bool:
    """Whether ``path`` is a table written by :func:`write_suggestions` (its header)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.readline().rstrip("\n").split("\t") == COLUMNS
    except (OSError, UnicodeDecodeError):
        return False


def write_suggestions(table: pd.DataFrame, out: Path) -> Path:
    """Write the ranking as a tab-separated file, atomically; returns ``out``."""
    with atomic_file(Path(out)) as tmp:
        table[COLUMNS].to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    return Path(out)
