"""Checkpoints: torch state written atomically, read back without unpickling objects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from epimpute.errors import InputError
from epimpute.io.atomic import atomic_file


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` (tensors, numbers, strings, lists, dicts) to ``path`` atomically."""
    with atomic_file(Path(path)) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only``: no code runs).

    Raises
    ------
    InputError
        If the file is missing, truncated or not a checkpoint.
    """
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(f"{path}: checkpoint not found") from None
    except Exception as error:  # noqa: BLE001 - a truncated or foreign file
        raise InputError(f"{path}: cannot be read as a checkpoint ({error}); remove it to "
                         "start afresh") from None
