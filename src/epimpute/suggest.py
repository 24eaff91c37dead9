"""Which unmeasured track to measure next.

Every (biosample, assay) pair of a model that the store lacks is a candidate. Two criteria
rank them, both over a sample of the genome (windows spread evenly over the concatenated
contigs, as many as make ``sample_bins`` bins, :data:`SAMPLE_BINS` by default; the whole
genome when it is smaller):

``simulated`` (the default)
    The expected drop of the MSE of the *other* unmeasured tracks of the candidate's cell
    type if the candidate were measured, estimated by held-out simulation. A donor cell type
    that measures the candidate's assay and some of the cell type's other missing assays is
    made to look like the cell type: its tracks of assays the cell type lacks are hidden
    from the model, which then imputes the donor's tracks of those missing assays twice,
    without and with the donor's track of the candidate assay as input. The drop of their
    MSE against the donor's measured tracks, averaged over up to ``donors`` donors (those
    sharing the most measured assays with the cell type) and summed over the missing
    assays, is the score. A candidate that is the only missing track of its cell type scores
    0; one no donor can stand in for scores NaN (ranked last). The effect of a measurement on
    the same assay in other cell types is not simulated. Needs a model that imputes from the
    observed signal and was trained to do so from any subset of it (eDICE).
``retrained``
    The same drop, but each donor's simulated measurement retrains a model from scratch
    (same kind, configuration, seed) without and with the donor's track of the candidate
    assay, as the user would after measuring it: the estimate includes what retraining with
    one more track of a cell type teaches the model about it, which the trained model
    alone cannot show (:mod:`epimpute.suggest_retraining`). It costs up to ``1 + m``
    trainings per donor of a cell type with ``m`` candidates (2 donors by default).
``spread``
    The candidate's mean predicted sd (models with ``uncertainty``): the expected size of
    its own imputation's error, i.e. where the model is least sure, which is not the same as
    what a measurement would teach it about the other tracks.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from epimpute.errors import InputError
from epimpute.imputation import Window, WindowImputer, resolve_targets, window_bins
from epimpute.io.atomic import atomic_file
from epimpute.io.trackkey import TrackKey
from epimpute.models.base import Imputer
from epimpute.store import Store

if TYPE_CHECKING:
    from epimpute.suggest_retraining import Retraining

__all__ = ["COLUMNS", "CRITERIA", "DONORS", "SAMPLE_BINS", "SAMPLE_WINDOW",
           "SIMULATION_COLUMNS", "donor_plan", "is_suggestion_table", "rank_unmeasured",
           "sample_windows", "simulate_measurements", "simulated_scores", "write_suggestions"]

log = logging.getLogger(__name__)

COLUMNS = ["rank", "cell_type", "assay", "score"]
SAMPLE_WINDOW = 10_000
"""Bins per sampled window."""
CRITERIA = ("simulated", "retrained", "spread")
DONORS = {"simulated": 4, "retrained": 2}
"""Default donor cell types a simulated measurement is averaged over, at most."""
SAMPLE_BINS = {"simulated": 50_000, "retrained": 50_000, "spread": 200_000}
"""Default bins per criterion: a simulation runs several imputations per donor."""
SIMULATION_COLUMNS = ["cell_type", "measured", "donor", "assay", "mse_without", "mse_with"]


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


def donor_plan(tracks: Sequence[tuple[int, int]], available: np.ndarray,
               candidates: Sequence[tuple[int, int]], *, donors: int = DONORS["simulated"]
               ) -> dict[int, list[int]]:
    """The donor biosamples of every biosample with two or more candidates.

    Parameters
    ----------
    tracks
        ``(biosample, assay)`` of every model input (:attr:`Layout.tracks`).
    available
        Whether the store holds each input.
    candidates
        The unmeasured ``(biosample, assay)`` pairs.
    donors
        Donors per biosample, at most.

    Returns
    -------
    dict
        Biosample -> donors: biosamples that measure at least two of its candidate assays,
        most measured assays shared with it first, then most candidate assays, then index.
    """
    observed: dict[int, set[int]] = {}
    for (biosample, assay), present in zip(tracks, available):
        if present:
            observed.setdefault(biosample, set()).add(assay)
    wanted: dict[int, set[int]] = {}
    for biosample, assay in candidates:
        wanted.setdefault(biosample, set()).add(assay)
    plan = {}
    for cell, missing in wanted.items():
        if len(missing) < 2:
            continue
        mine = observed.get(cell, set())
        options = sorted((-len(mine & theirs), -len(missing & theirs), donor)
                         for donor, theirs in observed.items()
                         if donor != cell and len(missing & theirs) >= 2)
        plan[cell] = [donor for *_, donor in options[:donors]]
    return plan


def simulate_measurements(work: WindowImputer, candidates: Sequence[tuple[int, int]],
                          windows: Sequence[Window], *, donors: int = DONORS["simulated"],
                          progress: bool = False) -> pd.DataFrame:
    """The held-out simulation behind the ``simulated`` criterion (see the module).

    Parameters
    ----------
    work
        The model and store (its targets are not used).
    candidates
        The unmeasured ``(biosample, assay)`` pairs.
    windows
        Where the MSEs are taken.
    donors
        Donors per biosample, at most (see :func:`donor_plan`).
    progress
        Show a progress bar.

    Returns
    -------
    pandas.DataFrame
        :data:`SIMULATION_COLUMNS`, one row per candidate biosample, measured assay, donor
        and other candidate assay the donor measures: the donor's MSE of that assay (arcsinh
        scale) imputed from the tracks the biosample has, without and with the donor's track
        of the measured assay.
    """
    layout = work.imputer.layout
    plan = donor_plan(layout.tracks, work.available, candidates, donors=donors)
    input_of = {pair: i for i, pair in enumerate(layout.tracks) if work.available[i]}
    mine = {cell: {a for (b, a) in input_of if b == cell} for cell in plan}
    missing = {cell: sorted(a for b, a in candidates if b == cell) for cell in plan}
    jobs = []  # (cell, donor, inputs without, assays imputed, their input rows)
    for cell, chosen in plan.items():
        for donor in chosen:
            without = work.available.copy()
            for (b, a), i in input_of.items():
                if b == donor and a not in mine[cell]:
                    without[i] = False
            assays = [a for a in missing[cell] if (donor, a) in input_of]
            jobs.append((cell, donor, without, assays, [input_of[(donor, a)] for a in assays]))
    margin = work.imputer.context_bins
    errors = [np.zeros((1 + len(job[3]), len(job[3])), dtype=np.float64) for job in jobs]
    bins = 0
    for window in tqdm(windows, desc="simulating", unit="window", disable=not progress):
        signal = work.read_inputs(window)
        length = window.hi - window.lo
        for (_, donor, without, assays, rows), total in zip(jobs, errors):
            truth = signal[rows, margin:margin + length]
            pairs = [(donor, a) for a in assays]
            predicted = work.predict(signal, without, pairs, window)
            total[0] += ((predicted - truth) ** 2).sum(axis=1, dtype=np.float64)
            for k, row in enumerate(rows, start=1):  # the measured assay itself is not scored
                mask, others = without.copy(), [j for j in range(len(rows)) if j != k - 1]
                mask[row] = True
                predicted = work.predict(signal, mask, [pairs[j] for j in others], window)
                total[k, others] += ((predicted - truth[others]) ** 2).sum(
                    axis=1, dtype=np.float64)
        bins += length
    records = []
    for (cell, donor, _, assays, _), total in zip(jobs, errors):
        mse = total / max(bins, 1)
        for k, measured in enumerate(assays, start=1):
            for j, assay in enumerate(assays):
                if assay != measured:
                    records.append((layout.biosamples[cell], layout.assays[measured],
                                    layout.biosamples[donor], layout.assays[assay],
                                    mse[0, j], mse[k, j]))
    log.info("simulated %d measurements with %d donors over %d bins", len(candidates),
             len(jobs), bins)
    return pd.DataFrame.from_records(records, columns=SIMULATION_COLUMNS)


def simulated_scores(simulation: pd.DataFrame, candidates: Sequence[tuple[str, str]]
                     ) -> np.ndarray:
    """Each candidate's score from :func:`simulate_measurements`: the MSE drop of every
    other candidate assay of its cell type, averaged over donors, summed over the assays;
    0 for the only candidate of its cell type, NaN when no donor could stand in."""
    drop = simulation.assign(drop=simulation["mse_without"] - simulation["mse_with"])
    per_assay = drop.groupby(["cell_type", "measured", "assay"])["drop"].mean()
    totals = per_assay.groupby(level=["cell_type", "measured"]).sum()
    per_cell = pd.Series([c for c, _ in candidates]).value_counts()
    return np.array([totals.get((c, a), 0.0 if per_cell[c] == 1 else np.nan)
                     for c, a in candidates], dtype=np.float64)


def rank_unmeasured(imputer: Imputer, store: Store, *, criterion: str = "simulated",
                    sample_bins: int | None = None, donors: int | None = None,
                    retraining: Retraining | None = None, device: str = "cpu",
                    precision: str = "fp32", progress: bool = False) -> pd.DataFrame:
    """Rank the pairs of ``imputer`` that ``store`` lacks (see the module for the criteria).

    Parameters
    ----------
    imputer
        The trained model (with ``spread``: one that predicts uncertainty).
    store
        The measured tracks (the model's inputs).
    criterion
        One of :data:`CRITERIA`.
    sample_bins
        Bins the scores are taken over (see :func:`sample_windows`; None:
        :data:`SAMPLE_BINS` of the criterion).
    donors
        ``simulated`` and ``retrained``: donor cell types per cell type, at most (None:
        :data:`DONORS` of the criterion).
    retraining
        ``retrained``: how the models are retrained (required there).
    device, precision
        Where and how the model runs (as for imputation).
    progress
        Show a progress bar.

    Returns
    -------
    pandas.DataFrame
        :data:`COLUMNS`, highest score first (ties in the model's pair order, NaN last);
        ``cell_type`` holds the biosample.

    Raises
    ------
    InputError
        On an unknown criterion, a model that cannot be ranked by it, or a store that
        measures every pair the model can impute.
    """
    if criterion not in CRITERIA:
        raise InputError(f"--criterion must be one of {', '.join(CRITERIA)}, got {criterion!r}")
    donors = DONORS.get(criterion, 1) if donors is None else donors
    if donors < 1:
        raise InputError(f"--donors must be positive, got {donors}")
    if criterion == "spread":
        imputer.require_uncertainty()
    elif not imputer.reads_signal:
        raise InputError(f"a {imputer.name} model imputes without reading the observed "
                         "signal, so measuring a track changes none of its imputations; "
                         "rank with --criterion spread or use an eDICE model")
    if criterion == "retrained" and retraining is None:
        raise ValueError("the retrained criterion needs its Retraining settings")
    learnt = {a for _, a in imputer.layout.tracks}
    try:
        targets = [t for t in resolve_targets(imputer, store, missing=True)
                   if t.pair[1] in learnt]
    except InputError:
        targets = []
    if not targets:
        raise InputError(f"{store.path} measures every cell type x assay the model can impute; "
                         "nothing to rank")
    spread = criterion == "spread"
    sample_bins = SAMPLE_BINS[criterion] if sample_bins is None else sample_bins
    work = WindowImputer(imputer, store, targets if spread else [], device=device,
                         precision=precision, spread=spread)
    keys = [TrackKey.parse(t.key) for t in targets]
    outputs = 2 * (len(targets) if spread else len(imputer.layout.assays))  # per window pass
    windows = sample_windows(store, sample_bins,
                             window=window_bins(SAMPLE_WINDOW, outputs, len(work.rows)))
    if spread:
        totals = np.zeros(len(targets), dtype=np.float64)
        bins = 0
        for window in tqdm(windows, desc="ranking", unit="window", disable=not progress):
            totals += work(window)[len(targets):].sum(axis=1, dtype=np.float64)
            bins += window.hi - window.lo
        scores = totals / max(bins, 1)
    else:
        pairs = [t.pair for t in targets]
        if criterion == "simulated":
            simulation = simulate_measurements(work, pairs, windows, donors=donors,
                                               progress=progress)
        else:
            from epimpute.suggest_retraining import simulate_retraining

            simulation = simulate_retraining(imputer, store, pairs, windows, retraining,
                                             donors=donors, progress=progress)
        scores = simulated_scores(simulation, [(k.biosample, k.assay) for k in keys])
        if np.isnan(scores).any():
            log.warning("no donor cell type measures the assays of %d candidates; they are "
                        "ranked last", int(np.isnan(scores).sum()))
    order = np.argsort(np.where(np.isnan(scores), np.inf, -scores), kind="stable")
    log.info("ranked %d unmeasured tracks (%s)", len(targets), criterion)
    return pd.DataFrame({"rank": np.arange(1, len(order) + 1),
                         "cell_type": [keys[i].biosample for i in order],
                         "assay": [keys[i].assay for i in order], "score": scores[order]})


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
