"""The models epimpute knows: name -> configuration classes, trainer and imputer.

Trainers (and their training configurations and extenders) are imported only when asked
for, so loading a saved model to impute with imports no training code.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from epimpute.config_values import check_values
from epimpute.errors import InputError
from epimpute.models.average import AverageConfig, AverageImputer
from epimpute.models.avocado import AvocadoConfig, AvocadoImputer
from epimpute.models.base import Imputer
from epimpute.models.edice import EdiceConfig
from epimpute.models.edice_imputer import EdiceImputer
from epimpute.models.seqcell import SeqcellConfig, SeqcellImputer


def _resolve(where: str) -> Any:
    """The object named ``"package.module:name"``, imported now."""
    module, _, name = where.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to train, save and load one kind of model.

    The training side is named as ``"module:name"`` and imported on first use (see the
    properties :attr:`train`, :attr:`training_config` and :attr:`extend`).
    """

    name: str
    model_config: type
    imputer: type[Imputer]
    trainer: str
    """``"module:function"`` of the training function."""
    training_config_class: str
    """``"module:class"`` of the training configuration dataclass."""
    extender: str | None = None
    """``"module:function"`` that adds a store's new biosamples / assays to a trained model
    (:mod:`epimpute.training.extend`)."""
    needs_genome: bool = False
    """Whether training and imputation read DNA sequence (``--genome``)."""

    @property
    def train(self) -> Callable[..., Any]:
        """The training function (imported now)."""
        return _resolve(self.trainer)

    @property
    def training_config(self) -> type:
        """The training configuration dataclass (imported now)."""
        return _resolve(self.training_config_class)

    @property
    def extend(self) -> Callable[..., Any] | None:
        """The extension function, if the model can be extended (imported now)."""
        return None if self.extender is None else _resolve(self.extender)


MODELS: dict[str, ModelSpec] = {
    "average": ModelSpec("average", AverageConfig, AverageImputer,
                         "epimpute.training.average:train_average",
                         "epimpute.training.average:AverageTrainingConfig",
                         "epimpute.training.extend:extend_average"),
    "edice": ModelSpec("edice", EdiceConfig, EdiceImputer,
                       "epimpute.training.edice:train_edice",
                       "epimpute.training.edice:EdiceTrainingConfig",
                       "epimpute.training.extend:extend_edice"),
    "avocado": ModelSpec("avocado", AvocadoConfig, AvocadoImputer,
                         "epimpute.training.avocado:train_avocado",
                         "epimpute.training.avocado:AvocadoTrainingConfig",
                         "epimpute.training.extend:extend_avocado"),
    "seqcell": ModelSpec("seqcell", SeqcellConfig, SeqcellImputer,
                         "epimpute.training.seqcell:train_seqcell",
                         "epimpute.training.seqcell:SeqcellTrainingConfig",
                         needs_genome=True),
}


def model_spec(name: str) -> ModelSpec:
    """Look a model up by name; InputError listing the known names otherwise."""
    try:
        return MODELS[name]
    except KeyError:
        raise InputError(f"unknown model '{name}' (known: {', '.join(MODELS)})") from None


def build_config(cls: type, values: dict[str, Any], *, where: str) -> Any:
    """Instantiate dataclass ``cls`` from ``values``, rejecting unknown keys and values of
    the wrong type or outside their range (:mod:`epimpute.config_values`)."""
    if not isinstance(values, dict):
        raise InputError(f"{where}: expected a JSON object of settings, got {values!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise InputError(f"{where}: unknown key(s) {', '.join(unknown)}; "
                         f"allowed: {', '.join(sorted(names))}")
    values = check_values(cls, values, where=where)
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        raise InputError(f"{where}: {error}") from None
