"""The two stages of Avocado training (see :mod:`epimpute.training.avocado`)."""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from epimpute.errors import InputError
from epimpute.hardware import resolve_device
from epimpute.model_dir import contig_file_name
from epimpute.models.avocado import (
    Avocado,
    AvocadoConfig,
    AvocadoImputer,
    GenomeFactors,
)
from epimpute.models.layout import Layout
from epimpute.store import Store
from epimpute.training.avocado.batches import (
    Epochs,
    Trainable,
    fit_loop,
    hidden_entry_batches,
    keep_last,
    mean_error,
)
from epimpute.training.avocado.config import AvocadoTrainingConfig
from epimpute.training.avocado.plateau import PlateauDecay
from epimpute.training.avocado.positions import (
    PositionData,
    load_positions,
    whole_contig_factors,
)
from epimpute.training.avocado.regions import stage1_blocks
from epimpute.training.checkpoint import load_checkpoint, save_checkpoint
from epimpute.training.data import Block, input_rows, store_layout
from epimpute.training.freeze import TrainableMask, restrict_training
from epimpute.training.loop import History, RunSettings
from epimpute.training.optim import LazyAdam

__all__ = ["fit_contig", "train_avocado", "train_stage1"]

log = logging.getLogger(__name__)


def train_stage1(
    store: Store,
    layout: Layout,
    rows: Sequence[int],
    blocks: Sequence[Block],
    *,
    config: AvocadoConfig,
    training: AvocadoTrainingConfig,
    settings: RunSettings,
    checkpoint: Path | None = None,
    start: Avocado | None = None,
    start_genome: Callable[[PositionData], GenomeFactors] | None = None,
    trainable: TrainableMask | None = None,
) -> tuple[Avocado, GenomeFactors, PositionData, History]:
    """Stage 1: train every parameter on ``blocks``.

    ``start`` (copied) and ``start_genome`` (the factors of the loaded positions) continue
    training a model instead of new ones; ``trainable`` limits training to some entries of
    the parameters of ``Trainable`` (names ``network.*`` and ``genome.*``; see
    :mod:`epimpute.training.freeze`).

    Returns
    -------
    tuple
        The network, the genome factors of the blocks (rows numbered as in
        :func:`load_positions`), the positions and the history.
    """
    data = load_positions(store, rows, blocks, scales=config.scales,
                          hide_fraction=training.validation_fraction,
                          hide_block_bins=training.validation_block_bins,
                          rng=np.random.default_rng([settings.seed, 2]))
    device = resolve_device(settings.device)
    started = time.monotonic()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        network = Avocado(layout, config) if start is None else copy.deepcopy(start)
        if start_genome is None:
            genome = GenomeFactors(data.table_rows(), config, sparse=True)
        else:
            genome = start_genome(data)
        model = Trainable(network, genome).to(device)
        release = None
        if trainable is None:
            optimizer = LazyAdam([
                {"params": network.parameters(), "weight_decay": training.weight_decay},
                {"params": genome.parameters(), "lr": training.genome_learning_rate},
            ], lr=training.learning_rate)
        else:
            optimizer, release = restrict_training(
                model, trainable,
                lambda parameters: LazyAdam(parameters, lr=training.learning_rate,
                                            weight_decay=training.weight_decay))
        generator = torch.Generator().manual_seed(settings.seed + 1)
        epochs = Epochs(data, layout, batch_size=training.batch_size, generator=generator,
                        device=device)
        batches = hidden_entry_batches(epochs, batch_size=max(training.batch_size, 50_000))
        validate = PlateauDecay(mean_error(model, batches), optimizer,
                                factor=training.lr_decay, patience=training.lr_decay_patience)
        history = fit_loop(model, optimizer, epochs, validate,
                           max_epochs=training.max_epochs, patience=training.patience,
                           settings=settings, checkpoint=checkpoint,
                           description="avocado stage 1")
    if release is not None:
        release()
    for entry in history.epochs:
        entry.update(stage=1)
    history.seconds = time.monotonic() - started
    return network, genome, data, history


def fit_contig(
    network: Avocado,
    store: Store,
    rows: Sequence[int],
    contig: str,
    *,
    training: AvocadoTrainingConfig,
    settings: RunSettings,
    seed: int,
    checkpoint: Path | None = None,
) -> tuple[GenomeFactors, History]:
    """Stage 2 for one contig: fit its genome factors with ``network`` frozen.

    The network's parameters are not changed (they take no gradient and are not given to
    the optimiser). The epoch is chosen on blocks with one track hidden (see
    :func:`load_positions`). Returns the contig's factors and the history.
    """
    n_bins = store.n_bins(contig)
    data = load_positions(store, rows, [(contig, 0, n_bins)], scales=network.config.scales,
                          hide_fraction=training.validation_fraction,
                          hide_block_bins=training.validation_block_bins,
                          rng=np.random.default_rng([seed, 3]), whole_contig=True)
    device = next(network.parameters()).device
    flags = [p.requires_grad for p in network.parameters()]
    network.requires_grad_(requires_grad=False)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            genome = GenomeFactors.for_contig(n_bins, network.config, sparse=True).to(device)
            model = Trainable(network, genome)
            optimizer = LazyAdam(genome.parameters(), lr=training.genome_learning_rate)
            generator = torch.Generator().manual_seed(seed + 1)
            epochs = Epochs(data, network.layout, batch_size=training.batch_size,
                             generator=generator, device=device)
            batches = hidden_entry_batches(epochs, batch_size=max(training.batch_size, 50_000))
            if batches:
                validate = PlateauDecay(mean_error(model, batches), optimizer,
                                        factor=training.lr_decay,
                                        patience=training.lr_decay_patience)
            else:
                validate = keep_last(epochs)
            history = fit_loop(model, optimizer, epochs, validate,
                                max_epochs=training.stage2_max_epochs,
                                patience=training.stage2_patience, settings=settings,
                                checkpoint=checkpoint, description=f"avocado stage 2 {contig}")
    finally:
        for p, flag in zip(network.parameters(), flags):
            p.requires_grad_(flag)
    return genome, history


