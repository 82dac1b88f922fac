"""Keeping replica memory flat under a stream of large images.

glibc keeps freed memory in per-thread arenas that fragment and never shrink: an ArtFilters
replica grew from 86 MB to 4.2 GB (USS) over 72 requests of 1920x1080. Two remedies, measured on
the four filters of a 1920x1080 photo, two at a time on threads, 24 rounds in one process:

- nothing: 1779 ms a round (median), USS 933 MB after the first round and 1870 MB after the last;
- every block of 128 KiB or more in its own mmap (`return_large_blocks_to_the_os`): USS flat at
  140 MB, but 3299 ms a round, since each large temporary is a fresh, zero-filled mapping;
- `malloc_trim(0)` after each call (`release_free_memory`): USS flat at 140 MB, 2092 ms a round.

So the replicas that do large image work trim after each call, and the ingress, whose large
blocks are request and response bodies, keeps the mmap threshold.

The model replicas are the other way round: a forward pass allocates and frees the same few
hundred MB of activations every time, and glibc hands the large ones back to the OS on each free
(blocks over 32 MB are always their own mmap, and a thread's arena unmaps emptied heaps). The next
forward faults every page in again, zero-filled: 1.28 M page faults in 9 AnimeGAN forwards at
512x384 (bf16, 2 threads, on a forward thread). With `MODEL_ALLOCATOR` (one arena, no mmap, keep
up to 1 GiB free at the top of the heap) the same run took 0.16 M page faults and a forward
took 373-481 ms instead of 545-672 ms. Memory stays bounded: freed memory at the top beyond
1 GiB goes back, so one huge image does not pin its peak.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from functools import cache, wraps
from typing import ParamSpec, TypeVar

M_MMAP_THRESHOLD = -3
LARGE_BLOCK = 128 * 1024

KEEP_FREED_BYTES = 1 << 30
MODEL_ALLOCATOR = {
    "GLIBC_TUNABLES": f"glibc.malloc.arena_max=1:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold={KEEP_FREED_BYTES}"
}
"""Environment for a process that runs forward passes; glibc reads it at start, so it goes in a
replica's runtime_env (and the raw benchmark's subprocess), not os.environ. Ignored by other libcs."""

P = ParamSpec("P")
R = TypeVar("R")


@cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name) if name is not None else None


def return_large_blocks_to_the_os() -> bool:
    """Every allocation of 128 KiB or more gets its own mmap, unmapped when freed. Not for the
    model replicas either: a fresh mapping per activation made their forwards 2-3x slower.
    A no-op (False) where libc has no mallopt."""
    mallopt = getattr(_libc(), "mallopt", None)
    return bool(mallopt is not None and mallopt(M_MMAP_THRESHOLD, LARGE_BLOCK) == 1)


def release_free_memory() -> bool:
    """Hands every arena's free pages back to the OS (glibc's malloc_trim). False where there is none."""
    trim = getattr(_libc(), "malloc_trim", None)
    return bool(trim is not None and trim(0) == 1)


def trims_after(method: Callable[P, R]) -> Callable[P, R]:
    """Decorates a replica method: whatever it returns or raises, free memory goes back to the OS."""

    @wraps(method)
    def trimmed(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        finally:
            release_free_memory()

    return trimmed
