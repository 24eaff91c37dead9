"""Giving the process's free heap memory back to the system."""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from functools import cache

TRIM_EVERY_STEPS = 10
"""Training steps between two :func:`release_free_heap` calls of the training loop."""


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim
    except (OSError, AttributeError, TypeError):
        return None


def release_free_heap() -> bool:
    """Return the heap's free pages to the system (glibc ``malloc_trim``).

    A training step allocates and frees blocks of a few MB whose sizes vary from step to
    step (they follow the tracks and targets drawn), and glibc keeps the holes they leave:
    without this a training process grows by tens of MB per step. Giving every block pages
    of its own would also stop that, at the cost of faulting them in at every step; calling
    this every few steps keeps the heap's speed. Returns whether memory was released
    (False, doing nothing, off glibc).
    """
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False
