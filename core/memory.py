"""Keeping replica memory flat under a stream of large images, without slowing the models.

glibc keeps freed memory in per-thread arenas that fragment and never shrink, so a replica that
handles large images grows without bound. The replicas that do large image work (the Ingress, whose
Compositor decodes and encodes, and ArtFilters) hand free pages back after each call (`trims_after`,
`release_free_memory`). Giving every large block its own mmap instead kept memory as flat but made
the filters 85% slower: each large temporary was a fresh, zero-filled mapping.

Model replicas are the other way round: a forward pass frees and reallocates the same activations
every time, and handing them back to the OS makes the next forward fault every page in again. They
start with `MODEL_ALLOCATOR`: one arena, no mmap, freed memory kept. glibc trims only the top of
the heap, so a large forward's peak would stay held for good; the model runner hands it back once
no forward larger than the default output has come for a while (`DeferredRelease`).
docs/performance.md has the measurements behind each choice.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections.abc import Callable
from functools import cache, wraps
from typing import ParamSpec, TypeVar

KEEP_FREED_BYTES = 1 << 30
LARGE_WORK_KEEP_S = 30.0
"""How long a model replica keeps a large forward's memory for another: large renders back to back
skip faulting it all in again, and a replica at rest does not hold it."""
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


class DeferredRelease:
    """Hands free memory back once `after_s` pass without another `arm`. The work holds `lock`, so
    that a release never runs in the middle of it."""

    def __init__(self, after_s: float = LARGE_WORK_KEEP_S) -> None:
        self.after_s = after_s
        self.lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = threading.Timer(self.after_s, self._release)
        self._timer.daemon = True
        self._timer.start()

    def _release(self) -> None:
        with self.lock:
            release_free_memory()
