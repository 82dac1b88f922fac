"""What the model deployments report about each model: for /readyz and /v1/effects."""

from __future__ import annotations

from dataclasses import dataclass

from core.settings import Settings
from models.weights import WeightsLocations


@dataclass(frozen=True)
class ModelState:
    name: str
    loaded: bool
    origin: str | None  # weights_dir, cache, download, random; None when missing
    verified: bool
    detail: str
    device: str


def weights_locations(settings: Settings) -> WeightsLocations:
    return WeightsLocations(settings.weights_dir, settings.cache_dir, settings.download_weights)
