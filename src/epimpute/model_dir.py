"""A trained model on disk: ``config.json`` (what it is) + ``weights.pt`` (a state_dict).

Loading never unpickles Python objects: weights are read with ``weights_only=True``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import torch

from epimpute import __version__
from epimpute.errors import InputError
from epimpute.models.base import Imputer
from epimpute.models.layout import Layout

FORMAT = "epimpute-model"
FORMAT_VERSION = 2
"""2: eDICE without ``identity_dropout`` / ``attention_dropout`` (its attention blocks' state
keys changed); models of version 1 are refused and must be retrained."""
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.pt"
CHECKPOINT_FILE = "checkpoint.pt"
CONTIG_STATE_FOLDER = "genome"
"""Per-contig state (e.g. Avocado's genome factors): ``genome/<contig>.pt``, one state_dict
each, listed under ``contig_state`` in ``config.json``."""


def _atomic_write(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_model(
    directory: Path,
    imputer: Imputer,
    *,
    training: Any = None,
    provenance: dict[str, Any] | None = None,
) -> Path:
    """Write ``imputer`` to ``directory`` (created if needed); returns the directory.

    ``training`` (a dataclass) and ``provenance`` (seed, store, history, ...) are recorded
    in ``config.json`` for the record; they are not needed to load the model.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    record = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "epimpute_version": __version__,
        "model": imputer.name,
        "config": imputer.config_dict(),
        "layout": imputer.layout.to_dict(),
        "training_config": asdict(training) if is_dataclass(training) else training,
        "provenance": provenance or {},
    }
    _atomic_write(directory / WEIGHTS_FILE, lambda p: torch.save(imputer.state_dict(), p))
    contigs = imputer.state_contigs()
    if contigs:
        folder = directory / CONTIG_STATE_FOLDER
        folder.mkdir(exist_ok=True)
        files = {contig: contig_file_name(contig) for contig in contigs}
        for contig, name in files.items():  # one contig in memory at a time
            state = imputer.contig_state_dict(contig)
            _atomic_write(folder / name, lambda p, state=state: torch.save(state, p))
        record["contig_state"] = {"folder": CONTIG_STATE_FOLDER, "files": files}
    _atomic_write(directory / CONFIG_FILE,
                  lambda p: p.write_text(json.dumps(record, indent=2, default=str) + "\n"))
    return directory


def read_model_record(directory: Path) -> dict[str, Any]:
    """The parsed ``config.json`` of a model directory, checked for format and version."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise InputError(f"{directory} is not an epimpute model directory (no {CONFIG_FILE})")
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise InputError(f"{path}: not valid JSON ({error})") from None
    if record.get("format") != FORMAT:
        raise InputError(f"{path}: not an epimpute model (format {record.get('format')!r})")
    if record.get("format_version") != FORMAT_VERSION:
        raise InputError(f"{path}: model format version {record.get('format_version')} is not "
                         f"supported by epimpute {__version__} (expects {FORMAT_VERSION}); "
                         "retrain it with this version")
    return record


def load_model(directory: Path) -> Imputer:
    """Rebuild the imputer saved in ``directory``."""
    from epimpute.registry import model_spec

    record = read_model_record(directory)
    spec = model_spec(record["model"])
    weights = Path(directory) / WEIGHTS_FILE
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(f"{weights}: missing") from None
    except Exception as error:  # a truncated or foreign file
        raise InputError(f"{weights}: cannot be read as model weights ({error})") from None
    layout = Layout.from_dict(record["layout"])
    imputer = spec.imputer.from_state(layout, record["config"], state)
    contig_state = record.get("contig_state")
    if contig_state:
        folder = Path(directory) / contig_state["folder"]
        files = dict(contig_state["files"])

        def load_contig(contig: str) -> dict[str, torch.Tensor]:
            path = folder / files[contig]
            try:
                return torch.load(path, map_location="cpu", weights_only=True)
            except FileNotFoundError:
                raise InputError(f"{path}: missing (the state of contig '{contig}')") from None
            except Exception as error:  # a truncated or foreign file
                raise InputError(f"{path}: cannot be read as the state of contig '{contig}' "
                                 f"({error})") from None

        imputer.use_contig_loader(list(files), load_contig)
    return imputer


def contig_file_name(contig: str) -> str:
    """A file name for a contig's state: characters other than letters, digits, ``_``, ``-``
    and ``.`` are written as ``%XX`` (``HLA-A*01:01`` -> ``HLA-A%2A01%3A01.pt``)."""
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "_-.") else f"%{ord(c):02X}"
                   for c in contig)
    return f"{'%2E' + safe[1:] if safe.startswith('.') else safe}.pt"
