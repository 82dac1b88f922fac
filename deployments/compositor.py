"""The request's image work, in the Ingress replica: the photo decoded once, each stage handed its working
image through the stage deployments' handles, the result composed and encoded.

It runs in the ingress process, not as a deployment of its own: a hop between the two was the
largest fixed cost per image that could go (docs/performance.md, where the time goes).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from pydantic import BaseModel
from ray.serve.exceptions import RayServeException
from ray.serve.handle import DeploymentHandle

from core.art import FilterParams
from core.catalogue import Catalogue, OutputParams
from core.device import default_threads
from core.errors import ToonError
from core.memory import release_free_memory
from core.messages import Rendered
from core.pipeline import Pipeline
from core.settings import Settings
from core.stages import FILTER_STAGE, ModelOutput, StageStates, model_stages
from deployments.batching import replica_cpus
from deployments.calls import result_of


class HandleStages:
    """The stages, reached through their deployments' handles."""

    def __init__(self, handles: dict[str, DeploymentHandle]) -> None:
        self._handles = handles

    async def model(self, stage: str, image: np.ndarray, model: str) -> ModelOutput:
        output: ModelOutput = await result_of(self._handles[stage].run.remote(image, model))
        return output

    async def filters(self, image: np.ndarray, wanted: list[tuple[str, FilterParams]]) -> list[np.ndarray]:
        images: list[np.ndarray] = await result_of(self._handles[FILTER_STAGE.name].apply.remote(image, wanted))
        return images

    async def states(self) -> StageStates:
        states: StageStates = {}
        for stage in model_stages():
            if stage.name in self._handles:
                try:
                    states[stage.name] = await result_of(self._handles[stage.name].states.remote())
                except (ToonError, RayServeException) as error:
                    states[stage.name] = f"unreachable: {error}"
        return states


class Compositor:
    """Holds a request's photo: decodes it, hands each stage its working image, composes the result and encodes it.
    Image work runs on a pool of the replica's threads, off the event loop that answers HTTP."""

    def __init__(self, settings: Settings, catalogue: Catalogue, stages: dict[str, DeploymentHandle]) -> None:
        self._executor = ThreadPoolExecutor(default_threads(replica_cpus()), thread_name_prefix="image")
        self._stages = HandleStages(stages)
        self._pipeline = Pipeline(settings, catalogue, self._stages, self._executor)

    async def render(self, data: bytes, effect: str, params: BaseModel, output: OutputParams) -> Rendered:
        try:
            return await self._pipeline.render(data, effect, params, output)
        finally:
            # Large images come and go: hand the freed pages back, so that the replica's memory stays flat.
            await asyncio.get_running_loop().run_in_executor(self._executor, release_free_memory)

    async def states(self) -> StageStates:
        return await self._stages.states()