def _contig_file(folder: Path, contig: str, suffix: str = ".pt") -> Path:
    return folder / contig_file_name(contig, suffix)


def train_avocado(
    store: Store,
    *,
    config: AvocadoConfig,
    training: AvocadoTrainingConfig,
    settings: RunSettings,
    exclude: tuple[str, ...] | list[str] = (),
    checkpoint: Path | None = None,
) -> tuple[AvocadoImputer, History]:
    """Train Avocado on the observed (non-excluded) tracks of ``store``.

    Parameters
    ----------
    store
        The compendium.
    config
        Model sizes; a preset of ``"auto"`` is resolved from the number of tracks.
    training
        Stages, stopping and regularisation.
    settings
        Seed, device, time budget (for both stages together), progress, resume.
    exclude
        Track keys hidden from training.
    checkpoint
        Stage-1 checkpoint file. Stage 2 keeps its per-contig checkpoints and finished
        factors in the folder ``<checkpoint stem>-genome`` beside it (so finished contigs
        leave memory); without a checkpoint every contig's factors stay in memory.

    Returns
    -------
    tuple[AvocadoImputer, History]
        The model and the stage-1 history; stage-2 epochs are appended to
        ``history.epochs`` with their ``stage`` and ``contig``.
    """
    started = time.monotonic()
    layout = store_layout(store, exclude=exclude)
    rows = input_rows(store, exclude)
    if not rows:
        raise InputError(f"{store.path}: every track is excluded; nothing to train on")
    _warn_untrained(layout)
    config = config.resolve(len(rows))
    blocks = stage1_blocks(store, training, align=max(config.scales),
                           rng=np.random.default_rng([settings.seed, 1]))
    log.info("avocado (%s preset): stage 1 on %d bins in %d blocks", config.preset,
             sum(b - a for _, a, b in blocks), len(blocks))
    network, genome, data, history = train_stage1(
        store, layout, rows, blocks, config=config, training=training, settings=settings,
        checkpoint=checkpoint)
    factors = whole_contig_factors(genome.cpu(), data, blocks, store, config)
    del genome, data

    wanted = training.stage2_contigs
    if wanted is None:
        todo = [c for c in store.contigs if store.n_bins(c) > 0
                and (training.refit_stage1_contigs or c not in factors)]
    else:
        unknown = [c for c in wanted if c not in store.contigs]
        if unknown:
            raise InputError(f"stage2_contigs names contigs not in {store.path}: "
                             f"{', '.join(unknown)}")
        todo = list(wanted)
    folder = None if checkpoint is None else checkpoint.with_name(f"{checkpoint.stem}-genome")
    saved: list[str] = []
    device = resolve_device(settings.device)
    network.to(device)
    for i, contig in enumerate(todo):
        done = None if folder is None else _contig_file(folder, contig)
        if done is not None and done.exists():
            factors.pop(contig, None)
            saved.append(contig)
            continue
        remaining = None
        if settings.max_minutes is not None:
            remaining = settings.max_minutes - (time.monotonic() - started) / 60.0
            if remaining <= 0:
                log.warning("time budget spent: %d contig(s) not fitted (%s); they cannot be "
                            "imputed until training is resumed", len(todo) - i,
                            ", ".join(todo[i:i + 5]))
                break
        contig_settings = dataclasses.replace(settings, max_minutes=remaining)
        loop_checkpoint = None
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            loop_checkpoint = _contig_file(folder, contig, ".checkpoint.pt")
        contig_factors, contig_history = fit_contig(
            network, store, rows, contig, training=training, settings=contig_settings,
            seed=settings.seed + 1000 * (i + 1), checkpoint=loop_checkpoint)
        history.epochs += [dict(e, stage=2, contig=contig) for e in contig_history.epochs]
        history.bins_seen += contig_history.bins_seen
        contig_factors = contig_factors.cpu()
        if folder is None:
            factors[contig] = contig_factors
        else:
            state = {k: v.detach().cpu() for k, v in contig_factors.state_dict().items()}
            save_checkpoint(_contig_file(folder, contig), state)
            factors.pop(contig, None)
            saved.append(contig)
            if loop_checkpoint is not None:
                loop_checkpoint.unlink(missing_ok=True)
    history.seconds = time.monotonic() - started
    imputer = AvocadoImputer(network.cpu(), factors)
    if saved and folder is not None:
        scratch = folder
        imputer.use_contig_loader(saved, lambda c: load_checkpoint(_contig_file(scratch, c)))
    return imputer, history


def _warn_untrained(layout: Layout) -> None:
    seen_bios = {b for b, _ in layout.tracks}
    seen_assays = {a for _, a in layout.tracks}
    lacking = [layout.biosamples[b] for b in range(layout.n_biosamples) if b not in seen_bios]
    lacking += [layout.assays[a] for a in range(layout.n_assays) if a not in seen_assays]
    if lacking:
        log.warning("no training track for %s: their embeddings stay untrained and their "
                    "imputations are meaningless", ", ".join(lacking))
