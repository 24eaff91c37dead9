"""What made an output: the epimpute version, the command and the UTC time.

Every output (store, model, imputation folder, evaluation report) records
:func:`provenance` under the key :data:`KEY`. The command line sets the command once with
:func:`recording_command`; outside it (the Python API) the command reads ``"python API"``.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from epimpute import __version__

__all__ = ["API_COMMAND", "KEY", "provenance", "recording_command", "write_json_record"]

KEY = "created"
"""The key under which outputs keep their provenance."""
API_COMMAND = "python API"

_command: ContextVar[str | None] = ContextVar("epimpute_command", default=None)


@contextmanager
def recording_command(argv: Sequence[str]) -> Iterator[None]:
    """Record ``argv`` (the whole command line, program name first) as the command of
    every output made inside the ``with`` block."""
    token = _command.set(shlex.join(argv))
    try:
        yield
    finally:
        _command.reset(token)


def provenance() -> dict[str, str]:
    """The epimpute version, the command (or ``"python API"``) and the current UTC time.

    Returns
    -------
    dict
        ``{"epimpute_version": ..., "command": ..., "utc": "YYYY-MM-DDTHH:MM:SSZ"}``.
    """
    return {
        "epimpute_version": __version__,
        "command": _command.get() or API_COMMAND,
        "utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def write_json_record(path: Path, fields: dict[str, Any]) -> Path:
    """Write ``fields`` plus :func:`provenance` (under :data:`KEY`) as JSON to ``path``,
    through a temporary file renamed into place; returns ``path``."""
    from epimpute.io.atomic import atomic_file

    path = Path(path)
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps({**fields, KEY: provenance()}, indent=2, default=str) + "\n")
    return path
