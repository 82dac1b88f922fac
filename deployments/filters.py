from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from ray import serve

from core import art
from core.art import FilterParams, get_filter
from core.device import default_threads
from core.errors import InvalidImage
from core.memory import trims_after
from core.messages import Encoded, OutputFormat, Prepared, Rendered, StageTiming
from core.preprocess import ImageProcessor
from core.settings import Settings
from deployments.batching import replica_cpus
from deployments.scaling import bursty


@serve.deployment(
    ray_actor_options={"num_cpus": 0.2},
    # Bounds on in-flight work are what bound latency under overload. With 8 ongoing and 64 queued
    # per caller, a 10x burst of 1024-pixel oil paintings on 2 cores waited 28 s (p50) and got no
    # 503 at all. Now 4 run at once (each also runs its watercolour strips on the pool) and each
    # caller (ingress replica) queues 12 more: a few seconds of work; past that, 503 at once. A /v1/art
    # request makes three calls (one per filter group), so a client at concurrency 4 needs 12 slots:
    # with 8 queued, three of 216 /v1/art requests at concurrency 4 in a 10-minute soak got a 503.
    max_ongoing_requests=4,
    max_queued_requests=12,
    autoscaling_config=bursty(1, 2, 2),
    health_check_period_s=10,
)
class ArtFilters:
    """The OpenCV filters; sync methods run in Serve's thread pool, and OpenCV releases the GIL.

    Each group's outputs are encoded here, so that only compressed bytes travel back to the
    ingress: a 1920x1080 RGB array is 6 MB, its PNG about half that and its JPEG a tenth.
    """

    def __init__(self, settings: Settings) -> None:
        self._processor = ImageProcessor(settings)
        # Watercolour, the slowest filter by far, runs in strips on these threads: on an idle
        # machine a single /v1/art is then bound by the sum of the work, not by its longest filter.
        # As many as the model replicas' torch threads: the replica's whole CPUs, or every core
        # for a fraction of one, so that a cluster replica keeps to its share of the node.
        self._strips = default_threads(replica_cpus())
        self._pool = ThreadPoolExecutor(self._strips, thread_name_prefix="strip")

    @trims_after
    def apply_group(
        self, prepared: Prepared, wanted: list[tuple[str, FilterParams]], output_format: OutputFormat
    ) -> list[Encoded]:
        """One Encoded per (filter, parameters), in order; filters that share work compute it once."""
        if prepared.image is None:
            raise InvalidImage("the filters need the decoded image at its output size")
        for name, _ in wanted:
            get_filter(name)
        start = time.perf_counter()
        images = art.render(prepared.image, wanted, self._pool, self._strips)
        timing = (time.perf_counter() - start) * 1000.0
        return [
            self._processor.finish(
                Rendered(
                    image, prepared.output_size, alpha=prepared.alpha, timings=(*prepared.timings, StageTiming(name, timing))
                ),
                output_format,
            )
            for image, (name, _) in zip(images, wanted, strict=True)
        ]
