"""Checks and helpers shared by the API functions."""

from __future__ import annotations

import fnmatch
import json
import logging
import math
from collections.abc import Sequence
from typing import Any

from epimpute.errors import InputError
from epimpute.hardware import PRECISIONS, resolve_device
from epimpute.store import Store

log = logging.getLogger(__name__)


def expand_keys(store: Store, keys: Sequence[str]) -> list[str]:
    """Track keys of ``store`` named by ``keys``, patterns expanded.

    Parameters
    ----------
    store
        The store whose track keys patterns are matched against.
    keys
        Track keys ``CELL:ASSAY`` or shell-style patterns (``'liver@*:H3K27ac'``).

    Returns
    -------
    list[str]
        The keys, each pattern replaced by the keys it matches in store order, without
        repeats. Plain keys are passed on unchecked.

    Raises
    ------
    InputError
        If a pattern matches no track.
    """
    known = [t.key for t in store.tracks]
    out: list[str] = []
    for key in keys:
        if any(c in key for c in "*?["):
            matched = fnmatch.filter(known, key)
            if not matched:
                raise InputError(f"'{key}' matches no track of {store.path}")
            out += matched
        else:
            out.append(key)
    return list(dict.fromkeys(out))


def jsonable(config: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return json.loads(json.dumps(asdict(config), default=list))


def check_settings(*, seed: int = 0, device: str = "auto", max_minutes: float | None = None,
                    precision: str = "auto") -> None:
    """InputError for a negative seed, an unknown or absent device, a budget that is not a
    positive number of minutes, or an unknown precision."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise InputError(f"--seed must be a non-negative integer, got {seed!r}")
    if max_minutes is not None and (isinstance(max_minutes, bool)
                                    or not isinstance(max_minutes, (int, float))
                                    or not math.isfinite(max_minutes) or max_minutes <= 0):
        raise InputError(f"--max-minutes must be a positive number of minutes, got {max_minutes!r}")
    if precision not in PRECISIONS:
        raise InputError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    resolve_device(device)
