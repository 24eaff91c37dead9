"""The ``retrained`` criterion of :mod:`epimpute.suggest`: held-out simulation by retraining.

Measuring a track does two things to an imputation model: the track becomes an input at
imputation time, and the model is retrained with it, so it learns its cell type from one
more track. The ``simulated`` criterion estimates the first effect with the trained model;
this one estimates both by doing what the user would do, on donor cell types whose tracks
are known.

For a cell type C that lacks several assays and a donor D (:func:`~epimpute.suggest.donor_plan`),
D is made to look like C: its tracks of the assays C lacks are hidden from training and from
the model's inputs, and a model of the same kind, configuration, training settings and seed
is trained from scratch for ``epochs`` epochs. Then, for each of C's missing assays ``a``
that D measures, a model is trained the same way with D's track of ``a`` given back. The
drop of the MSE of D's other hidden tracks of C's missing assays (imputed over the sampled
windows, against D's measured tracks) from the first model to the second is what measuring
C's ``a`` and retraining would do to C's other missing tracks. A cell type with ``m``
candidate assays costs, per donor, ``1 + m`` trainings (at most).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from epimpute.imputation import Window, WindowImputer, input_availability, resolve_targets
from epimpute.models.base import Imputer
from epimpute.store import Store
from epimpute.suggest import DONORS, SIMULATION_COLUMNS, donor_plan
from epimpute.training.loop import RunSettings

__all__ = ["DonorJob", "Retraining", "retraining_jobs", "simulate_retraining"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Retraining:
    """How each simulated retraining is run.

    Attributes
    ----------
    model
        The model kind (a name of :mod:`epimpute.registry`).
    config, training
        Its model and training configurations (dataclasses); ``training.max_epochs`` is
        replaced by ``epochs``.
    epochs
        Epochs per retraining.
    seed
        Seed of every retraining (the same for all, so that they differ by their tracks).
    device, precision
        Where and how the retrainings and their imputations run.
    """

    model: str
    config: Any
    training: Any
    epochs: int
    seed: int = 0
    device: str = "cpu"
    precision: str = "fp32"


@dataclass(frozen=True)
class DonorJob:
    """The retrainings of one (cell type, donor) pair.

    Attributes
    ----------
    cell, donor
        Biosample indices of the model's layout.
    hidden
        Keys of the donor's tracks hidden to make it look like the cell type.
    assays
        The cell type's missing assays the donor measures (the candidates simulated, and
        the tracks scored), as assay indices, with their keys in ``keys``.
    """

    cell: int
    donor: int
    hidden: tuple[str, ...]
    assays: tuple[int, ...]
    keys: tuple[str, ...]


def retraining_jobs(layout_tracks: Sequence[tuple[int, int]], keys: Sequence[str],
                    available: np.ndarray, candidates: Sequence[tuple[int, int]],
                    plan: dict[int, list[int]]) -> list[DonorJob]:
    """The :class:`DonorJob` of every cell type and donor of ``plan``
    (:func:`~epimpute.suggest.donor_plan`); ``keys`` name the model's input tracks."""
    input_key = {pair: key for pair, key, present in zip(layout_tracks, keys, available)
                 if present}
    jobs = []
    for cell, donors in plan.items():
        mine = {a for (b, a) in input_key if b == cell}
        missing = sorted(a for b, a in candidates if b == cell)
        for donor in donors:
            hidden = tuple(key for (b, a), key in input_key.items()
                           if b == donor and a not in mine)
            assays = tuple(a for a in missing if (donor, a) in input_key)
            jobs.append(DonorJob(cell, donor, hidden, assays,
                                 tuple(input_key[(donor, a)] for a in assays)))
    return jobs


def _retrain(store: Store, exclude: Sequence[str], retraining: Retraining) -> Imputer:
    from epimpute.registry import model_spec

    settings = RunSettings(seed=retraining.seed, device=retraining.device,
                           precision=retraining.precision)
    training = dataclasses.replace(retraining.training, max_epochs=retraining.epochs)
    imputer, _ = model_spec(retraining.model).train(
        store, config=retraining.config, training=training, settings=settings,
        exclude=sorted(exclude))
    return imputer


def _squared_errors(imputer: Imputer, store: Store, keys: Sequence[str],
                    windows: Sequence[Window], retraining: Retraining) -> np.ndarray:
    """Sum of squared errors of the imputed ``keys`` over ``windows`` against the store."""
    targets = resolve_targets(imputer, store, targets=list(keys))
    work = WindowImputer(imputer, store, targets, device=retraining.device,
                         precision=retraining.precision)
    rows = [store.track_index(key) for key in keys]
    totals = np.zeros(len(keys), dtype=np.float64)
    for window in windows:
        truth = store.read(window.contig, window.lo, window.hi, tracks=rows)
        totals += ((work(window) - truth) ** 2).sum(axis=1, dtype=np.float64)
    return totals


def simulate_retraining(imputer: Imputer, store: Store, candidates: Sequence[tuple[int, int]],
                        windows: Sequence[Window], retraining: Retraining, *,
                        donors: int = DONORS["retrained"], progress: bool = False
                        ) -> pd.DataFrame:
    """The held-out simulation behind the ``retrained`` criterion (see the module).

    Parameters
    ----------
    imputer
        The trained model: its input tracks are the retrainings' training tracks.
    store
        The measured tracks.
    candidates
        The unmeasured ``(biosample, assay)`` pairs.
    windows
        Where the MSEs are taken.
    retraining
        How the models are retrained.
    donors
        Donors per cell type, at most (see :func:`~epimpute.suggest.donor_plan`).
    progress
        Show a progress bar over the trainings.

    Returns
    -------
    pandas.DataFrame
        :data:`~epimpute.suggest.SIMULATION_COLUMNS`, one row per cell type, measured
        assay, donor and other scored assay: the donor's MSE of that assay imputed by the
        model retrained without and with the donor's track of the measured assay.
    """
    layout = imputer.layout
    _, available = input_availability(imputer, store)
    inputs = {key for key, present in zip(layout.keys, available) if present}
    unused = [t.key for t in store.tracks if t.key not in inputs]  # not the model's inputs
    plan = donor_plan(layout.tracks, available, candidates, donors=donors)
    jobs = retraining_jobs(layout.tracks, layout.keys, available, candidates, plan)
    trainings = sum(1 + len(job.assays) for job in jobs)
    bins = sum(w.hi - w.lo for w in windows)
    records = []
    with tqdm(total=trainings, desc="retraining", unit="model", disable=not progress) as bar:
        for job in jobs:
            base = _retrain(store, [*unused, *job.hidden], retraining)
            without = _squared_errors(base, store, job.keys, windows, retraining) / max(bins, 1)
            bar.update()
            for k, (measured, key) in enumerate(zip(job.assays, job.keys)):
                others = [j for j in range(len(job.keys)) if j != k]
                model = _retrain(store, [*unused, *(h for h in job.hidden if h != key)],
                                 retraining)
                scored = [job.keys[j] for j in others]
                with_it = _squared_errors(model, store, scored, windows, retraining) / max(bins, 1)
                records += [(layout.biosamples[job.cell], layout.assays[measured],
                             layout.biosamples[job.donor], layout.assays[job.assays[j]],
                             without[j], error) for j, error in zip(others, with_it)]
                bar.update()
    log.info("retrained %d models for %d donors over %d bins", trainings, len(jobs), bins)
    return pd.DataFrame.from_records(records, columns=SIMULATION_COLUMNS)
