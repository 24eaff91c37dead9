"""Extending a trained model with the biosamples, assays and tracks of a store it lacks.

Two modes:

- ``freeze``: only the parameters of the new items are trained: their identity embeddings
  (eDICE: the rows of new biosamples / assays, or of new tissues / individuals with
  ``shared_tissue_embedding``; Avocado: the new cell-type and assay factors) and, for
  eDICE, the encoder input columns that read the new items' signal. Everything else keeps
  its exact values, so existing tracks imputed from the same inputs are bit-identical
  (eDICE computes only the biosamples and assays that have inputs or are asked for; new
  items without inputs take no part).
- ``finetune``: first as ``freeze`` (the new items' parameters alone, at the configured
  learning rate) for a share of the budget (``probe_share``, half by default), then every
  parameter, on old and new tracks together, at a tenth of the learning rate. Training
  the shared parameters while the new items' parameters are still at their starting
  values would bend them to make up for those (fine-tuning after a first "probe" phase,
  as in Kumar et al., ICLR 2022). Where the new item differs from the known ones in ways
  only the shared parameters can express (a new individual's own peaks), a probe share
  of 0 trains everything from the start.

A biosample or assay counts as *new* when the model has no input track of it: one absent
from the model, or one it knew by name only (its tracks were excluded), whose parameters
were never trained. New items are appended after the model's own (never re-sorted), and new
parameters start from the mean of the trained ones, so an extended model starts close to
what it would do for an average biosample or assay (a new individual, with
``shared_tissue_embedding``, starts as a fresh random identity instead; see
:func:`grow_edice`).

The store must hold every input track of the model that should stay an input; tracks the
base model excluded are inputs again unless excluded anew.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

import numpy as np
import torch

from epimpute.errors import InputError
from epimpute.models.average import AverageImputer
from epimpute.models.avocado import Avocado, AvocadoImputer, GenomeFactors
from epimpute.models.edice import Edice, biosample_groups
from epimpute.models.edice_imputer import EdiceImputer
from epimpute.models.growth import grow_rows as _grow_rows
from epimpute.models.layout import Layout
from epimpute.models.spread import grow_spread_state
from epimpute.store import Store
from epimpute.training.average import AverageTrainingConfig
from epimpute.training.avocado import (
    AvocadoTrainingConfig,
    PositionData,
    compact_factors,
    stage1_blocks,
    train_stage1,
    whole_contig_factors,
)
from epimpute.training.data import check_exclude, check_learnable, layout_rows
from epimpute.training.edice import EdiceTrainingConfig, train_edice
from epimpute.training.loop import History, RunSettings

__all__ = ["ExtendMode", "Extension", "check_mode", "extend_average", "extend_avocado",
           "extend_edice", "grow_avocado", "grow_edice", "plan_extension"]

log = logging.getLogger(__name__)

TrainingConfig = TypeVar("TrainingConfig", EdiceTrainingConfig, AvocadoTrainingConfig)

ExtendMode = Literal["freeze", "finetune"]
MODES = ("freeze", "finetune")
FINETUNE_LEARNING_RATE_FACTOR = 0.1
"""``finetune`` trains every parameter at this fraction of the learning rate(s) of its
training configuration (the base model's unless a configuration file sets them)."""
FINETUNE_PROBE_SHARE = 0.5
"""By default ``finetune`` spends this share of its budget (minutes and epochs) training only
the new items' parameters."""


@dataclass(frozen=True)
class Extension:
    """What extending a model adds.

    Attributes
    ----------
    layout
        The extended layout (old biosamples and assays first, in their rows).
    new_biosamples, new_assays
        Indices (in ``layout``) of the items whose parameters are new: absent from the
        model or without any input track in it.
    new_tracks
        Input keys the model did not take as inputs.
    """

    layout: Layout
    new_biosamples: tuple[int, ...]
    new_assays: tuple[int, ...]
    new_tracks: tuple[str, ...]


def plan_extension(old: Layout, store: Store, *, exclude: Sequence[str] = ()) -> Extension:
    """The extension of layout ``old`` by what ``store`` holds (minus ``exclude``)."""
    store.require_model_bins(old.bin_size)
    check_exclude(store, exclude)
    excluded = set(exclude)
    keys = [t.key for t in store.tracks if t.key not in excluded]
    dropped = [k for k in old.keys if store.track_index(k) is None]
    if old.keys and len(dropped) == len(old.keys):
        raise InputError(f"{store.path} holds none of the model's {len(old.keys)} input tracks "
                         f"(e.g. {old.keys[0]}); extend with a store that has the old tracks "
                         "and the new ones")
    if dropped:
        log.warning("%s lacks %d input track(s) of the model (%s); they are no longer inputs",
                    store.path, len(dropped), ", ".join(dropped[:5]))
    layout = old.extended(keys, biosamples=store.biosamples, assays=store.assays,
                          excluded=sorted(excluded))
    check_learnable(layout, where=str(store.path))
    trained_b = {old.biosamples[b] for b, _ in old.tracks}
    trained_a = {old.assays[a] for _, a in old.tracks}
    new_b = tuple(i for i, b in enumerate(layout.biosamples) if b not in trained_b)
    new_a = tuple(i for i, a in enumerate(layout.assays) if a not in trained_a)
    new_tracks = tuple(k for k in layout.keys if k not in set(old.keys))
    if not new_tracks:
        raise InputError(f"{store.path} holds no input track the model lacks: nothing to "
                         "extend it with")
    return Extension(layout, new_b, new_a, new_tracks)


# -- parameter surgery ----------------------------------------------------------------------


def _grow_columns(old: torch.Tensor, n_blocks: int, width: int, new_blocks: Sequence[int]
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """A ``(d, blocks * width)`` encoder weight grown to ``n_blocks`` blocks of columns."""
    d = old.shape[0]
    blocks = old.reshape(d, -1, width).transpose(0, 1)  # (blocks, d, width)
    grown, mask = _grow_rows(blocks, n_blocks, new_blocks)
    return (grown.transpose(0, 1).reshape(d, n_blocks * width),
            mask.transpose(0, 1).reshape(d, n_blocks * width))


def grow_edice(network: Edice, extension: Extension, *, seed: int = 0
               ) -> tuple[Edice, dict[str, torch.Tensor]]:
    """An eDICE network for ``extension.layout`` holding ``network``'s parameters.

    Returns the network and the trainable masks of ``freeze`` mode: the embedding rows of
    the new items (of new tissues and individuals with ``shared_tissue_embedding``) and
    the encoder input columns that read them.
    """
    layout = extension.layout
    config = network.config
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        grown = Edice(layout, config)
    state = {k: v.detach().cpu() for k, v in network.state_dict().items()}
    masks: dict[str, torch.Tensor] = {}
    width = len(config.windows)
    new_b, new_a = extension.new_biosamples, extension.new_assays
    resized = {
        "biosample_encoder.encode.weight": _grow_columns(
            state["biosample_encoder.encode.weight"], layout.n_assays, width, new_a),
        "assay_encoder.encode.weight": _grow_columns(
            state["assay_encoder.encode.weight"], layout.n_biosamples, width, new_b),
        "assay_encoder.embedding.weight": _grow_rows(
            state["assay_encoder.embedding.weight"], layout.n_assays, new_a),
    }
    if config.shared_tissue_embedding:
        tissue, individual = biosample_groups(layout.biosamples)
        new_set = set(new_b)
        trained_t = {t for i, t in enumerate(tissue) if i not in new_set}
        trained_i = {v for i, v in enumerate(individual) if i not in new_set}
        n_t, n_i = max(tissue) + 1, max(individual) + 1
        resized["biosample_encoder.tissue_embedding.weight"] = _grow_rows(
            state["biosample_encoder.tissue_embedding.weight"], n_t,
            [t for t in range(n_t) if t not in trained_t])
        # A new individual starts as a fresh identity, not as the mean of the known ones:
        # with one reference individual the mean is that individual, and a never-observed
        # biosample of the new one would then look like the reference's.
        resized["biosample_encoder.individual_embedding.weight"] = _grow_rows(
            state["biosample_encoder.individual_embedding.weight"], n_i,
            [v for v in range(n_i) if v not in trained_i],
            fresh=torch.Generator().manual_seed(seed))
    else:
        resized["biosample_encoder.embedding.weight"] = _grow_rows(
            state["biosample_encoder.embedding.weight"], layout.n_biosamples, new_b)
    for name, (value, mask) in resized.items():
        state[name] = value
        masks[name] = mask
    if config.standardize:
        state.update(_grow_pair_statistics(state, layout, new_b, new_a))
    if config.uncertainty:  # training refits the calibration after the extension
        grow_spread_state(state, layout.n_assays)
    grown.load_state_dict(state)
    return grown, masks


def _grow_pair_statistics(state: dict[str, torch.Tensor], layout: Layout,
                          new_b: Sequence[int], new_a: Sequence[int]) -> dict[str, torch.Tensor]:
    """The standardisation tables grown to ``layout``: the old entries kept, those of new
    biosamples and assays unset (NaN, unmeasured) for training to measure and estimate."""
    grown = {}
    for name, fill in (("pair_mean", float("nan")), ("pair_sd", float("nan")),
                       ("pair_measured", False)):
        old = state[name]
        table = torch.full((layout.n_biosamples, layout.n_assays), fill, dtype=old.dtype)
        table[:old.shape[0], :old.shape[1]] = old
        table[list(new_b)] = fill
        table[:, list(new_a)] = fill
        grown[name] = table
    return grown


def grow_avocado(network: Avocado, extension: Extension, *, seed: int = 0
                 ) -> tuple[Avocado, dict[str, torch.Tensor]]:
    """An Avocado network for ``extension.layout`` holding ``network``'s parameters, and the
    trainable masks of ``freeze`` mode (see :meth:`Avocado.grown`)."""
    return network.grown(extension.layout, extension.new_biosamples, extension.new_assays,
                         seed=seed)


# -- the three models ---------------------------------------------------------------------


def extend_edice(
    imputer: EdiceImputer,
    store: Store,
    *,
    mode: ExtendMode,
    training: EdiceTrainingConfig,
    settings: RunSettings,
    exclude: Sequence[str] = (),
    checkpoint: Path | None = None,
    probe_share: float = FINETUNE_PROBE_SHARE,
) -> tuple[EdiceImputer, History]:
    """Extend an eDICE model with the new items of ``store`` (see the module docstring;
    ``probe_share``: the share of ``finetune``'s budget that trains only the new items)."""
    check_mode(mode, probe_share)
    extension = plan_extension(imputer.layout, store, exclude=exclude)
    _log_extension(extension, mode)
    network, masks = grow_edice(imputer.network, extension, seed=settings.seed)
    history, tuned = History(), None
    for phase in _phases(mode, settings, training, probe_share, checkpoint):
        tuned, phase_history = train_edice(
            store, config=network.config, training=phase.training, settings=phase.settings,
            checkpoint=phase.checkpoint, start=network,
            trainable=masks if phase.new_items_only else None)
        network, history = tuned.network, _chain(history, phase_history)
    return tuned, history


def extend_avocado(
    imputer: AvocadoImputer,
    store: Store,
    *,
    mode: ExtendMode,
    training: AvocadoTrainingConfig,
    settings: RunSettings,
    exclude: Sequence[str] = (),
    checkpoint: Path | None = None,
    probe_share: float = FINETUNE_PROBE_SHARE,
) -> tuple[AvocadoImputer, History]:
    """Extend an Avocado model with the new items of ``store``.

    Both modes train on the stage-1 region set (the whole store when it is small) of the
    contigs the model has factors for, starting from the model's genome factors there.
    ``freeze`` trains only the new cell-type and assay factors (the genome factors and
    the decoder stay as they are, and every contig keeps its factors); ``finetune``
    trains them so first, then every parameter, and the contigs stage 1 covers whole get
    the retrained factors while the others keep theirs.
    """
    check_mode(mode, probe_share)
    extension = plan_extension(imputer.layout, store, exclude=exclude)
    _log_extension(extension, mode)
    network, masks = grow_avocado(imputer.network, extension, seed=settings.seed)
    config = network.config
    fitted = set(imputer.contigs)
    blocks = [b for b in stage1_blocks(store, training, align=max(config.scales),
                                       rng=np.random.default_rng([settings.seed, 1]))
              if b[0] in fitted]
    if not blocks:
        raise InputError(f"the avocado model has genome factors for none of the contigs of "
                         f"{store.path} it would train on")
    rows = layout_rows(store, extension.layout)
    trainable = {f"network.{name}": mask for name, mask in masks.items()}

    genome: GenomeFactors | None = None  # the factors after the previous phase

    def start_genome(_: PositionData) -> GenomeFactors:
        if genome is not None:
            return copy.deepcopy(genome)
        return compact_factors(imputer.genome_factors, blocks, config)

    history = History()
    for phase in _phases(mode, settings, training, probe_share, checkpoint):
        network, genome, data, phase_history = train_stage1(
            store, extension.layout, rows, blocks, config=config, training=phase.training,
            settings=phase.settings, checkpoint=phase.checkpoint, start=network,
            start_genome=start_genome, trainable=trainable if phase.new_items_only else None)
        history = _chain(history, phase_history)
    factors: dict[str, GenomeFactors] = {}
    if mode == "finetune":
        factors = whole_contig_factors(genome.cpu(), data, blocks, store, config)
    extended = AvocadoImputer(network.cpu(), factors)
    kept = [c for c in imputer.contigs if c not in factors]
    if kept:
        extended.use_contig_loader(kept, imputer.contig_state_dict)
    return extended, history


def extend_average(
    imputer: AverageImputer,
    store: Store,
    *,
    mode: ExtendMode,
    training: AverageTrainingConfig,
    settings: RunSettings,
    exclude: Sequence[str] = (),
    checkpoint: Path | None = None,
    probe_share: float = FINETUNE_PROBE_SHARE,
) -> tuple[AverageImputer, History]:
    """The baseline learns nothing: extending it only records the new inputs."""
    check_mode(mode, probe_share)
    extension = plan_extension(imputer.layout, store, exclude=exclude)
    return AverageImputer(extension.layout, imputer.config), History()


@dataclass(frozen=True)
class _Phase:
    """One training run of an extension."""

    settings: RunSettings
    training: EdiceTrainingConfig | AvocadoTrainingConfig
    new_items_only: bool
    checkpoint: Path | None


def _phases(mode: ExtendMode, settings: RunSettings, training: TrainingConfig,
            probe_share: float, checkpoint: Path | None) -> list[_Phase]:
    """The training runs of ``mode``: ``freeze`` one run of the new items' parameters;
    ``finetune`` that run on ``probe_share`` of the budget (minutes and epochs; none when
    it is 0), then every parameter on the rest at a lower rate."""
    if mode == "freeze":
        return [_Phase(settings, training, new_items_only=True, checkpoint=checkpoint)]

    def share(fraction: float) -> RunSettings:
        minutes = settings.max_minutes
        return dataclasses.replace(settings,
                                   max_minutes=None if minutes is None else minutes * fraction)

    phases = []
    probe_epochs = 0
    if probe_share > 0:
        probe_epochs = max(1, round(training.max_epochs * probe_share))
        probe_checkpoint = None if checkpoint is None else checkpoint.with_name(
            f"{checkpoint.stem}-probe{checkpoint.suffix}")
        phases.append(_Phase(share(probe_share),
                             dataclasses.replace(training, max_epochs=probe_epochs),
                             new_items_only=True, checkpoint=probe_checkpoint))
    slower = {name: getattr(training, name) * FINETUNE_LEARNING_RATE_FACTOR
              for name in ("learning_rate", "genome_learning_rate") if hasattr(training, name)}
    phases.append(_Phase(
        share(1 - probe_share),
        dataclasses.replace(training, max_epochs=max(1, training.max_epochs - probe_epochs),
                            **slower),
        new_items_only=False, checkpoint=checkpoint))
    return phases


def _chain(first: History, second: History) -> History:
    """The history of two runs one after the other (best: the second run's)."""
    offset = len(first.epochs)
    return History(
        epochs=first.epochs + [dict(e, epoch=e["epoch"] + offset) for e in second.epochs],
        best_epoch=second.best_epoch + offset, best_validation=second.best_validation,
        stopped_because=second.stopped_because, seconds=first.seconds + second.seconds,
        bins_seen=first.bins_seen + second.bins_seen)


def check_mode(mode: str, probe_share: float = FINETUNE_PROBE_SHARE) -> None:
    """InputError unless ``mode`` is one of :data:`MODES` and ``probe_share`` in [0, 1)."""
    if mode not in MODES:
        raise InputError(f"unknown extension mode '{mode}' (known: {', '.join(MODES)})")
    if not 0 <= probe_share < 1:
        raise InputError(f"the probe share of finetune must be at least 0 and below 1, not "
                         f"{probe_share}")


def _log_extension(extension: Extension, mode: str) -> None:
    layout = extension.layout
    log.info("extending (%s): new cell types %s; new assays %s; %d new input tracks", mode,
             ", ".join(layout.biosamples[b] for b in extension.new_biosamples) or "none",
             ", ".join(layout.assays[a] for a in extension.new_assays) or "none",
             len(extension.new_tracks))
