"""Training eDICE by hiding observed tracks and reconstructing them."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from epimpute.errors import InputError
from epimpute.hardware import resolve_device, uses_bf16
from epimpute.models.edice import Edice, EdiceConfig, biosample_groups
from epimpute.models.edice_imputer import EdiceImputer
from epimpute.models.features import context_margin, window_means
from epimpute.models.track_scale import STATISTIC_FLOOR, complete_log_additive
from epimpute.store import Store
from epimpute.training.calibration import calibrate_spread
from epimpute.training.data import (
    BinTable,
    genome_blocks,
    input_rows,
    layout_rows,
    load_bins,
    split_blocks,
    store_layout,
)
from epimpute.training.freeze import TrainableMask, restrict_training
from epimpute.training.loop import History, LoopSpec, RunSettings, fit
from epimpute.training.masking import Masks, draw_context, sample_masks, widen_masks

log = logging.getLogger(__name__)


@dataclass
class EdiceTrainingConfig:
    """How eDICE is trained.

    Attributes
    ----------
    batch_size
        Bins per optimiser step.
    learning_rate, weight_decay
        Adam(W) settings.
    ema_decay
        Validate and keep an exponential moving average of the weights (per step);
        ``None`` keeps the raw weights.
    max_epochs, patience
        Stop after ``max_epochs`` or ``patience`` epochs without a better validation loss.
    max_masked_fraction, max_masked_tracks
        At each bin between 1 and this fraction of the observed tracks (of the batch's
        context biosamples), and at most ``max_masked_tracks``, are hidden.
    mask_biosample_probability
        Probability that a bin hides every track of one biosample instead.
    mask_unit
        What such a bin hides: ``"biosample"`` (every track of one biosample) or
        ``"tissue"`` (every track of every biosample ``tissue@...`` of one tissue, across
        individuals).
    max_train_bins
        Bins drawn (as whole blocks) for training and validation; the whole genome when it
        is smaller. Inputs of these bins are held in memory.
    epoch_bins
        Bins per epoch (``None``: every training bin once).
    validation_fraction, validation_max_bins
        Share of the drawn blocks held out for validation, and how many of their bins
        (evenly spaced) are scored each epoch.
    block_bins
        Size of the genomic blocks training data is drawn in.
    context_biosamples
        Biosamples drawn at random for each batch (the others' tracks are neither inputs
        nor targets of that batch), which bounds a batch's cost on large compendia.
        ``None``: every biosample when there are at most 16, else 16.
    table_bytes
        Memory the training and validation inputs held in memory may take; fewer bins
        than ``max_train_bins`` are drawn when they would take more.
    """

    batch_size: int = 2048
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    ema_decay: float | None = 0.995
    max_epochs: int = 60
    patience: int = 4
    max_masked_fraction: float = 0.25
    max_masked_tracks: int = 16
    mask_biosample_probability: float = 0.0
    mask_unit: str = "biosample"
    max_train_bins: int = 2_000_000
    epoch_bins: int | None = 500_000
    validation_fraction: float = 0.05
    validation_max_bins: int = 50_000
    block_bins: int = 10_000
    context_biosamples: int | None = None
    table_bytes: float = 2e9

    def __post_init__(self) -> None:
        if self.context_biosamples is not None and self.context_biosamples < 2:
            raise ValueError("context_biosamples must be 2 or more (or None for automatic)")
        if self.max_masked_tracks < 1:
            raise ValueError("max_masked_tracks must be 1 or more")


AUTO_CONTEXT_BIOSAMPLES = 16
"""Automatic ``context_biosamples``: compendia of up to this many biosamples use them all."""


def context_size(config: EdiceTrainingConfig, n_biosamples: int) -> int:
    """How many biosamples a batch draws (all of them: ``n_biosamples``)."""
    wanted = config.context_biosamples
    if wanted is None:
        wanted = AUTO_CONTEXT_BIOSAMPLES
    return min(wanted, n_biosamples)


class _EdiceBatches:
    """Random batches of bins with random masks, reproducible from one generator.

    Each batch draws its context biosamples (all of them on small compendia, see
    :func:`context_size`) and hides tracks among theirs only.
    """

    def __init__(self, table: BinTable, network: Edice, config: EdiceTrainingConfig,
                 generator: torch.Generator, device: torch.device, *,
                 bins: int | None = None, share: int = 1) -> None:
        # ``bins``: draw from the first ``bins`` bins only; ``share``: this process's share
        # of each batch and epoch is 1 / share (several training processes).
        self.features = torch.from_numpy(table.features)
        self.values = torch.from_numpy(table.values)
        self.n_bins = len(self.values) if bins is None else min(bins, len(self.values))
        self.batch_size = max(1, config.batch_size // share)
        self.epoch_bins = None if config.epoch_bins is None else -(-config.epoch_bins // share)
        self.config = config
        self.generator = generator
        self.device = device
        self.track_biosample = network.track_biosample.cpu()
        self.n_context = context_size(config, len(torch.unique(self.track_biosample)))
        self.groups = self.track_biosample
        if config.mask_unit == "tissue":
            tissue = torch.tensor(biosample_groups(network.layout.biosamples)[0])
            self.groups = tissue[self.groups]
        elif config.mask_unit != "biosample":
            raise ValueError(f"mask_unit must be 'biosample' or 'tissue', "
                             f"got {config.mask_unit!r}")

    def masks(self, n_bins: int, generator: torch.Generator, *,
              biosample_probability: float) -> Masks:
        """Masks for ``n_bins`` bins over the tracks of freshly drawn context biosamples."""
        context = draw_context(self.track_biosample, self.n_context, generator)
        tracks = slice(None) if context is None else context
        groups = self.groups[tracks]
        masks = sample_masks(
            n_bins, len(groups), max_masked=_max_masked(self.config, len(groups)),
            generator=generator, track_biosample=groups,
            biosample_probability=biosample_probability,
        )
        return masks if context is None else widen_masks(masks, context, len(self.groups))

    def __call__(self, epoch: int) -> Iterator[tuple[tuple[torch.Tensor, ...], int]]:
        n = self.n_bins
        per_epoch = n if self.epoch_bins is None else min(n, self.epoch_bins)
        order = torch.randperm(n, generator=self.generator)[:per_epoch]
        size = self.batch_size
        for lo in range(0, per_epoch - size + 1 if per_epoch >= size else 1, size):
            index = order[lo:lo + size]
            masks = self.masks(len(index), self.generator,
                               biosample_probability=self.config.mask_biosample_probability)
            batch = (self.features[index], self.values[index]) + tuple(masks)
            yield tuple(t.to(self.device, non_blocking=True) for t in batch), len(index)


def _max_masked(config: EdiceTrainingConfig, n_tracks: int) -> int:
    return max(1, min(round(config.max_masked_fraction * n_tracks), config.max_masked_tracks))


def masked_loss(network: Edice, batch: tuple[torch.Tensor, ...],
                forward: nn.Module | None = None, *, spread: bool = True) -> torch.Tensor:
    """Mean squared error over the hidden tracks of a batch; ``forward`` (default
    ``network``) computes the predictions, e.g. ``network`` wrapped for several processes.

    With ``spread`` and a network with ``uncertainty``, plus the Gaussian negative
    log-likelihood of the errors under the predicted log-variances, with the errors
    detached: it trains the spread head only, the mean's gradient is the squared error's.
    """
    features, values, available, targets, valid = batch
    pairs = torch.stack([network.track_biosample[targets], network.track_assay[targets]], dim=-1)
    spread = spread and network.config.uncertainty
    output = (forward or network)(features, available, pairs, valid, spread=spread)
    predicted, log_variance = output if spread else (output, None)
    truth = torch.gather(values, 1, targets)
    error = (predicted.float() - truth) / network.target_sd(pairs)
    count = valid.sum().clamp(min=1)
    loss = (error ** 2 * valid).sum() / count
    if log_variance is not None:
        log_variance = log_variance.float()
        nll = 0.5 * (log_variance + error.detach() ** 2 * torch.exp(-log_variance))
        loss = loss + (nll * valid).sum() / count
    return loss


STATISTIC_COLUMNS = 128
"""Tracks whose mean and sd :func:`measure_pair_statistics` computes at a time."""


def measure_pair_statistics(network: Edice, values: np.ndarray, *, estimate_all: bool) -> None:
    """Fill ``network``'s standardisation tables (``standardize``).

    Input tracks not yet measured get the mean and sd of their column of ``values``
    (bins x input tracks). Pairs without a measurement are then estimated from the
    measured ones (:func:`complete_log_additive`): all of them with ``estimate_all``,
    otherwise only those still unset (NaN: the rows and columns extension added), so that
    an extended model keeps every statistic the original model used.
    """
    mean = network.pair_mean.cpu().numpy().astype(np.float64)
    sd = network.pair_sd.cpu().numpy().astype(np.float64)
    measured = network.pair_measured.cpu().numpy().copy()
    b, a = network.track_biosample.cpu().numpy(), network.track_assay.cpu().numpy()
    new = np.flatnonzero(~measured[b, a])
    for lo in range(0, len(new), STATISTIC_COLUMNS):  # in float64, a block at a time
        tracks = new[lo:lo + STATISTIC_COLUMNS]
        columns = np.asarray(values[:, tracks], dtype=np.float64)
        mean[b[tracks], a[tracks]] = columns.mean(0)
        sd[b[tracks], a[tracks]] = np.maximum(columns.std(0), STATISTIC_FLOOR)
        measured[b[tracks], a[tracks]] = True
    unset = np.isnan(mean) | np.isnan(sd)
    estimate = ~measured & (unset | estimate_all)
    for table in (mean, sd):
        table[estimate] = complete_log_additive(table, measured)[estimate]
    network.set_pair_statistics(mean, sd, measured)


def train_edice(
    store: Store,
    *,
    config: EdiceConfig,
    training: EdiceTrainingConfig,
    settings: RunSettings,
    exclude: tuple[str, ...] | list[str] = (),
    checkpoint: Path | None = None,
    start: Edice | None = None,
    trainable: TrainableMask | None = None,
) -> tuple[EdiceImputer, History]:
    """Train eDICE on the observed (non-excluded) tracks of ``store``.

    ``start`` continues training a network (its layout's input tracks, which the store
    must hold, are the training tracks; ``exclude`` is then ignored) instead of a new one;
    ``trainable`` limits training to some entries of its parameters (see
    :mod:`epimpute.training.freeze`). Returns the imputer holding the best weights by
    validation loss, and the history.

    With ``settings.world`` (several processes) each process loads and trains on every
    ``world_size``-th training block, a ``1 / world_size`` share of each batch; gradients
    are averaged across processes; the standardisation statistics are rank 0's.
    """
    world = settings.world
    if start is None:
        layout = store_layout(store, exclude=exclude)
        rows = input_rows(store, exclude)
    else:
        layout = start.layout
        rows = layout_rows(store, layout)
    rng = np.random.default_rng(settings.seed)
    contig_bins = {c: store.n_bins(c) for c in store.contigs}
    # Small genomes get smaller blocks, so that validation has blocks of its own.
    block_bins = min(training.block_bins, max(256, sum(contig_bins.values()) // 20))
    blocks = genome_blocks(contig_bins, block_bins=block_bins)
    n_features = len(config.windows)
    memory_cap = int(training.table_bytes // max(1, 4 * len(rows) * (n_features + 1)))
    max_bins = min(training.max_train_bins, memory_cap * (world.world_size if world else 1))
    train_blocks, validation_blocks = split_blocks(
        blocks, max_bins=max_bins, validation_fraction=training.validation_fraction, rng=rng)
    if world is not None:
        if len(train_blocks) < world.world_size:
            raise InputError(f"{store.path}: {len(train_blocks)} training blocks cannot be "
                             f"shared by {world.world_size} processes")
        train_blocks = train_blocks[world.rank::world.world_size]
    margin = context_margin(config.windows)

    def featurize(signal: np.ndarray) -> np.ndarray:
        return window_means(signal, config.windows, margin=margin)

    log.info("loading %d training and %d validation blocks", len(train_blocks),
             len(validation_blocks))
    train_table = load_bins(store, rows, train_blocks, margin=margin, featurize=featurize)
    validation_table = load_bins(store, rows, validation_blocks, margin=margin,
                                 featurize=featurize)
    step = max(1, len(validation_table) // training.validation_max_bins)
    validation_table = BinTable(validation_table.features[::step],
                                validation_table.values[::step])

    device = resolve_device(settings.device)
    forward: nn.Module | None = None
    if world is not None:
        device = world.place(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        network = Edice(layout, config) if start is None else start
        if network.config.standardize:
            measure_pair_statistics(network, train_table.values, estimate_all=start is None)
        network = network.to(device)
        if world is not None:
            if network.config.standardize:
                world.broadcast_tensors([network.pair_mean, network.pair_sd,
                                         network.pair_measured])
            forward = DistributedDataParallel(
                network, device_ids=[device] if device.type == "cuda" else None,
                broadcast_buffers=False)
            torch.manual_seed(settings.seed + 7919 * world.rank)  # own dropout draws

        def optimizer_for(parameters: list) -> torch.optim.Optimizer:
            return torch.optim.AdamW(parameters, lr=training.learning_rate,
                                     weight_decay=training.weight_decay)

        def release() -> None:
            return None

        if trainable is None:
            optimizer = optimizer_for(list(network.parameters()))
        else:
            optimizer, release = restrict_training(network, trainable, optimizer_for)
        generator = torch.Generator().manual_seed(
            settings.seed + 1 + (7919 * world.rank if world else 0))
        if world is None:
            batches = _EdiceBatches(train_table, network, training, generator, device)
        else:  # the same number of batches on every process
            batches = _EdiceBatches(train_table, network, training, generator, device,
                                    bins=world.minimum(len(train_table)),
                                    share=world.world_size)
        validation_batches = _validation_batches(validation_table, batches, settings.seed,
                                                 device)

        def validate() -> float:
            total, count = 0.0, 0
            for batch in validation_batches:
                valid = batch[-1]
                total += float(masked_loss(network, batch, spread=False)) * float(valid.sum())
                count += int(valid.sum())
            return total / max(count, 1)

        spec = LoopSpec(
            batches=batches,
            loss=lambda batch: masked_loss(network, batch, forward),
            validate=validate,
            random_state=(generator.get_state, generator.set_state),
        )
        try:
            history = fit(network, optimizer, spec, max_epochs=training.max_epochs,
                          patience=training.patience, settings=settings, checkpoint=checkpoint,
                          amp=uses_bf16(settings.precision, device), ema_decay=training.ema_decay,
                          description="edice")
        finally:
            release()
        if network.config.uncertainty:
            factors = calibrate_spread(network, validation_batches)
            log.info("spread calibration factors per assay: %s", factors)
    return EdiceImputer(network.cpu()), history


def _validation_batches(table: BinTable, batches: _EdiceBatches, seed: int,
                        device: torch.device) -> list[tuple[torch.Tensor, ...]]:
    """Fixed validation batches: random tracks (of drawn context biosamples) hidden the
    same way every epoch; at most ``batch_size`` bins each."""
    generator = torch.Generator().manual_seed(seed + 2)
    features = torch.from_numpy(table.features)
    values = torch.from_numpy(table.values)
    size = batches.config.batch_size
    out = []
    for lo in range(0, len(values), 8192):
        hi = min(lo + 8192, len(values))
        masks = batches.masks(hi - lo, generator, biosample_probability=0.0)
        for first in range(lo, hi, size):
            last = min(first + size, hi)
            part = tuple(m[first - lo:last - lo] for m in masks)
            batch = (features[first:last], values[first:last]) + part
            out.append(tuple(t.to(device) for t in batch))
    return out
