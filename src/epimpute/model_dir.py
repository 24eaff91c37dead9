"""A trained model on disk: ``config.json`` (what it is) + ``weights.pt`` (a state_dict).

Loading never unpickles Python objects: weights are read with ``weights_only=True``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import torch

from epimpute import __version__
from epimpute.errors import InputError
from epimpute.io.atomic import atomic_file, check_not_input
from epimpute.models.base import Imputer
from epimpute.models.layout import Layout
from epimpute.provenance import KEY as PROVENANCE_KEY
from epimpute.provenance import provenance as made_by

FORMAT = "epimpute-model"
FORMAT_VERSION = 2
"""2: eDICE without ``identity_dropout`` / ``attention_dropout`` (its attention blocks' state
keys changed); models of version 1 are refused and must be retrained."""
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.pt"
CHECKPOINT_FILE = "checkpoint.pt"
RUN_FILE = "run.json"
"""The settings of a training run, written before it starts (compared on resume)."""
CONTIG_STATE_FOLDER = "genome"
"""Per-contig state (e.g. Avocado's genome factors): ``genome/<contig>.pt``, one state_dict
each, listed under ``contig_state`` in ``config.json``."""


def _atomic_write(path: Path, write: Any) -> None:
    with atomic_file(path) as tmp:
        write(tmp)


def is_model_dir(path: Path) -> bool:
    """Whether ``path`` holds an epimpute model (its ``config.json`` says so)."""
    try:
        return json.loads((Path(path) / CONFIG_FILE).read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


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
        PROVENANCE_KEY: made_by(),
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
    """Rebuild the imputer saved in ``directory``.

    Parameters
    ----------
    directory
        A model folder written by ``epimpute train`` or ``epimpute extend``.

    Returns
    -------
    Imputer
        The model on the CPU, ready to impute; per-contig state (Avocado's genome factors)
        is read when a contig is first used.

    Raises
    ------
    InputError
        If the folder is not an epimpute model or a weights file is missing or unreadable.
    """
    from epimpute.registry import model_spec

    record = read_model_record(directory)
    spec = model_spec(record["model"])
    weights = Path(directory) / WEIGHTS_FILE
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(f"{weights}: missing") from None
    except Exception as error:  # noqa: BLE001 - a truncated or foreign file
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
            except Exception as error:  # noqa: BLE001 - a truncated or foreign file
                raise InputError(f"{path}: cannot be read as the state of contig '{contig}' "
                                 f"({error})") from None

        imputer.use_contig_loader(list(files), load_contig)
    return imputer


def contig_file_name(contig: str, suffix: str = ".pt") -> str:
    """A file name for a contig's state, distinct for distinct contigs on any file system.

    Every byte of the UTF-8 name other than ASCII letters, digits, ``_`` and ``-`` is written
    as ``%XX`` (``HLA-A*01:01`` -> ``HLA-A%2A01%3A01.pt``, ``.x`` -> ``%2Ex.pt``), so the name
    never starts with a dot, holds no separator and decodes back to one contig only.
    """
    if not contig:
        raise ValueError("a contig name cannot be empty")
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "_-")
                   else "".join(f"%{b:02X}" for b in c.encode("utf-8")) for c in contig)
    return f"{safe}{suffix}"


def check_model_folder(out: Path, *, inputs: Sequence[Path], resume: bool) -> None:
    """A model folder to train into: not an input, the working directory or a file."""
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} exists and is not a folder")
    check_not_input(out, kind="model", inputs=inputs)


def forget_run(out: Path, *, created: bool) -> None:
    """Remove ``run.json`` (and ``out`` if this run created it) when nothing else is there."""
    if [p.name for p in out.iterdir()] == [RUN_FILE]:
        (out / RUN_FILE).unlink()
        if created:
            out.rmdir()


def prepare_run(out: Path, run: dict[str, Any], *, resume: bool) -> None:
    """Create ``out`` or check that resuming continues the same run."""
    run_file = out / RUN_FILE
    if resume and run_file.exists():
        previous = json.loads(run_file.read_text())
        changed = sorted(k for k in run if previous.get(k) != run[k])
        if changed:
            raise InputError(f"{out}: cannot resume, the run differs in {', '.join(changed)}")
        return
    if out.exists() and {p.name for p in out.iterdir()} - {RUN_FILE}:
        if (out / CONFIG_FILE).exists() or (out / CHECKPOINT_FILE).exists():
            raise InputError(f"{out} already holds a model; use --resume to continue it "
                             "or choose another folder")
        raise InputError(f"{out} exists and is not empty")
    out.mkdir(parents=True, exist_ok=True)
    with atomic_file(run_file) as tmp:
        tmp.write_text(json.dumps(run, indent=2) + "\n")
