from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from ray import serve

from core import art
from core.art import FilterParams
from core.device import default_threads
from core.memory import trims_after
from deployments.batching import replica_cpus
from deployments.scaling import HEALTH_CHECK_PERIOD_S, REPLACE_FIRST, bursty


@serve.deployment(
    ray_actor_options={"num_cpus": 0.2},
    # 4 at once, each also running its watercolour strips on the pool; 12 more queued per caller,
    # since one /v1/art request makes three calls (one per filter group). Past that, a fast 503.
    max_ongoing_requests=4,
    max_queued_requests=12,
    autoscaling_config=bursty(1, 2, 2),
    health_check_period_s=HEALTH_CHECK_PERIOD_S,
    max_surge_percent=REPLACE_FIRST,
)
class ArtFilters:
    """The OpenCV filters; sync methods run in Serve's thread pool, and OpenCV releases the GIL."""

    def __init__(self) -> None:
        # Watercolour, the slowest filter by far, runs in strips on these threads: a single request is
        # then bound by the sum of the work, not by its longest filter. As many as the model replicas'
        # torch threads, so that a cluster replica keeps to its share of the node.
        self._strips = default_threads(replica_cpus())
        self._pool = ThreadPoolExecutor(self._strips, thread_name_prefix="strip")

    @trims_after
    def apply(self, image: np.ndarray, wanted: list[tuple[str, FilterParams]]) -> list[np.ndarray]:
        """One output per (filter, parameters), in order; filters that share work compute it once."""
        return art.render(image, wanted, self._pool, self._strips)
