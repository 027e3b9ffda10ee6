"""The C allocator's thresholds, set once so that numpy temporaries do not fault in every call.

An estimate makes and frees many arrays of tens to hundreds of kilobytes. glibc's malloc hands
free memory at the top of its heap back to the system once more than 128 KB of it is free (and
mmaps every block over 128 KB afresh); the next call then touches new pages, each a page fault.
glibc raises both thresholds by itself after the process frees its first large block, so whether
a process is fast depended on what it happened to do before (measured here: building the operators
of a 64 x 64 prefill pass 500 times took 0.25 ms a pass with 5,900 page faults in one process
and 0.6 ms with 89,000 in another whose modules loaded from .pyc files). Setting the thresholds
where glibc's own adjustment caps them (32 MB for mmap, twice that kept free at the top) makes
every process fast; it keeps at most 64 MB of freed memory for reuse. Elsewhere (macOS, musl,
Windows) this does nothing, and so it does where the environment sets either threshold itself
(glibc's MALLOC_TRIM_THRESHOLD_ and MALLOC_MMAP_THRESHOLD_ variables).
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024  # DEFAULT_MMAP_THRESHOLD_MAX on 64-bit glibc
TRIM_THRESHOLD_BYTES = 2 * MMAP_THRESHOLD_BYTES  # what glibc sets with a raised mmap threshold


def keep_freed_memory() -> bool:
    """Raise glibc's trim and mmap thresholds (see the module docstring); True if it did."""
    if not sys.platform.startswith("linux") or {"MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_"} & set(os.environ):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
