"""'Training' the average baseline: it only records which tracks are inputs."""

from __future__ import annotations

from dataclasses import dataclass

from epimpute.models.average import AverageConfig, AverageImputer
from epimpute.store import Store
from epimpute.training.data import store_layout
from epimpute.training.loop import History, RunSettings


@dataclass
class AverageTrainingConfig:
    """The baseline learns nothing, so it has no training settings."""


def train_average(
    store: Store,
    *,
    config: AverageConfig,
    training: AverageTrainingConfig,
    settings: RunSettings,
    exclude: tuple[str, ...] | list[str] = (),
    checkpoint: object = None,
) -> tuple[AverageImputer, History]:
    """Build the baseline for ``store`` with ``exclude`` hidden from its inputs."""
    return AverageImputer(store_layout(store, exclude=exclude), config), History()
