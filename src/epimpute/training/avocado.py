"""Training Avocado in two stages, as in the paper.

Stage 1 trains every parameter (cell-type and assay embeddings, decoder, genome factors) on
a region set: the whole store when it is small (at most ``stage1_max_bins`` bins), else the
regions of a BED file or randomly drawn blocks. Stage 2 freezes the embeddings and the
decoder and fits the genome factors of each contig in turn, holding one contig's factors
in memory and saving them before moving on. Contigs that stage 1 covered whole keep their
stage-1 factors.

An epoch is one pass over the positions of the region set (or contig) in random order,
with one observed track drawn at random for each position (the paper's definition).

Stopping rule: before training, a ``validation_fraction`` of the region set, in blocks of
``validation_block_bins`` bins (5 kb by default, the coarsest scale), has one observed
track hidden per block. Those (position, track) entries are never trained on; the epoch
with the lowest mean squared error on them is kept, and training stops after ``patience``
epochs without improvement. The rule never looks at tracks excluded from training, and
hiding whole blocks of a track (not scattered bins) makes the check resemble imputing an
unseen track: no factor at any scale has seen that track there. Alternatively
(``validation_tracks``) whole observed tracks are held out to choose the number of epochs,
and stage 1 is then trained again on every track for that many epochs.

Regularisation: dropout in the decoder and weight decay on the decoder and embeddings keep
the model from treating the (cell type, assay) pairs it is trained on as special cases,
which is what otherwise makes imputations of unseen pairs drift (``docs/avocado.md``).

Ensemble members (``AvocadoConfig.members``) are trained side by side on the same batches,
each on its own squared error; validation and the stopping rule score their mean.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from epimpute.errors import InputError
from epimpute.models.avocado import Avocado, AvocadoConfig, AvocadoImputer, GenomeFactors
from epimpute.models.layout import Layout
from epimpute.store import Store
from epimpute.training.checkpoint import load_checkpoint, save_checkpoint
from epimpute.training.data import Block, genome_blocks, input_rows, store_layout
from epimpute.training.freeze import TrainableMask, restrict_training
from epimpute.hardware import resolve_device
from epimpute.training.loop import History, LoopSpec, RunSettings, fit

__all__ = [
    "AvocadoTrainingConfig",
    "LazyAdam",
    "PositionData",
    "fit_contig",
    "stage1_blocks",
    "train_avocado",
    "train_stage1",
]

log = logging.getLogger(__name__)


@dataclass
class AvocadoTrainingConfig:
    """How Avocado is trained.

    Attributes
    ----------
    batch_size
        Positions per optimiser step.
    learning_rate
        Adam step size of the decoder and the cell-type and assay embeddings.
    genome_learning_rate
        Adam step size of the genome factors. A 25-bp factor is updated in one step per
        epoch (a 250-bp one in about 10, a 5-kb one in most), so it gets a larger step than
        the parameters every step updates.
    weight_decay
        Decoupled weight decay of the decoder and the cell-type / assay embeddings. It keeps
        the decoder from turning the (cell type, assay) pairs it has seen into special cases,
        which is what makes imputations of unseen pairs go astray.
    genome_l2
        L2 penalty on the genome factors, applied to the rows a batch touches.
    max_epochs, patience
        Stage 1: at most ``max_epochs``; stop after ``patience`` epochs without a better
        validation error.
    lr_decay, lr_decay_patience
        Multiply every step size by ``lr_decay`` after ``lr_decay_patience`` epochs without
        a better validation error (``1.0``: constant step sizes).
    validation_tracks
        Observed tracks held out in stage 1 to choose the number of epochs. ``0`` (the
        default): choose it on hidden blocks, as in stage 2 (see the module docstring).
    validation_max_bins
        Positions (evenly spaced) at which the validation tracks are scored.
    refit
        After choosing the number of epochs, train stage 1 again from the same start on
        every track for that many epochs (so the validation tracks are not lost). Without
        it, the model trained without the validation tracks is kept.
    stage2_max_epochs, stage2_patience
        The same for each contig in stage 2.
    validation_fraction, validation_block_bins
        Share of the positions, in blocks of this many bins, where one track is hidden from
        training to choose the epoch (stage 2, and stage 1 without validation tracks).
    stage1_bed
        BED file of the stage-1 regions (overrides the default choice).
    stage1_max_bins
        Without a BED file, stage 1 trains on the whole store when it has at most this many
        bins, else on random blocks of ``stage1_block_bins`` bins adding up to it.
    stage1_block_bins
        Size of the random stage-1 blocks.
    stage2_contigs
        Contigs to fit in stage 2 (``None``: every contig of the store not covered whole by
        stage 1). Positions on other contigs cannot be imputed.
    refit_stage1_contigs
        Also refit in stage 2 the contigs that stage 1 covered whole.
    """

    batch_size: int = 10_000
    learning_rate: float = 1e-3
    genome_learning_rate: float = 1e-2
    weight_decay: float = 3.0
    genome_l2: float = 0.0
    max_epochs: int = 200
    patience: int = 6
    lr_decay: float = 0.5
    lr_decay_patience: int = 2
    validation_tracks: int = 0
    validation_max_bins: int = 200_000
    refit: bool = True
    stage2_max_epochs: int = 100
    stage2_patience: int = 6
    validation_fraction: float = 0.05
    validation_block_bins: int = 200
    stage1_bed: str | None = None
    stage1_max_bins: int = 4_000_000
    stage1_block_bins: int = 20_000
    stage2_contigs: tuple[str, ...] | None = None
    refit_stage1_contigs: bool = False

    def __post_init__(self) -> None:
        if self.stage2_contigs is not None:
            self.stage2_contigs = tuple(str(c) for c in self.stage2_contigs)
        if self.batch_size < 1:
            raise ValueError("batch_size must be positive")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError("validation_fraction must be in [0, 1)")
        if self.validation_tracks < 0:
            raise ValueError("validation_tracks must be 0 or more")


# -- optimiser ----------------------------------------------------------------------------


class LazyAdam(torch.optim.Optimizer):
    """Adam that, for sparse gradients, updates only the rows a step touched.

    Dense parameters get AdamW (decoupled ``weight_decay``). Parameters with sparse
    gradients (embeddings built with ``sparse=True``) get, on the touched rows only, an L2
    penalty ``l2`` added to the gradient and Adam moments with a step count per row, so
    the bias correction of a row depends on how often it was updated. Untouched rows do
    not move, which keeps a step's cost proportional to the batch, not to the genome.

    Parameters
    ----------
    params
        Parameters or parameter groups (groups may override ``lr``, ``weight_decay``,
        ``l2``).
    lr, betas, eps
        As in :class:`torch.optim.Adam`.
    weight_decay
        Decoupled weight decay of dense parameters.
    l2
        L2 penalty of sparse parameters.
    """

    def __init__(self, params: Iterable[Any], *, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, l2: float = 0.0) -> None:
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "l2": l2}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    self._sparse_step(p, group)
                else:
                    self._dense_step(p, group)
        return loss

    def _dense_step(self, p: torch.Tensor, group: dict[str, Any]) -> None:
        state = self.state[p]
        if not state:
            state["step"] = torch.zeros((), dtype=torch.float64)
            state["exp_avg"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
        beta1, beta2 = group["betas"]
        state["step"] += 1
        t = float(state["step"])
        if group["weight_decay"]:
            p.mul_(1.0 - group["lr"] * group["weight_decay"])
        state["exp_avg"].lerp_(p.grad, 1.0 - beta1)
        state["exp_avg_sq"].mul_(beta2).addcmul_(p.grad, p.grad, value=1.0 - beta2)
        denominator = (state["exp_avg_sq"] / (1.0 - beta2 ** t)).sqrt_().add_(group["eps"])
        p.addcdiv_(state["exp_avg"], denominator, value=-group["lr"] / (1.0 - beta1 ** t))

    def _sparse_step(self, p: torch.Tensor, group: dict[str, Any]) -> None:
        state = self.state[p]
        if not state:
            state["row_steps"] = torch.zeros(p.shape[0], dtype=torch.int32, device=p.device)
            state["exp_avg"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
        beta1, beta2 = group["betas"]
        rows, values = _distinct_rows(p.grad)
        current = p.index_select(0, rows)
        if group["l2"]:
            values = values + group["l2"] * current
        steps = state["row_steps"].index_select(0, rows) + 1
        state["row_steps"].index_copy_(0, rows, steps)
        exp_avg = state["exp_avg"].index_select(0, rows).lerp_(values, 1.0 - beta1)
        exp_avg_sq = state["exp_avg_sq"].index_select(0, rows).mul_(beta2)
        exp_avg_sq.addcmul_(values, values, value=1.0 - beta2)
        state["exp_avg"].index_copy_(0, rows, exp_avg)
        state["exp_avg_sq"].index_copy_(0, rows, exp_avg_sq)
        t = steps.to(p.dtype).unsqueeze(1)
        correction1 = 1.0 - torch.pow(beta1, t)
        correction2 = 1.0 - torch.pow(beta2, t)
        update = (exp_avg / correction1) / ((exp_avg_sq / correction2).sqrt_().add_(group["eps"]))
        # rows are distinct: a copy is exact, and much faster than index_add_ with alpha
        p.index_copy_(0, rows, current.sub_(update, alpha=group["lr"]))


def _distinct_rows(grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows and values of a sparse row gradient, each row once.

    Gradients from :class:`~epimpute.models.avocado.GenomeFactors` already list distinct
    rows in increasing order (autograd drops the flag that says so); checking that is
    linear, coalescing sorts.
    """
    if not grad.is_coalesced():
        rows = grad._indices()[0]
        if rows.numel() < 2 or bool((rows[1:] > rows[:-1]).all()):
            return rows, grad._values()
        grad = grad.coalesce()
    return grad.indices()[0], grad.values()


