"""Big freed blocks go back to the system.

Each Argon2id verification allocates a 19 MiB buffer (proxy/core/keys.py's parameters), in one of
the verifier threads. glibc's malloc serves blocks that big with mmap at first, but once one is
freed it raises its mmap threshold past that size, and the later buffers come from the thread's
arena, which keeps them: measured in the soak bench, 42 MiB held for good after the first wrong
secrets (bench/bench_soak.py). A fixed threshold of 4 MiB keeps blocks that big on mmap, given
back when freed; an operator's own MALLOC_MMAP_THRESHOLD_ stands.
"""

from __future__ import annotations

import ctypes
import os

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
THRESHOLD_BYTES = 4 * 2**20


def give_back_big_blocks() -> bool:
    """Fix glibc's mmap threshold at THRESHOLD_BYTES; False where it is not glibc's malloc or
    the environment sets it."""
    if os.environ.get("MALLOC_MMAP_THRESHOLD_"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, THRESHOLD_BYTES) == 1
