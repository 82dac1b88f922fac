from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import ray
from ray import serve

from core.device import choose_device
from core.errors import InvalidImage, ToonError
from core.matting import MatteItem, Matter
from core.memory import MODEL_ALLOCATOR
from core.messages import Prepared, Rendered, StageTiming
from core.model_bank import Outcome
from core.models import ModelState
from core.settings import Settings
from deployments.batching import BatchConfig, apply_batch_config, replica_cpus
from deployments.scaling import bursty
from models.u2net import U2NET_WEIGHTS


@serve.deployment(
    ray_actor_options={"num_cpus": 0.25, "runtime_env": {"env_vars": MODEL_ALLOCATOR}},
    max_ongoing_requests=16,
    # Each caller (ingress replica) queues at most 16: a few seconds at 0.1-0.25 s an image.
    max_queued_requests=16,
    # One replica locally: it already runs on every core (default_threads), and a second one on the
    # same cores only oversubscribes them (anime served / raw fell from 0.80 to 0.50 with two).
    # The cluster configs scale it out across nodes.
    autoscaling_config=bursty(1, 1, 4),
    user_config=BatchConfig().model_dump(),
    health_check_period_s=10,
)
class Matting:
    """U²-Net portrait matting; returns the matte, composed and encoded by the preprocessor."""

    def __init__(self, settings: Settings, models: list[str] | None = None) -> None:
        # One thread runs every forward pass, as in AnimeGAN (see there).
        self._forward_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="forward")
        placement = choose_device(bool(ray.get_gpu_ids()), settings.precision, replica_cpus())
        self._matter = Matter(settings, models or U2NET_WEIGHTS.names(), placement)
        self._matter.warm_up()

    def reconfigure(self, user_config: dict[str, object]) -> None:
        config = apply_batch_config(self._batched, user_config)
        # Ray sets OMP_NUM_THREADS to a replica's num_cpus, 1 for a fraction: the runner says how many cores to use.
        self._matter.tune(config.forward_batch, config.threads)

    async def matte(self, prepared: Prepared, model: str) -> Rendered:
        if prepared.working is None or prepared.image is None:
            raise InvalidImage("matting needs the image at its output size and at 320x320")
        start = time.perf_counter()
        outcome = await self._batched((prepared.working, model))
        if isinstance(outcome, ToonError):
            raise outcome
        matte, batch = outcome
        timing = StageTiming("matte", (time.perf_counter() - start) * 1000.0, batch)
        return Rendered(
            prepared.image, prepared.output_size, alpha=prepared.alpha, matte=matte, timings=(*prepared.timings, timing)
        )

    @serve.batch(max_batch_size=4, batch_wait_timeout_s=0.01)
    async def _batched(self, items: list[MatteItem]) -> list[Outcome]:
        return await asyncio.get_running_loop().run_in_executor(self._forward_thread, self._matter.run, items)

    def status(self) -> list[ModelState]:
        return self._matter.states()
