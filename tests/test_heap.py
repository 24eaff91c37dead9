import os
import platform
import subprocess
import sys

import pytest

PROBE = """
import ctypes, ctypes.util, sys
import numpy as np
from epimpute.heap import bound_heap_growth

class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.mallinfo2.restype = Info
if sys.argv[1] == "bounded":
    assert bound_heap_growth()
large = np.ones((16 << 20) // 8)  # mmapped: over the initial 128 KiB threshold
del large  # glibc now raises its threshold past 16 MiB, unless it is fixed
before = libc.mallinfo2().hblkhd  # bytes in blocks with pages of their own
block = np.ones((8 << 20) // 8)
print(libc.mallinfo2().hblkhd - before >= block.nbytes)
"""


def _mmapped(mode: str) -> bool:
    # Any glibc malloc setting (Dask puts MALLOC_TRIM_THRESHOLD_ in the environment) turns
    # the threshold's growth off, so the probe runs without them.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                         check=True, env=env)
    return out.stdout.strip() == "True"


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_large_blocks_keep_their_own_pages_once_the_threshold_is_fixed():
    assert not _mmapped("default")  # the 8 MiB block comes from the heap ...
    assert _mmapped("bounded")  # ... and gets pages of its own with the fixed threshold
