"""A model-agnostic training loop: epochs, validation, early stopping, budget, resume.

Every model's trainer hands this loop three callables (the batches of an epoch, the loss
of a batch, the validation score) and gets back the best weights by validation.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from epimpute.errors import InputError
from epimpute.hardware import autocast
from epimpute.heap import TRIM_EVERY_STEPS, release_free_heap
from epimpute.training.checkpoint import load_checkpoint, save_checkpoint
from epimpute.training.distributed import World

log = logging.getLogger(__name__)


@dataclass
class RunSettings:
    """How a training run is carried out (not what is learnt).

    Attributes
    ----------
    seed
        Seeds every random choice (sampling, masking, initialisation, dropout).
    device
        ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    max_minutes
        Wall-clock budget of this invocation; training stops at the first batch past it,
        validates, checkpoints and keeps the best weights.
    progress
        Show progress bars.
    resume
        Continue from the checkpoint in the output folder when one is there.
    precision
        ``"auto"`` (bf16 autocast where the hardware computes in bf16, see
        :func:`epimpute.hardware.uses_bf16`), ``"fp32"`` or ``"bf16"``. Models whose
        trainer does not support bf16 train in fp32 whatever this says.
    world
        The training processes this one belongs to (see
        :mod:`epimpute.training.distributed`); ``None`` for a single process.
    """

    seed: int = 0
    device: str = "auto"
    max_minutes: float | None = None
    progress: bool = False
    resume: bool = False
    precision: str = "auto"
    world: World | None = None


@dataclass
class History:
    """What happened in a run: one entry per finished epoch."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    best_validation: float = math.inf
    stopped_because: str = ""
    seconds: float = 0.0
    bins_seen: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "epochs": self.epochs,
            "best_epoch": self.best_epoch,
            "best_validation": self.best_validation,
            "stopped_because": self.stopped_because,
            "seconds": self.seconds,
            "bins_seen": self.bins_seen,
        }


class Budget:
    """A wall-clock budget in minutes (``None``: unlimited)."""

    def __init__(self, minutes: float | None) -> None:
        self.start = time.monotonic()
        self.seconds = None if minutes is None else 60.0 * minutes

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def expired(self) -> bool:
        return self.seconds is not None and self.elapsed >= self.seconds


