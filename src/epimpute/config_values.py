"""Check configuration values read from JSON against the dataclass field types and ranges.

Types come from the configuration dataclasses' annotations (``int``, ``float``, ``bool``,
``str``, ``tuple[int, ...]``, each optionally ``| None``); JSON lists are accepted for
tuples. Ranges are listed here by field name, for every model's configuration.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any

from epimpute.errors import InputError

__all__ = ["RANGES", "check_values"]

_POSITIVE = (1, None, "at least 1")
_COUNT = (0, None, "at least 0")
_PROBABILITY = (0.0, 1.0, "between 0 and 1")
_OPEN_PROBABILITY = (0.0, 1.0, "at least 0 and below 1")

# field -> (lowest, highest, description); ints and the items of tuples are checked alike
RANGES: dict[str, tuple[float | None, float | None, str]] = {
    **dict.fromkeys(("batch_size", "max_epochs", "max_train_bins", "epoch_bins",
                     "validation_max_bins", "block_bins", "validation_block_bins",
                     "d_model", "n_heads", "n_layers", "feedforward", "decoder_hidden",
                     "windows", "celltype_factors", "assay_factors", "genome_factors",
                     "scales", "hidden", "members"), _POSITIVE),
    **dict.fromkeys(("patience", "lr_decay_patience", "validation_tracks"), _COUNT),
    **dict.fromkeys(("mask_biosample_probability",), _PROBABILITY),
    **dict.fromkeys(("dropout", "attention_dropout", "identity_dropout", "celltype_dropout",
                     "validation_fraction", "ema_decay"), _OPEN_PROBABILITY),
    "learning_rate": (0.0, None, "above 0"),
    "genome_learning_rate": (0.0, None, "above 0"),
    "weight_decay": (0.0, None, "at least 0"),
    "max_masked_fraction": (0.0, 1.0, "above 0 and at most 1"),
    "lr_decay": (0.0, 1.0, "above 0 and at most 1"),
}
_EXCLUSIVE_LOW = {"learning_rate", "genome_learning_rate", "max_masked_fraction", "lr_decay"}
_EXCLUSIVE_HIGH = {"dropout", "attention_dropout", "identity_dropout", "celltype_dropout",
                   "validation_fraction", "ema_decay"}


def check_values(cls: type, values: dict[str, Any], *, where: str) -> dict[str, Any]:
    """``values`` checked against the fields of dataclass ``cls``; tuples made of lists.

    Raises
    ------
    InputError
        Naming ``where``, the key, the value and the expected type or range.
    """
    hints = typing.get_type_hints(cls)
    checked = {}
    for field in dataclasses.fields(cls):
        if field.name in values:
            checked[field.name] = _check(field.name, hints[field.name], values[field.name],
                                         where=where)
    return checked


def _check(name: str, hint: Any, value: Any, *, where: str) -> Any:
    options = typing.get_args(hint) if _is_union(hint) else (hint,)
    if value is None:
        if type(None) in options:
            return None
        raise InputError(f"{where}: '{name}' must not be null")
    hint = next((o for o in options if o is not type(None)), hint)
    origin = typing.get_origin(hint)
    if origin is tuple or hint is tuple:
        if not isinstance(value, (list, tuple)):
            raise InputError(f"{where}: '{name}' must be a list, got {value!r}")
        item = (typing.get_args(hint) or (Any,))[0]
        return tuple(_scalar(name, item, v, where=where) for v in value)
    if origin is not None or hint is Any:
        return value  # containers such as dicts: the dataclass checks them
    return _scalar(name, hint, value, where=where)


def _scalar(name: str, hint: Any, value: Any, *, where: str) -> Any:
    if hint is bool:
        if not isinstance(value, bool):
            raise InputError(f"{where}: '{name}' must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{where}: '{name}' must be an integer, got {value!r}")
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"{where}: '{name}' must be a number, got {value!r}")
        if not math.isfinite(value):
            raise InputError(f"{where}: '{name}' must be finite, got {value!r}")
        value = float(value)
    elif hint is str:
        if not isinstance(value, str):
            raise InputError(f"{where}: '{name}' must be a string, got {value!r}")
        return value
    else:
        return value
    if name in RANGES:
        low, high, text = RANGES[name]
        below = low is not None and (value <= low if name in _EXCLUSIVE_LOW else value < low)
        above = high is not None and (value >= high if name in _EXCLUSIVE_HIGH else value > high)
        if below or above:
            raise InputError(f"{where}: '{name}' must be {text}, got {value!r}")
    return value


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)
