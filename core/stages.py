"""The stages effects call, each a deployment of its own: the model stages and the art filters.

A model stage takes a working image and a model name and returns the model's output; the filter
stage takes an image and the filters to apply. Effects reach them through `Stages`: over Serve
handles in the service (deployments/compositor.py), in this process in tests and benchmarks
(`LocalStages`).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from core.art import FilterParams, render
from core.device import available_cores, choose_device
from core.errors import ToonError
from core.runner import ModelRunner, ModelState
from core.settings import Settings
from models.animegan import ANIME_WEIGHTS
from models.registry import Registry, WeightsEntry
from models.u2net import U2NET_WEIGHTS

StageStates = dict[str, list[ModelState] | str]
"""Stage key -> each model's state, or why the stage could not be asked."""


@dataclass(frozen=True)
class Stage:
    name: str
    """How effects name the stage."""
    deployment: str
    """The Serve deployment that runs it."""


@dataclass(frozen=True)
class ModelStage(Stage):
    registry: Registry[WeightsEntry]
    listing: str
    """The key under which /v1/effects lists this stage's models for an effect that uses it."""


ANIME_STAGE = ModelStage("anime", "AnimeGAN", ANIME_WEIGHTS, "styles")
MATTING_STAGE = ModelStage("matting", "Matting", U2NET_WEIGHTS, "models")
FILTER_STAGE = Stage("filters", "ArtFilters")

STAGES: Registry[Stage] = Registry("stage", (ANIME_STAGE, MATTING_STAGE, FILTER_STAGE))


def model_stages() -> list[ModelStage]:
    return [stage for stage in STAGES if isinstance(stage, ModelStage)]


@dataclass(frozen=True)
class ModelOutput:
    output: np.ndarray
    """RGB uint8 HWC, or a float32 HW map in [0, 1], at the working image's size."""
    batch: int
    """How many images shared its forward pass."""


class Stages(Protocol):
    async def model(self, stage: str, image: np.ndarray, model: str) -> ModelOutput: ...

    async def filters(self, image: np.ndarray, wanted: list[tuple[str, FilterParams]]) -> list[np.ndarray]:
        """One output per (filter, parameters), in order."""
        ...

    async def states(self) -> StageStates: ...


class LocalStages:
    """Every stage in this process, one call at a time: for tests and benchmarks, without Ray."""

    def __init__(self, settings: Settings) -> None:
        placement = choose_device(gpu_assigned=False, precision=settings.precision)
        self._runners = {stage.name: ModelRunner(settings, stage.registry, placement) for stage in model_stages()}
        self._pool = ThreadPoolExecutor(available_cores(), thread_name_prefix="strip")

    async def model(self, stage: str, image: np.ndarray, model: str) -> ModelOutput:
        (outcome,) = await asyncio.to_thread(self._runners[stage].run, [(image, model)])
        if isinstance(outcome, ToonError):
            raise outcome
        return ModelOutput(*outcome)

    async def filters(self, image: np.ndarray, wanted: list[tuple[str, FilterParams]]) -> list[np.ndarray]:
        return await asyncio.to_thread(render, image, wanted, self._pool, available_cores())

    async def states(self) -> StageStates:
        return {key: runner.states() for key, runner in self._runners.items()}
