"""One shell for every model stage: which stage it serves, and its Serve numbers, are configuration."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import numpy as np
import ray
from ray import serve
from ray.serve import Deployment

from core.device import choose_device
from core.errors import ToonError
from core.memory import MODEL_ALLOCATOR
from core.runner import ModelItem, ModelRunner, ModelState, Outcome
from core.settings import Settings
from core.stages import STAGES, ModelOutput, ModelStage, model_stages
from deployments.batching import BatchConfig, apply_batch_config, replica_cpus
from deployments.metrics import model_metrics
from deployments.scaling import HEALTH_CHECK_PERIOD_S, REPLACE_FIRST, bursty

# A logical share small enough that both model deployments reach one replica per core beside the
# others on a 2-core machine's local Ray; the one torch thread is what holds a replica to one core.
MODEL_ACTOR = {"num_cpus": 0.2, "runtime_env": {"env_vars": MODEL_ALLOCATOR}}
LOCAL_MODEL_REPLICAS = 2
"""The most model replicas per deployment in the generated local config; `toonserve serve` raises it
to the machine's cores (machine_sized)."""


def model_scaling(min_replicas: int, max_replicas: int) -> dict[str, Any]:
    """A replica runs one forward at a time on one core. Two requests in flight each, on average,
    before another starts: a start costs seconds of CPU (its models loaded and warmed up), which at
    one each a moment's overlap of two requests would spend."""
    return bursty(min_replicas, max_replicas, 2)


def machine_sized(cores: int) -> dict[str, dict[str, Any]]:
    """Deployment options that let each model deployment grow to one replica per core."""
    return {stage.deployment: {"autoscaling_config": model_scaling(1, cores)} for stage in model_stages()}


@serve.deployment(
    ray_actor_options=MODEL_ACTOR,
    # Queues bound latency, not only memory: past them a fast 503 with Retry-After (docs/performance.md).
    max_ongoing_requests=8,
    max_queued_requests=16,
    # Replicas of one torch thread, as many as cores: on one machine that serves more than one replica
    # on every core, at the same latency for a single request (docs/performance.md, replica shapes).
    autoscaling_config=model_scaling(1, LOCAL_MODEL_REPLICAS),
    user_config=BatchConfig().model_dump(),
    health_check_period_s=HEALTH_CHECK_PERIOD_S,
    max_surge_percent=REPLACE_FIRST,
)
class BatchedModel:
    """A model stage: its registry's models behind @serve.batch; a batch mixes models and shapes, grouped inside."""

    def __init__(self, settings: Settings, stage: str, models: list[str] | None = None) -> None:
        model_stage = STAGES.get(stage)
        if not isinstance(model_stage, ModelStage):
            raise TypeError(f"{stage} is not a model stage")
        # One thread runs every forward pass: the torch thread count set on it holds (OpenMP keeps
        # it per thread), one malloc arena is reused, and the next batch fills meanwhile.
        self._forward_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="forward")
        placement = choose_device(bool(ray.get_gpu_ids()), settings.precision, replica_cpus())
        self._runner = ModelRunner(settings, model_stage.registry, placement, models)
        self._runner.warm_up()
        self._stage = {"stage": stage}
        self.check_health()

    def reconfigure(self, user_config: dict[str, object]) -> None:
        config = apply_batch_config(self._batched, user_config)
        # Ray sets OMP_NUM_THREADS to a replica's num_cpus, 1 for a fraction: the runner says how many cores to use.
        self._runner.tune(config.forward_batch, config.threads)

    async def run(self, image: np.ndarray, model: str) -> ModelOutput:
        """`image` at the model's working size (RGB uint8 HWC) -> the model's output at that size."""
        outcome = await self._batched((image, model), time.perf_counter())
        if isinstance(outcome, ToonError):
            raise outcome
        return ModelOutput(*outcome)

    @serve.batch(max_batch_size=4, batch_wait_timeout_s=0.01)
    async def _batched(self, items: list[ModelItem], queued: list[float]) -> list[Outcome]:
        started, metrics = time.perf_counter(), model_metrics()
        metrics.batch_size.observe(len(items), tags=self._stage)
        for since in queued:
            metrics.queue_wait.observe(started - since, tags=self._stage)
        # The forward pass runs off the event loop so that the next batch fills meanwhile.
        return await asyncio.get_running_loop().run_in_executor(self._forward_thread, self._runner.run, items)

    def check_health(self) -> None:
        """Serve calls this every HEALTH_CHECK_PERIOD_S. The weights gauge is set again each time: Ray's
        metrics agent drops a gauge not set within two export intervals (20 s by default)."""
        for state in self._runner.states():
            model_metrics().weights.set(int(state.loaded), tags={"model": state.name, "origin": state.origin or "missing"})

    def states(self) -> list[ModelState]:
        return self._runner.states()


STAGE_OPTIONS: dict[str, dict[str, Any]] = {
    "Matting": {"max_ongoing_requests": 16},
}
"""Per-stage departures from BatchedModel's defaults, by deployment name."""


def model_deployment(stage: ModelStage) -> Deployment:
    # mypy sees the class, not the Deployment that @serve.deployment made of it.
    return cast(Deployment, BatchedModel).options(name=stage.deployment, **STAGE_OPTIONS.get(stage.deployment, {}))
