from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import ray
from ray import serve

from core.anime import AnimeItem, AnimeStylizer
from core.device import choose_device
from core.errors import InvalidImage, ToonError
from core.memory import MODEL_ALLOCATOR
from core.messages import Prepared, Rendered, StageTiming
from core.model_bank import Outcome
from core.models import ModelState
from core.settings import Settings
from deployments.batching import BatchConfig, apply_batch_config, replica_cpus
from deployments.scaling import bursty
from models.animegan import ANIME_WEIGHTS


@serve.deployment(
    ray_actor_options={"num_cpus": 0.3, "runtime_env": {"env_vars": MODEL_ALLOCATOR}},
    # Queues bound latency, not only memory: 8 in flight (enough to fill a batch of 4) and 16 queued
    # per caller (ingress replica) is about 9 s of anime at 0.37 s an image on a 2-core laptop; past
    # that, a fast 503 with Retry-After. With 8 queued (sized when an image took 0.5 s), 19 of 48
    # requests from a client at concurrency 16 got a 503. The cluster GPU config raises both for
    # larger batches.
    max_ongoing_requests=8,
    max_queued_requests=16,
    # One replica locally: it already runs on every core (default_threads), and a second one on the
    # same cores only oversubscribes them (anime served / raw fell from 0.80 to 0.50 with two).
    # The cluster configs scale it out across nodes.
    autoscaling_config=bursty(1, 1, 4),
    user_config=BatchConfig().model_dump(),
    health_check_period_s=10,
)
class AnimeGAN:
    """All four styles in one deployment; a batch mixes styles and shapes, grouped inside."""

    def __init__(self, settings: Settings, styles: list[str] | None = None) -> None:
        # One thread runs every forward pass: one malloc arena, reused, the torch thread count set on
        # it holds (use_threads), and the next batch fills meanwhile. A worker thread has a cost: the
        # same forward ran 30-40% slower than on a process's main thread (README, where the time
        # goes), and Serve runs user code on worker threads only.
        self._forward_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="forward")
        placement = choose_device(bool(ray.get_gpu_ids()), settings.precision, replica_cpus())
        self._stylizer = AnimeStylizer(settings, styles or ANIME_WEIGHTS.names(), placement)
        self._stylizer.warm_up()

    def reconfigure(self, user_config: dict[str, object]) -> None:
        config = apply_batch_config(self._batched, user_config)
        # Ray sets OMP_NUM_THREADS to a replica's num_cpus, 1 for a fraction: the runner says how many cores to use.
        self._stylizer.tune(config.forward_batch, config.threads)

    async def stylize(self, prepared: Prepared, style: str) -> Rendered:
        if prepared.working is None:
            raise InvalidImage("anime needs the image at its working size")
        start = time.perf_counter()
        outcome = await self._batched((prepared.working, style))
        if isinstance(outcome, ToonError):
            raise outcome
        image, batch = outcome
        timing = StageTiming("anime", (time.perf_counter() - start) * 1000.0, batch)
        return Rendered(image, prepared.output_size, alpha=prepared.alpha, timings=(*prepared.timings, timing))

    @serve.batch(max_batch_size=4, batch_wait_timeout_s=0.01)
    async def _batched(self, items: list[AnimeItem]) -> list[Outcome]:
        # The forward pass runs off the event loop so that the next batch fills meanwhile.
        return await asyncio.get_running_loop().run_in_executor(self._forward_thread, self._stylizer.run, items)

    def status(self) -> list[ModelState]:
        return self._stylizer.states()
