import platform
import subprocess
import sys

import pytest

PROBE = """
import sys
import numpy as np
from epimpute.heap import release_free_heap

def resident_mib():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096 / 2**20

# 3,000 blocks of 96 KiB come from the heap (below the 128 KiB mmap threshold); keeping
# every 20th alive pins the heap, so freeing the others leaves holes nothing gives back
blocks = [np.ones(96 * 1024 // 8) for _ in range(3000)]
kept = blocks[::20]
del blocks
before = resident_mib()
released = release_free_heap() if sys.argv[1] == "trim" else False
print(released, before - resident_mib())
"""


def _probe(mode: str) -> tuple[bool, float]:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                         check=True).stdout.split()
    return out[0] == "True", float(out[1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_free_heap_pages_go_back_to_the_system():
    released, dropped = _probe("keep")
    assert not released and dropped < 20  # the ~270 MiB of holes stay resident ...
    released, dropped = _probe("trim")
    assert released and dropped > 200  # ... until they are released
