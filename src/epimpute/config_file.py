"""Model and training configuration files: JSON objects of configuration dataclass fields."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from epimpute.errors import InputError
from epimpute.registry import build_config, model_spec

__all__ = ["read_config_file", "read_training_overrides"]


def read_config_file(path: Path | None, model: str) -> tuple[Any, Any]:
    """Model and training configuration from a JSON file (defaults when ``path`` is None).

    Parameters
    ----------
    path
        JSON file with up to two objects, ``{"model": {...}, "training": {...}}``, whose
        keys are fields of the model's configuration dataclasses; None gives the defaults.
    model
        Registered model name (``average``, ``edice``, ``avocado``).

    Returns
    -------
    tuple
        ``(model_config, training_config)``, the model's configuration dataclasses.

    Raises
    ------
    InputError
        If the file is missing or not JSON, or has an unknown section, key or value.
    """
    spec = model_spec(model)
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        values = _read_json(path)
        if not isinstance(values, dict):
            raise InputError(f"{path}: expected a JSON object with 'model' and/or 'training'")
        unknown = sorted(set(values) - {"model", "training"})
        if unknown:
            raise InputError(f"{path}: unknown section(s) {', '.join(unknown)}; "
                             "allowed: model, training")
    where = str(path) if path else "defaults"
    return (build_config(spec.model_config, values.get("model", {}), where=f"{where} [model]"),
            build_config(spec.training_config, values.get("training", {}),
                         where=f"{where} [training]"))


def _read_json(path: Path) -> Any:
    """The JSON value in a configuration file; InputError when missing or malformed."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: config file not found") from None
    except json.JSONDecodeError as error:
        raise InputError(f"{path}: not valid JSON ({error})") from None


def read_training_overrides(path: Path | None) -> dict[str, Any]:
    """The ``training`` section of an extension's configuration file."""
    if path is None:
        return {}
    path = Path(path)
    values = _read_json(path)
    if not isinstance(values, dict) or set(values) - {"training"}:
        raise InputError(f"{path}: an extension takes only a 'training' section (the model's "
                         "architecture is the base model's)")
    return dict(values.get("training", {}))
