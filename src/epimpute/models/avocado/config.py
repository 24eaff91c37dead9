"""Sizes of an Avocado model: presets and :class:`AvocadoConfig`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

__all__ = ["PRESETS", "SMALL_PRESET_BELOW_TRACKS", "AvocadoConfig"]

PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "celltype_factors": 32,
        "assay_factors": 256,
        "genome_factors": (25, 40, 45),
        "hidden": (2048, 2048),
        "celltype_dropout": 0.0,
        "members": 1,
    },
    "small": {
        "celltype_factors": 32,
        "assay_factors": 24,
        "genome_factors": (10, 20, 30),
        "hidden": (128,),
        "celltype_dropout": 0.25,
        "members": 3,
    },
}
"""Sizes of the published model (``paper``) and of the authors' CPU tutorial (``small``);
``small`` adds three ensemble members and cell-type dropout, which small compendia need
(see ``docs/avocado.md``)."""

SMALL_PRESET_BELOW_TRACKS = 100
"""With ``preset="auto"``, compendia with fewer input tracks than this get ``small``."""


@dataclass
class AvocadoConfig:
    """Hyperparameters of :class:`Avocado`.

    Settings left at ``None`` come from the preset. ``preset="auto"`` picks ``"small"`` for
    compendia of fewer than :data:`SMALL_PRESET_BELOW_TRACKS` input tracks and ``"paper"``
    otherwise (see :meth:`resolve`); a saved model always records concrete values.

    Attributes
    ----------
    preset
        ``"auto"``, ``"paper"`` (32 cell-type, 256 assay, 25 / 40 / 45 genome factors,
        2 x 2048 hidden units, one member, no cell-type dropout) or ``"small"`` (32, 24,
        10 / 20 / 30, 1 x 128, three members, cell-type dropout 0.25).
    celltype_factors, assay_factors
        Embedding sizes of cell types (biosamples) and assays, per member.
    genome_factors
        Factors per position at each scale, per member.
    scales
        Bins that share one factor vector at each scale; ``(1, 10, 200)`` is 25 bp, 250 bp
        and 5 kb with 25-bp bins.
    hidden
        Widths of the ReLU hidden layers of the decoder.
    dropout
        Dropout after each hidden layer (training only). The published model has none;
        together with weight decay it is what keeps imputations of (cell type, assay) pairs
        never seen in training close to the data (see ``docs/avocado.md``).
    celltype_dropout
        Probability, per training example, of removing the cell type's contribution to the
        first layer (the rest scaled up to match), so the decoder also learns what an assay
        looks like regardless of cell type.
    members
        Independently initialised models trained side by side (see the module docstring);
        the model predicts their mean. Every table and the decoder are ``members`` times
        as large, and training and imputation cost about ``members`` times as much.
    """

    preset: str = "auto"
    celltype_factors: int | None = None
    assay_factors: int | None = None
    genome_factors: tuple[int, ...] | None = None
    scales: tuple[int, ...] = (1, 10, 200)
    hidden: tuple[int, ...] | None = None
    dropout: float = 0.5
    celltype_dropout: float | None = None
    members: int | None = None

    def __post_init__(self) -> None:
        if self.preset not in ("auto", *PRESETS):
            raise ValueError(f"preset must be auto, {' or '.join(PRESETS)}, got {self.preset!r}")
        self.scales = tuple(int(s) for s in self.scales)
        if self.genome_factors is not None:
            self.genome_factors = tuple(int(n) for n in self.genome_factors)
        if self.hidden is not None:
            self.hidden = tuple(int(h) for h in self.hidden)
        if not self.scales or any(s < 1 for s in self.scales):
            raise ValueError("scales must be positive numbers of bins")
        if self.genome_factors is not None and len(self.genome_factors) != len(self.scales):
            raise ValueError(f"genome_factors has {len(self.genome_factors)} sizes but there "
                             f"are {len(self.scales)} scales")
        if self.celltype_dropout is not None:
            self.celltype_dropout = float(self.celltype_dropout)
        if not 0.0 <= self.dropout < 1.0 or not 0.0 <= (self.celltype_dropout or 0.0) < 1.0:
            raise ValueError("dropout and celltype_dropout must be in [0, 1)")
        if self.members is not None:
            if isinstance(self.members, bool) or int(self.members) != self.members \
                    or self.members < 1:
                raise ValueError(f"members must be a positive whole number, got "
                                 f"{self.members!r}")
            self.members = int(self.members)

    @property
    def is_resolved(self) -> bool:
        """Whether every setting is set (a network can be built)."""
        return None not in (self.celltype_factors, self.assay_factors, self.genome_factors,
                            self.hidden, self.celltype_dropout, self.members)

    def resolve(self, n_tracks: int) -> AvocadoConfig:
        """A copy with the preset chosen and every setting left at ``None`` filled in.

        Parameters
        ----------
        n_tracks
            Number of tracks the model is trained on (chooses the preset under ``"auto"``).
        """
        preset = self.preset
        if preset == "auto":
            preset = "small" if n_tracks < SMALL_PRESET_BELOW_TRACKS else "paper"
        values = {k: v for k, v in PRESETS[preset].items() if getattr(self, k) is None}
        if "genome_factors" in values and len(values["genome_factors"]) != len(self.scales):
            raise ValueError(f"the {preset} preset has {len(values['genome_factors'])} genome "
                             f"scales; give genome_factors for the {len(self.scales)} scales")
        return replace(self, preset=preset, **values)

    @property
    def n_genome_features(self) -> int:
        """``G``: genome features per bin and member, all scales together."""
        return sum(self._resolved().genome_factors)

    @property
    def n_genome_columns(self) -> int:
        """``M * G``: genome features per bin, all members together."""
        return self._resolved().members * self.n_genome_features

    def genome_values_per_bin(self) -> float:
        """Learnt genome-factor values per bin: ``M * sum(factors[k] / scales[k])``."""
        config = self._resolved()
        return config.members * sum(f / s for f, s in zip(config.genome_factors, config.scales))

    def _resolved(self) -> AvocadoConfig:
        if not self.is_resolved:
            raise ValueError("the configuration has unset sizes; call resolve() first")
        return self

