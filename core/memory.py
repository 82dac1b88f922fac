"""Keeping replica memory flat under a stream of large images, without slowing the models.

glibc keeps freed memory in per-thread arenas that fragment and never shrink, so a replica that
handles large images grows without bound. The replicas that do large image work (Compositor,
ArtFilters) hand free pages back after each call (`trims_after`, `release_free_memory`); the
ingress, whose large blocks are request and response bodies, gives each its own mmap
(`return_large_blocks_to_the_os`).

Model replicas are the other way round: a forward pass frees and reallocates the same activations
every time, and handing them back to the OS makes the next forward fault every page in again. They
start with `MODEL_ALLOCATOR`: one arena, no mmap, and up to 1 GiB of freed memory kept, so that one
huge image does not pin its peak. docs/performance.md has the measurements behind each choice.
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
    model replicas either: a fresh mapping per activation makes each forward fault its pages in again.
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
