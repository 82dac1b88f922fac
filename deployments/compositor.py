from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from pydantic import BaseModel
from ray import serve
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
from deployments.scaling import REPLACE_FIRST, bursty


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


@serve.deployment(
    ray_actor_options={"num_cpus": 0.2},
    # It holds each request while the stages run, so it is sized like the ingress: its ongoing
    # requests count the ones waiting on a model, and its CPU work is a small part of each.
    max_ongoing_requests=16,
    max_queued_requests=16,
    autoscaling_config=bursty(1, 2, 8),
    health_check_period_s=10,
    max_surge_percent=REPLACE_FIRST,
)
class Compositor:
    """Holds a request's photo: decodes it, hands each stage its working image, composes the result and encodes it."""

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
