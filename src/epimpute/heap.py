"""How the process's memory allocator treats large blocks."""

from __future__ import annotations

import ctypes
import ctypes.util

MMAP_THRESHOLD_BYTES = 4 << 20
"""Allocations from this size up get pages of their own (see :func:`bound_heap_growth`)."""


def bound_heap_growth() -> bool:
    """Give allocations of ``MMAP_THRESHOLD_BYTES`` and more their own pages (glibc only).

    glibc raises its mmap threshold each time a large block is freed, after which blocks
    of tens of MB (training batches) come from the heap, fragment it and are never given
    back: a training process grows by tens of MB per step. A fixed threshold keeps them
    out of the heap. Returns whether the setting took (False off glibc).
    """
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    m_mmap_threshold = -3
    return bool(mallopt(m_mmap_threshold, MMAP_THRESHOLD_BYTES))
