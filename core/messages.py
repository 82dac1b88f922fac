"""What the Compositor returns to the Ingress: encoded pictures and the request's Server-Timing entries."""

from __future__ import annotations

from dataclasses import dataclass

from core.timing import StageTiming


@dataclass(frozen=True)
class Encoded:
    data: bytes
    media_type: str


@dataclass(frozen=True)
class Rendered:
    pictures: dict[str, Encoded]
    """One entry, under the effect's name, for an effect that returns an image; one per image otherwise."""
    timings: tuple[StageTiming, ...]