# -- positions ----------------------------------------------------------------------------


@dataclass
class PositionData:
    """Observed signal of a set of positions, with what is hidden for validation.

    Attributes
    ----------
    values
        ``(N, T)`` float32 signal of the ``T`` training tracks at ``N`` positions.
    rows
        For each scale, ``(N,)`` long row of each position in that scale's factor table;
        ``None`` when the positions are a whole contig (row = bin // scale).
    scales
        Bins per row at each scale.
    hidden
        ``(N,)`` int16 track hidden for validation at each position, ``-1`` for none.
    """

    values: torch.Tensor
    rows: list[torch.Tensor] | None
    scales: tuple[int, ...]
    hidden: torch.Tensor

    def __len__(self) -> int:
        return self.values.shape[0]

    @property
    def n_tracks(self) -> int:
        return self.values.shape[1]

    def scale_rows(self, positions: torch.Tensor) -> list[torch.Tensor]:
        """Rows of ``positions`` in each scale's table."""
        if self.rows is None:
            return [torch.div(positions, s, rounding_mode="floor") for s in self.scales]
        return [r[positions] for r in self.rows]

    def table_rows(self) -> list[int]:
        """Rows each scale's table needs."""
        if self.rows is None:
            return [-(-len(self) // s) for s in self.scales]
        return [int(r.max()) + 1 if len(r) else 0 for r in self.rows]


def _hide_blocks(keys: np.ndarray, n_tracks: int, *, fraction: float,
                 rng: np.random.Generator) -> np.ndarray:
    """One hidden track for a random ``fraction`` of the blocks named by ``keys``."""
    hidden = np.full(keys.shape[0], -1, dtype=np.int16)
    if fraction <= 0 or n_tracks < 2 or keys.size == 0:
        return hidden
    blocks, block_of = np.unique(keys, return_inverse=True)
    n_chosen = min(blocks.size, max(1, int(round(fraction * blocks.size))))
    chosen = np.full(blocks.size, -1, dtype=np.int16)
    picked = rng.choice(blocks.size, size=n_chosen, replace=False)
    chosen[picked] = rng.integers(n_tracks, size=picked.size)
    return chosen[block_of.reshape(-1)]


def load_positions(
    store: Store,
    rows: Sequence[int],
    blocks: Sequence[Block],
    *,
    scales: Sequence[int],
    hide_fraction: float = 0.0,
    hide_block_bins: int = 200,
    rng: np.random.Generator | None = None,
    whole_contig: bool = False,
) -> PositionData:
    """Read the signal of ``blocks`` and number their factor rows at every scale.

    Rows are numbered compactly over the blocks: a contig covered whole gets the rows
    ``bin // scale`` shifted by the rows of the contigs before it. With ``whole_contig``
    (one block covering a contig) the rows are left implicit. A ``hide_fraction`` of the
    ``hide_block_bins``-bin blocks get one track hidden for validation.
    """
    n_total = sum(end - start for _, start, end in blocks)
    values = np.empty((n_total, len(rows)), dtype=np.float32)
    contig_ids = {c: i for i, c in enumerate(dict.fromkeys(c for c, _, _ in blocks))}
    contig_of = np.empty(n_total, dtype=np.int64)
    bins = np.empty(n_total, dtype=np.int64)
    at = 0
    for contig, start, end in blocks:
        n = end - start
        values[at:at + n] = store.read(contig, start, end, tracks=list(rows)).T
        contig_of[at:at + n] = contig_ids[contig]
        bins[at:at + n] = np.arange(start, end)
        at += n
    hidden = _hide_blocks((contig_of << 40) | (bins // hide_block_bins), len(rows),
                          fraction=hide_fraction, rng=rng or np.random.default_rng(0))
    scale_rows: list[torch.Tensor] | None = None
    if not whole_contig:
        scale_rows = []
        for scale in scales:
            _, inverse = np.unique((contig_of << 40) | (bins // scale), return_inverse=True)
            scale_rows.append(torch.from_numpy(inverse.astype(np.int64).reshape(-1)))
    return PositionData(torch.from_numpy(values), scale_rows, tuple(scales),
                        torch.from_numpy(hidden))


def choose_validation_tracks(layout: Layout, count: int, rng: np.random.Generator
                             ) -> list[int]:
    """Indices of up to ``count`` input tracks to hold out for choosing the stopping epoch.

    No two share a cell type or an assay, and every cell type and assay keeps at least two
    training tracks, so each held-out track is an unseen (cell type, assay) pair of the
    kind imputation has to fill in.
    """
    per_celltype = np.bincount([b for b, _ in layout.tracks], minlength=layout.n_biosamples)
    per_assay = np.bincount([a for _, a in layout.tracks], minlength=layout.n_assays)
    chosen: list[int] = []
    used_celltypes: set[int] = set()
    used_assays: set[int] = set()
    for i in rng.permutation(len(layout.tracks)):
        if len(chosen) == count:
            break
        b, a = layout.tracks[i]
        if b in used_celltypes or a in used_assays or per_celltype[b] < 3 or per_assay[a] < 3:
            continue
        chosen.append(int(i))
        used_celltypes.add(b)
        used_assays.add(a)
        per_celltype[b] -= 1
        per_assay[a] -= 1
    return sorted(chosen)


# -- batches and losses -------------------------------------------------------------------


class _Trainable(nn.Module):
    """The network and one set of genome factors, trained together by :func:`fit`."""

    def __init__(self, network: Avocado, genome: GenomeFactors) -> None:
        super().__init__()
        self.network = network
        self.genome = genome


Batch = tuple[list[torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor]
"""``(rows per scale, celltype, assay, value)`` of a batch of positions."""


class _Epochs:
    """Batches of one epoch: every position once, in random order, one random track each.

    Tracks are drawn among ``columns`` (indices into ``data.values``), avoiding the track
    a position hides for validation.
    """

    def __init__(self, data: PositionData, layout: Layout, *, batch_size: int,
                 generator: torch.Generator, device: torch.device,
                 columns: Sequence[int] | None = None) -> None:
        self.data = data
        self.batch_size = batch_size
        self.generator = generator
        self.device = device
        tracks = torch.tensor(layout.tracks, dtype=torch.long).reshape(-1, 2)
        self.track_celltype, self.track_assay = tracks[:, 0], tracks[:, 1]
        self.flat_values = data.values.reshape(-1)
        all_columns = range(data.n_tracks)
        self.columns = torch.tensor(list(all_columns if columns is None else columns),
                                    dtype=torch.long)
        self.any_hidden = bool((data.hidden >= 0).any())
        self.epoch = -1
        if self.any_hidden and len(self.columns) != data.n_tracks:
            raise ValueError("hidden validation entries need every track as a column")

    def batch(self, positions: torch.Tensor, tracks: torch.Tensor) -> Batch:
        value = self.flat_values[positions * self.data.n_tracks + tracks]
        rows = [r.to(self.device) for r in self.data.scale_rows(positions)]
        return (rows, self.track_celltype[tracks].to(self.device),
                self.track_assay[tracks].to(self.device), value.to(self.device))

    def __call__(self, epoch: int) -> Iterator[tuple[Batch, int]]:
        self.epoch = epoch
        n = len(self.data)
        order = torch.randperm(n, generator=self.generator)
        n_columns = len(self.columns)
        for lo in range(0, n, self.batch_size):
            # Sorted positions give sorted factor rows, which makes the sparse gradients
            # cheap to build (see GenomeFactors); the order within a batch is irrelevant.
            positions = order[lo:lo + self.batch_size].sort().values
            uniform = torch.rand(len(positions), generator=self.generator)
            if self.any_hidden:
                hidden = self.data.hidden[positions].long()
                has_hidden = hidden >= 0
                choices = n_columns - has_hidden.long()
                draw = torch.minimum((uniform * choices).long(), choices - 1)
                tracks = draw + (has_hidden & (draw >= hidden)).long()
            else:
                draw = torch.clamp((uniform * n_columns).long(), max=n_columns - 1)
                tracks = self.columns[draw]
            yield self.batch(positions, tracks), len(positions)


def _squared_error(model: _Trainable, batch: Batch) -> torch.Tensor:
    """``(N,)`` squared error of the model's prediction (the mean of its members)."""
    rows, celltype, assay, value = batch
    predicted = model.network(model.genome(rows), celltype, assay)
    return (predicted.float() - value) ** 2


def _member_loss(model: _Trainable, batch: Batch) -> torch.Tensor:
    """Training loss: the mean over members of each member's own mean squared error, so
    every member gets the gradient of its own error (members share no parameter)."""
    rows, celltype, assay, value = batch
    predicted = model.network.member_outputs(model.genome(rows), celltype, assay)
    return ((predicted.float() - value) ** 2).mean()


def _mean_error(model: _Trainable, batches: Sequence[Batch]) -> Callable[[], float]:
    """Mean squared error over fixed batches (validation)."""
    count = sum(len(batch[3]) for batch in batches)

    def validate() -> float:
        total = sum(float(_squared_error(model, batch).sum()) for batch in batches)
        return total / max(count, 1)

    return validate


def _hidden_entry_batches(epochs: _Epochs, *, batch_size: int) -> list[Batch]:
    """The entries hidden in blocks, as batches."""
    positions = torch.nonzero(epochs.data.hidden >= 0).squeeze(1)
    tracks = epochs.data.hidden[positions].long()
    return [epochs.batch(positions[lo:lo + batch_size], tracks[lo:lo + batch_size])
            for lo in range(0, len(positions), batch_size)]


def _track_batches(epochs: _Epochs, tracks: Sequence[int], *, max_bins: int,
                   batch_size: int) -> list[Batch]:
    """Held-out ``tracks`` at up to ``max_bins`` evenly spaced positions, as batches."""
    n = len(epochs.data)
    positions = torch.arange(0, n, max(1, n // max(max_bins, 1)))
    batches = []
    for track in tracks:
        for lo in range(0, len(positions), batch_size):
            chunk = positions[lo:lo + batch_size]
            batches.append(epochs.batch(chunk, torch.full_like(chunk, track)))
    return batches


def _keep_last(epochs: _Epochs) -> Callable[[], float]:
    """A 'validation' that improves every epoch, so :func:`fit` keeps the last one."""
    return lambda: -float(epochs.epoch + 1)


class _PlateauDecay:
    """Wraps a validation: multiplies the step sizes by ``factor`` once the error has not
    improved for ``patience`` epochs in a row, and records the epochs where it did."""

    def __init__(self, validate: Callable[[], float], optimizer: torch.optim.Optimizer,
                 epochs: _Epochs, *, factor: float, patience: int) -> None:
        self.validate = validate
        self.optimizer = optimizer
        self.epochs = epochs
        self.factor = factor
        self.patience = patience
        self.best = math.inf
        self.waited = 0
        self.decayed_after: list[int] = []

    def __call__(self) -> float:
        value = self.validate()
        if value < self.best:
            self.best, self.waited = value, 0
        else:
            self.waited += 1
            if self.waited >= self.patience and self.factor != 1.0:
                _scale_step_sizes(self.optimizer, self.factor)
                self.decayed_after.append(self.epochs.epoch)
                self.waited = 0
        return value


def _scale_step_sizes(optimizer: torch.optim.Optimizer, factor: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] *= factor


def _replay_decay(epochs: _Epochs, optimizer: torch.optim.Optimizer, *,
                  decayed_after: Sequence[int], factor: float) -> Callable[[], float]:
    """A 'validation' for a refit: keeps the last epoch (see :func:`_keep_last`) and
    repeats the step-size decays of the run that chose the number of epochs."""
    keep_last = _keep_last(epochs)

    def run() -> float:
        for _ in range(list(decayed_after).count(epochs.epoch)):
            _scale_step_sizes(optimizer, factor)
        return keep_last()

    return run


def _fit_loop(
    model: _Trainable,
    optimizer: torch.optim.Optimizer,
    epochs: _Epochs,
    validate: Callable[[], float],
    *,
    max_epochs: int,
    patience: int,
    settings: RunSettings,
    checkpoint: Path | None,
    description: str,
) -> History:
    spec = LoopSpec(
        batches=epochs,
        loss=lambda batch: _member_loss(model, batch),
        validate=validate,
        random_state=(epochs.generator.get_state, epochs.generator.set_state),
    )
    return fit(model, optimizer, spec, max_epochs=max_epochs, patience=patience,
               settings=settings, checkpoint=checkpoint, amp=False, description=description)


# -- region sets --------------------------------------------------------------------------


def stage1_blocks(store: Store, training: AvocadoTrainingConfig, *, align: int,
                  rng: np.random.Generator) -> list[Block]:
    """The stage-1 region set as ``(contig, start_bin, end_bin)`` blocks in genome order.

    A BED file's regions are widened to whole multiples of ``align`` bins (the coarsest
    scale) and merged; otherwise the whole store, or random ``stage1_block_bins`` blocks
    adding up to ``stage1_max_bins``.
    """
    contig_bins = {c: store.n_bins(c) for c in store.contigs}
    if training.stage1_bed is not None:
        return _bed_blocks(Path(training.stage1_bed), contig_bins, bin_size=store.bin_size,
                           align=align)
    if sum(contig_bins.values()) <= training.stage1_max_bins:
        return [(c, 0, n) for c, n in contig_bins.items() if n > 0]
    size = max(align, training.stage1_block_bins // align * align)
    blocks = genome_blocks(contig_bins, block_bins=size)
    chosen, total = [], 0
    for i in rng.permutation(len(blocks)):
        if total >= training.stage1_max_bins:
            break
        chosen.append(int(i))
        total += blocks[i][2] - blocks[i][1]
    return [blocks[i] for i in sorted(chosen)]


def _bed_blocks(path: Path, contig_bins: dict[str, int], *, bin_size: int, align: int
                ) -> list[Block]:
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise InputError(f"{path}: stage-1 BED file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot read the stage-1 BED file ({error})") from None
    spans: dict[str, list[tuple[int, int]]] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.startswith(("#", "track", "browser")):
            continue
        fields = re.split(r"\s+", line.strip())
        try:
            contig, start, end = fields[0], int(fields[1]), int(fields[2])
        except (IndexError, ValueError):
            raise InputError(f"{path}: line {number} is not 'contig start end'") from None
        if start < 0 or end < start:
            raise InputError(f"{path}: line {number} has a negative start or end before start")
        if contig not in contig_bins:
            raise InputError(f"{path}: line {number} names contig '{contig}', which the store "
                             f"does not have")
        end_bin = -(-end // bin_size)  # first bin past the region
        first = start // bin_size // align * align
        last = min(contig_bins[contig], -(-end_bin // align) * align)
        if last > first:
            spans.setdefault(contig, []).append((first, last))
    blocks: list[Block] = []
    for contig in contig_bins:
        merged: list[list[int]] = []
        for first, last in sorted(spans.get(contig, [])):
            if merged and first <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], last)
            else:
                merged.append([first, last])
        blocks += [(contig, a, b) for a, b in merged]
    if not blocks:
        raise InputError(f"{path}: no regions on the store's contigs")
    return blocks


# -- the two stages -----------------------------------------------------------------------


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
    the parameters of ``_Trainable`` (names ``network.*`` and ``genome.*``; see
    :mod:`epimpute.training.freeze`).

    With validation tracks, a first run without them chooses the number of epochs (the
    one with the lowest error on them, within ``patience``); with ``refit`` a second run
    from the same initial weights trains on every track for that many epochs. A time
    budget is split evenly between the two runs.

    Returns
    -------
    tuple
        The network, the genome factors of the blocks (rows numbered as in
        :func:`load_positions`), the positions and the history.
    """
    rng = np.random.default_rng([settings.seed, 2])
    n_held = training.validation_tracks
    held_out = choose_validation_tracks(layout, n_held, rng)
    if n_held and not held_out:
        log.warning("no track can be held out for validation without leaving a cell type or "
                    "assay with fewer than two tracks; validating on hidden blocks instead")
    data = load_positions(store, rows, blocks, scales=config.scales,
                          hide_fraction=0.0 if held_out else training.validation_fraction,
                          hide_block_bins=training.validation_block_bins, rng=rng)
    device = resolve_device(settings.device)
    refit = bool(held_out) and training.refit
    started = time.monotonic()
    first_settings = settings
    if refit and settings.max_minutes is not None:
        first_settings = dataclasses.replace(settings, max_minutes=settings.max_minutes / 2)

    releases: list[Callable[[], None]] = []  # of restrict_training, run when done

    def build() -> tuple[Avocado, GenomeFactors, _Trainable, LazyAdam]:
        torch.manual_seed(settings.seed)
        network = Avocado(layout, config) if start is None else copy.deepcopy(start)
        if start_genome is None:
            genome = GenomeFactors(data.table_rows(), config, sparse=True)
        else:
            genome = start_genome(data)
        model = _Trainable(network, genome).to(device)
        if trainable is not None:
            optimizer, release = restrict_training(
                model, trainable,
                lambda parameters: LazyAdam(parameters, lr=training.learning_rate,
                                            weight_decay=training.weight_decay))
            releases.append(release)
            return network, genome, model, optimizer
        optimizer = LazyAdam([
            {"params": network.parameters(), "weight_decay": training.weight_decay},
            {"params": genome.parameters(), "l2": training.genome_l2,
             "lr": training.genome_learning_rate},
        ], lr=training.learning_rate)
        return network, genome, model, optimizer

    with torch.random.fork_rng(devices=[]):
        network, genome, model, optimizer = build()
        generator = torch.Generator().manual_seed(settings.seed + 1)
        kept = [t for t in range(len(rows)) if t not in held_out]
        epochs = _Epochs(data, layout, batch_size=training.batch_size, generator=generator,
                         device=device, columns=kept)
        size = max(training.batch_size, 50_000)
        if held_out:
            names = ", ".join(layout.keys[t] for t in held_out)
            log.info("avocado stage 1: choosing the number of epochs on held-out %s", names)
            batches = _track_batches(epochs, held_out, max_bins=training.validation_max_bins,
                                     batch_size=size)
        else:
            batches = _hidden_entry_batches(epochs, batch_size=size)
        validate = _PlateauDecay(_mean_error(model, batches), optimizer, epochs,
                                 factor=training.lr_decay,
                                 patience=training.lr_decay_patience)
        history = _fit_loop(model, optimizer, epochs, validate,
                            max_epochs=training.max_epochs, patience=training.patience,
                            settings=first_settings, checkpoint=checkpoint,
                            description="avocado stage 1")
        for entry in history.epochs:
            entry.update(stage=1, phase="choose" if held_out else "train")
        remaining = None
        if settings.max_minutes is not None:
            remaining = settings.max_minutes - (time.monotonic() - started) / 60
            if refit and remaining <= 0:
                log.warning("time budget spent: keeping the model trained without the "
                            "validation tracks")
                refit = False
        if refit and history.best_epoch > 0:
            n_epochs = history.best_epoch
            network, genome, model, optimizer = build()
            generator = torch.Generator().manual_seed(settings.seed + 1)
            epochs = _Epochs(data, layout, batch_size=training.batch_size,
                             generator=generator, device=device)
            replay = _replay_decay(epochs, optimizer, decayed_after=validate.decayed_after,
                                   factor=training.lr_decay)
            refit_history = _fit_loop(
                model, optimizer, epochs, replay, max_epochs=n_epochs,
                patience=n_epochs + 1,
                settings=dataclasses.replace(settings, max_minutes=remaining),
                checkpoint=None if checkpoint is None else checkpoint.with_name(
                    f"{checkpoint.stem}-refit{checkpoint.suffix}"),
                description="avocado stage 1 refit")
            history.epochs += [dict(e, stage=1, phase="refit", validation=None)
                               for e in refit_history.epochs]
            history.bins_seen += refit_history.bins_seen
            history.stopped_because += (f"; refit on every track for "
                                        f"{len(refit_history.epochs)} of {n_epochs} epochs")
        history.seconds = time.monotonic() - started
    for release in releases:
        release()
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
    network.requires_grad_(False)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            genome = GenomeFactors.for_contig(n_bins, network.config, sparse=True).to(device)
            model = _Trainable(network, genome)
            optimizer = LazyAdam(genome.parameters(), lr=training.genome_learning_rate,
                                 l2=training.genome_l2)
            generator = torch.Generator().manual_seed(seed + 1)
            epochs = _Epochs(data, network.layout, batch_size=training.batch_size,
                             generator=generator, device=device)
            batches = _hidden_entry_batches(epochs, batch_size=max(training.batch_size, 50_000))
            if batches:
                validate = _PlateauDecay(_mean_error(model, batches), optimizer, epochs,
                                         factor=training.lr_decay,
                                         patience=training.lr_decay_patience)
            else:
                validate = _keep_last(epochs)
            history = _fit_loop(model, optimizer, epochs, validate,
                                max_epochs=training.stage2_max_epochs,
                                patience=training.stage2_patience, settings=settings,
                                checkpoint=checkpoint, description=f"avocado stage 2 {contig}")
    finally:
        for p, flag in zip(network.parameters(), flags):
            p.requires_grad_(flag)
    return genome, history


def _whole_contig_factors(genome: GenomeFactors, data: PositionData, blocks: Sequence[Block],
                          store: Store, config: AvocadoConfig) -> dict[str, GenomeFactors]:
    """Factors of the contigs that the stage-1 blocks cover whole, cut out of ``genome``."""
    out: dict[str, GenomeFactors] = {}
    at = 0
    for contig, start, end in blocks:
        n = end - start
        n_bins = store.n_bins(contig)
        if start == 0 and end == n_bins:
            part = GenomeFactors.for_contig(n_bins, config, initialise=False)
            with torch.no_grad():
                for k, table in enumerate(part.tables):
                    first = int(data.scale_rows(torch.tensor([at]))[k])
                    table.weight.copy_(genome.tables[k].weight[first:first + table.num_embeddings])
            out[contig] = part
        at += n
    return out


def _contig_file(folder: Path, contig: str, suffix: str = ".pt") -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", lambda m: f"%{ord(m.group()):02X}", contig)
    return folder / f"{safe.lstrip('.') or '_'}{suffix}"


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
    factors = _whole_contig_factors(genome.cpu(), data, blocks, store, config)
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