@dataclass
class LoopSpec:
    """What a trainer hands to :func:`fit`.

    Attributes
    ----------
    batches
        ``epoch -> iterable`` of ``(batch, n_bins)`` pairs for one epoch; it must draw its
        randomness from generators listed in ``random_state`` so resuming is exact.
    loss
        ``batch -> scalar loss tensor`` (the forward pass, in training mode).
    validate
        ``() -> float``, lower is better (called in eval mode, no gradients).
    random_state
        ``(get, set)`` of the trainer's own random generators' state, saved in checkpoints.
    """

    batches: Callable[[int], Iterable[tuple[Any, int]]]
    loss: Callable[[Any], torch.Tensor]
    validate: Callable[[], float]
    random_state: tuple[Callable[[], Any], Callable[[Any], None]] | None = None


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    spec: LoopSpec,
    *,
    max_epochs: int,
    patience: int,
    settings: RunSettings,
    checkpoint: Path | None = None,
    amp: bool = False,
    ema_decay: float | None = None,
    description: str = "training",
    keep_last: bool = False,
) -> History:
    """Train until ``patience`` epochs without improvement, ``max_epochs`` or the budget.

    On return ``model`` holds the weights of the best validation epoch (``keep_last``: of
    the last epoch, for when the validation loss is a poor guide). With ``ema_decay``
    the weights validated and kept are an exponential moving average of the trained ones
    (updated after every step), which smooths out step-to-step noise. A checkpoint is
    written after every epoch (model, optimiser, average, history, random state) and read
    back when ``settings.resume`` is set, so an interrupted run continues where it stopped.
    ``amp`` runs forward passes under bf16 autocast.

    With ``settings.world`` (several processes) every process runs this loop on its own
    batches: they stop together (budget) and agree on validation (computed from the same
    weights and data), rank 0 alone writes the checkpoint, which holds every process's
    random state, and every process resumes from it.
    """
    world = settings.world
    history = History()
    best_state = copy.deepcopy(model.state_dict())
    average = ({name: p.detach().clone() for name, p in model.named_parameters()}
               if ema_decay is not None else None)
    start_epoch = 0
    if settings.resume and checkpoint is not None and checkpoint.exists():
        state = load_checkpoint(checkpoint)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if average is not None:
            average = state["average"]
        best_state = state["best_model"]
        history = History(**state["history"])
        start_epoch = len(history.epochs)
        torch_rng, trainer_rng = state["torch_rng"], state["trainer_rng"]
        ranks = state.get("ranks")
        if (world.world_size if world else 1) != (len(ranks) if ranks else 1):
            raise InputError(f"{checkpoint} was written by {len(ranks) if ranks else 1} "
                             f"training process(es); resume it with as many")
        if world is not None:
            torch_rng, trainer_rng = ranks[world.rank]
        torch.set_rng_state(torch_rng)
        if spec.random_state is not None:
            spec.random_state[1](trainer_rng)
        log.info("resumed from %s after %d epochs", checkpoint, start_epoch)
        if history.stopped_because in ("early stopping", "max epochs"):
            if not keep_last:
                model.load_state_dict(best_state)
            return history

    budget = Budget(settings.max_minutes)
    reduced = autocast(next(model.parameters()).device, enabled=amp)
    previous_seconds = history.seconds
    stopped = ""
    for epoch in range(start_epoch, max_epochs):
        model.train()
        running, batches_done, bins = 0.0, 0, 0
        bar = tqdm(desc=f"{description} epoch {epoch + 1}", unit="bin", unit_scale=True,
                   disable=not settings.progress or not (world is None or world.is_main),
                   leave=False)
        for batch, n_bins in spec.batches(epoch):
            with reduced:
                loss = spec.loss(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if average is not None:
                _update_average(average, model, ema_decay)
            running += float(loss.detach())
            batches_done += 1
            if batches_done % TRIM_EVERY_STEPS == 0:
                release_free_heap()
            bins += n_bins * (world.world_size if world else 1)
            bar.update(n_bins)
            if batches_done % 20 == 0:
                bar.set_postfix(loss=f"{running / batches_done:.4f}")
            expired = budget.expired()
            if world is not None:
                expired = world.any(expired)
            if expired:
                stopped = "time budget"
                break
        bar.close()
        model.eval()
        trained = _swap_in(model, average) if average is not None else None
        with torch.no_grad(), reduced:
            validation = float(spec.validate())
        history.bins_seen += bins
        history.seconds = previous_seconds + budget.elapsed
        history.epochs.append({
            "epoch": epoch + 1,
            "train_loss": running / max(batches_done, 1),
            "validation": validation,
            "seconds": history.seconds,
            "bins": bins,
        })
        if validation < history.best_validation:
            history.best_validation = validation
            history.best_epoch = epoch + 1
            best_state = copy.deepcopy(model.state_dict())
        if trained is not None:
            model.load_state_dict(trained)
        log.info("%s epoch %d: train loss %.4f, validation %.4f (best %.4f at epoch %d)",
                 description, epoch + 1, history.epochs[-1]["train_loss"], validation,
                 history.best_validation, history.best_epoch)
        if not stopped and epoch + 1 - history.best_epoch >= patience:
            stopped = "early stopping"
        if not stopped and epoch + 1 == max_epochs:
            stopped = "max epochs"
        history.stopped_because = stopped
        ranks = None
        if world is not None and checkpoint is not None:
            ranks = world.gather((torch.get_rng_state(),
                                  spec.random_state[0]() if spec.random_state else None))
        if checkpoint is not None and (world is None or world.is_main):
            save_checkpoint(checkpoint, {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "best_model": best_state,
                "average": average,
                "history": history.to_dict(),
                "torch_rng": torch.get_rng_state(),
                "trainer_rng": spec.random_state[0]() if spec.random_state else None,
                "ranks": ranks,
            })
        if stopped:
            break
    if not keep_last:
        model.load_state_dict(best_state)
    return history


def _update_average(average: dict[str, torch.Tensor], model: nn.Module, decay: float) -> None:
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            average[name].lerp_(parameter.detach(), 1.0 - decay)


def _swap_in(model: nn.Module, average: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Load the averaged parameters; return a copy of the trained state to restore."""
    trained = copy.deepcopy(model.state_dict())
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            parameter.copy_(average[name])
    return trained
