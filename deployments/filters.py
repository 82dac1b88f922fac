from __future__ import annotations

import time

from ray import serve

from toonserve.art import FilterParams, get_filter
from toonserve.errors import InvalidImage
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

    def apply(self, prepared: Prepared, name: str, params: FilterParams) -> Rendered:
        if prepared.image is None:
            raise InvalidImage("the filters need the decoded image at its output size")
        art_filter = get_filter(name)
        start = time.perf_counter()
        image = art_filter.apply(prepared.image, params)
        timing = StageTiming(name, (time.perf_counter() - start) * 1000.0)
        return Rendered(image, prepared.output_size, alpha=prepared.alpha, timings=(*prepared.timings, timing))
