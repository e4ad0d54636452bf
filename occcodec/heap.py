"""Keep freed memory in the process: glibc's heap instead of one ``mmap`` per large array.

glibc serves every allocation above 32 MB (numpy's large arrays) with its own ``mmap`` and
unmaps it when freed, so the next array of that size faults its pages in again, one by
one. On virtual machines such first touches are slow: on the 2-core development VM,
writing 2 GB that the process had not touched before took 14.6 s, and 0.2 s when the
pages had just been used. An encode at 512^3 decodes the shape several times and frees
and reallocates the same large arrays each time.

:func:`keep_freed_memory` asks glibc to serve everything from its heap (``M_MMAP_MAX =
0``) and not to give freed memory back (``M_TRIM_THRESHOLD`` at its maximum), so freed
pages are reused without faults. Measured on nut at ``--resolution 512`` (same file):
126-132 s wall and 28-32 s system time before, 116 s and 22 s after; peak RSS 3.35 GB
against 3.33-3.35 GB. The process's RSS then stays at its peak until it exits.

Only ``occcodec encode`` and the batch workers call it (processes that occcodec owns and
that end after the job); importing :mod:`occcodec` as a library changes nothing. Not
``decode``: one decode has little to reuse, and the heap's fragmentation raised nut's
1024^3 decode peak from 1.81 to 2.25 GB. Large arrays allocated in other threads still
come from ``mmap`` (glibc's per-thread arenas). ``OCCCODEC_MALLOC=system`` turns it off.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_INT_MAX = 2**31 - 1


def keep_freed_memory() -> bool:
    """Set the two glibc options; returns whether they were set (False off glibc, or with
    ``OCCCODEC_MALLOC=system``)."""
    if os.environ.get("OCCCODEC_MALLOC", "").strip().lower() == "system":
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc (macOS, musl without mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _INT_MAX))
