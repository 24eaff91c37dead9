"""The average-activity baseline: a track is the mean of its assay in the other biosamples."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from epimpute.errors import InputError
from epimpute.models.base import Imputer
from epimpute.models.layout import Layout


@dataclass
class AverageConfig:
    """The baseline has no hyperparameters."""


class AverageImputer(Imputer):
    """Per-assay mean over the biosamples that have the assay among the available inputs."""

    name = "average"

    def __init__(self, layout: Layout, config: AverageConfig | None = None) -> None:
        super().__init__(layout)
        self.config = config or AverageConfig()

    def impute_region(
        self,
        signal: np.ndarray,
        available: np.ndarray,
        targets: Sequence[tuple[int, int]],
        *,
        contig: str,
        start: int,
    ) -> np.ndarray:
        track_assay = np.array([a for _, a in self.layout.tracks], dtype=int)
        track_biosample = np.array([b for b, _ in self.layout.tracks], dtype=int)
        out = np.empty((len(targets), signal.shape[1]), dtype=np.float32)
        means: dict[bytes, np.ndarray] = {}  # targets averaging the same rows share one mean
        for i, (biosample, assay) in enumerate(targets):
            rows = np.flatnonzero(available & (track_assay == assay) & (track_biosample != biosample))
            if rows.size == 0:
                raise InputError(
                    f"cannot average {self.layout.key(biosample, assay)}: no other cell type "
                    f"has assay '{self.layout.assays[assay]}' among the inputs"
                )
            key = rows.tobytes()
            if key not in means:
                means[key] = signal[rows].mean(axis=0)
            out[i] = means[key]
        return out

    def config_dict(self) -> dict[str, Any]:
        return asdict(self.config)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {}

    @classmethod
    def from_state(
        cls, layout: Layout, config: dict[str, Any], state: dict[str, torch.Tensor]
    ) -> AverageImputer:
        return cls(layout, AverageConfig(**config))
