"""Server-Timing: one entry per stage of a request, in the order the stages finished."""

from __future__ import annotations

import time
from dataclasses import dataclass


def ms_since(start: float) -> float:
    """Milliseconds since `start`, a time.perf_counter() reading."""
    return (time.perf_counter() - start) * 1000.0


@dataclass(frozen=True)
class StageTiming:
    name: str
    ms: float
    desc: str | None = None

    def header_entry(self) -> str:
        """One W3C Server-Timing entry, e.g. `anime;dur=640.2;desc="batch=4"`."""
        entry = f"{self.name};dur={self.ms:.1f}"
        return entry + (f';desc="{self.desc}"' if self.desc is not None else "")


class Timings:
    """The entries of one request; branches that run side by side add theirs as they finish."""

    def __init__(self) -> None:
        self.entries: list[StageTiming] = []

    def add(self, name: str, start: float, desc: str | None = None) -> None:
        """Records `name` as lasting from `start` (a time.perf_counter() reading) until now."""
        self.entries.append(StageTiming(name, ms_since(start), desc))
