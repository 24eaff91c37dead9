"""Step-size decay when the validation error stops improving (Avocado's training runs).

The generic loop (:func:`epimpute.training.loop.fit`) takes any validation callable, so the
decay wraps the validation instead of living in the loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

__all__ = ["PlateauDecay"]


class PlateauDecay:
    """A validation that also multiplies the step sizes of ``optimizer`` by ``factor``
    each time the error has gone ``patience`` calls in a row without a new minimum.

    Parameters
    ----------
    validate
        Returns the validation error (called once per epoch).
    optimizer
        Its groups' ``lr`` are scaled.
    factor
        Step-size multiplier (``1.0``: no decay).
    patience
        Calls without improvement before a decay; the count restarts after each decay.
    """

    def __init__(self, validate: Callable[[], float], optimizer: torch.optim.Optimizer, *,
                 factor: float, patience: int) -> None:
        self.validate = validate
        self.optimizer = optimizer
        self.factor = factor
        self.patience = patience
        self.best = math.inf
        self.waited = 0

    def __call__(self) -> float:
        value = self.validate()
        if value < self.best:
            self.best, self.waited = value, 0
        else:
            self.waited += 1
            if self.waited >= self.patience and self.factor != 1.0:
                for group in self.optimizer.param_groups:
                    group["lr"] *= self.factor
                self.waited = 0
        return value
