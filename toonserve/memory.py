"""Keeping replica memory flat under a stream of large images."""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3
LARGE_BLOCK = 128 * 1024


def return_large_blocks_to_the_os() -> bool:
    """Every allocation of 128 KiB or more gets its own mmap, unmapped when freed.

    glibc otherwise raises its mmap threshold after large blocks are freed, and then serves
    megabyte-sized image buffers from per-thread arenas that fragment and never shrink: an
    ArtFilters replica grew from 86 MB to 4.2 GB (USS) over 72 requests of 1920x1080, and stayed
    at 93 MB with this set. Not for the model replicas: their forward passes allocate large
    activations each time, and a fresh mmap per tensor (zero-filled by the kernel, then unmapped)
    made them 2-3x slower; they keep one forward thread, hence one arena, instead.
    A no-op (False) where libc has no mallopt.
    """
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    libc = ctypes.CDLL(libc_name)
    mallopt = getattr(libc, "mallopt", None)
    return bool(mallopt is not None and mallopt(M_MMAP_THRESHOLD, LARGE_BLOCK) == 1)
