from __future__ import annotations

import time

from ray import serve

from toonserve import art
from toonserve.art import FilterParams, get_filter
from toonserve.errors import InvalidImage
from toonserve.memory import return_large_blocks_to_the_os
from toonserve.messages import Prepared, Rendered, StageTiming


@serve.deployment(
    ray_actor_options={"num_cpus": 0.2},
    max_ongoing_requests=8,
    max_queued_requests=64,
    autoscaling_config={"min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 2},
    health_check_period_s=10,
)
class ArtFilters:
    """The OpenCV filters; sync methods run in Serve's thread pool, and OpenCV releases the GIL."""

    def __init__(self) -> None:
        return_large_blocks_to_the_os()

    def apply_group(self, prepared: Prepared, wanted: list[tuple[str, FilterParams]]) -> list[Rendered]:
        """One Rendered per (filter, parameters), in order; filters that share work compute it once."""
        if prepared.image is None:
            raise InvalidImage("the filters need the decoded image at its output size")
        for name, _ in wanted:
            get_filter(name)
        start = time.perf_counter()
        images = art.render(prepared.image, wanted)
        timings = [StageTiming(name, (time.perf_counter() - start) * 1000.0) for name, _ in wanted]
        return [
            Rendered(image, prepared.output_size, alpha=prepared.alpha, timings=(*prepared.timings, timing))
            for image, timing in zip(images, timings, strict=True)
        ]
