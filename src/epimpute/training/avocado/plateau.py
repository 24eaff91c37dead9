"""Step-size decay when the validation error stops improving (Avocado's training runs)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from epimpute.training.avocado.batches import Epochs, keep_last

__all__ = ["PlateauDecay", "replay_decay", "scale_step_sizes"]


class PlateauDecay:
    """Wraps a validation: multiplies the step sizes by ``factor`` once the error has not
    improved for ``patience`` epochs in a row, and records the epochs where it did."""

    def __init__(self, validate: Callable[[], float], optimizer: torch.optim.Optimizer,
                 epochs: Epochs, *, factor: float, patience: int) -> None:
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
                scale_step_sizes(self.optimizer, self.factor)
                self.decayed_after.append(self.epochs.epoch)
                self.waited = 0
        return value


def scale_step_sizes(optimizer: torch.optim.Optimizer, factor: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] *= factor


def replay_decay(epochs: Epochs, optimizer: torch.optim.Optimizer, *,
                 decayed_after: Sequence[int], factor: float) -> Callable[[], float]:
    """A 'validation' for a refit: keeps the last epoch (see :func:`keep_last`) and
    repeats the step-size decays of the run that chose the number of epochs."""
    last = keep_last(epochs)

    def run() -> float:
        for _ in range(list(decayed_after).count(epochs.epoch)):
            scale_step_sizes(optimizer, factor)
        return last()

    return run

