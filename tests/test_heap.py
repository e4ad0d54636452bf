"""The command line keeps freed memory for reuse; a library import does not."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

_PROBE = """
import ctypes, ctypes.util, sys
from occcodec import heap
print(heap.keep_freed_memory())
"""

_MALLINFO = """
import ctypes, ctypes.util, sys
import numpy as np
from occcodec import heap
if sys.argv[1] == "keep":
    assert heap.keep_freed_memory()
libc = ctypes.CDLL(ctypes.util.find_library("c"))
if not hasattr(libc, "mallinfo2"):  # glibc < 2.33
    print("skip")
    sys.exit(0)
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc.mallinfo2.restype = Info
a = np.ones(64 * 2**20, dtype=np.uint8)  # 64 MB: above glibc's largest mmap threshold
info = libc.mallinfo2()
print(info.hblkhd >= a.nbytes, info.arena >= a.nbytes)
"""


def _run(code: str, *args: str, **env: str) -> str:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                         text=True, env={**os.environ, **env}, check=True)
    return out.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_keep_freed_memory_moves_large_arrays_to_the_heap() -> None:
    if _run(_PROBE) != "True":
        pytest.skip("not glibc")
    default = _run(_MALLINFO, "default")
    if default == "skip":
        pytest.skip("no mallinfo2 (glibc < 2.33)")
    assert default == "True False"  # its own mmap
    assert _run(_MALLINFO, "keep") == "False True"  # the heap


def test_it_can_be_turned_off() -> None:
    assert _run(_PROBE, OCCCODEC_MALLOC="system") == "False"
