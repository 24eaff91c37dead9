"""The models epimpute knows: name -> configuration classes, trainer and imputer."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

from epimpute.config_values import check_values
from epimpute.errors import InputError
from epimpute.models.average import AverageConfig, AverageImputer
from epimpute.models.avocado import AvocadoConfig, AvocadoImputer
from epimpute.models.base import Imputer
from epimpute.models.edice import EdiceConfig, EdiceImputer
from epimpute.training.average import AverageTrainingConfig, train_average
from epimpute.training.avocado import AvocadoTrainingConfig, train_avocado
from epimpute.training.edice import EdiceTrainingConfig, train_edice
from epimpute.training.extend import extend_average, extend_avocado, extend_edice


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to train, save and load one kind of model."""

    name: str
    model_config: type
    training_config: type
    train: Callable[..., Any]
    imputer: type[Imputer]
    extend: Callable[..., Any] | None = None
    """Adds a store's new biosamples / assays to a trained model
    (:mod:`epimpute.training.extend`)."""


MODELS: dict[str, ModelSpec] = {
    "average": ModelSpec("average", AverageConfig, AverageTrainingConfig, train_average,
                         AverageImputer, extend_average),
    "edice": ModelSpec("edice", EdiceConfig, EdiceTrainingConfig, train_edice, EdiceImputer,
                       extend_edice),
    "avocado": ModelSpec("avocado", AvocadoConfig, AvocadoTrainingConfig, train_avocado,
                         AvocadoImputer, extend_avocado),
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
