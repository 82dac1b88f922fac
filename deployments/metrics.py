"""toonserve's own Prometheus metrics, each declared once here, recorded through Ray Serve's metrics API.

Ray exports them beside its own at each node's metrics export port, named `ray_<name>` (a counter
gains `_total`); replicas' metrics carry Serve's deployment, replica and application tags.
`deploy/grafana/toonserve.json` charts them; docs/operations.md says how to scrape them.
Each process builds its metrics when it first records one: a metric belongs to the Ray worker
that made it, and none exists outside Ray (the CLI and the tests import this module too).
"""

from __future__ import annotations

import time
from functools import cache

from ray.serve.metrics import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]
"""Bucket bounds for every duration: a filter on a thumbnail to a stage at its timeout."""
BATCH_SIZES = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32]
REQUESTS = "toonserve_requests"
REQUEST_SECONDS = "toonserve_request_seconds"
STAGE_SECONDS = "toonserve_stage_seconds"
REFUSALS = "toonserve_refusals"
BATCH_SIZE = "toonserve_batch_size"
QUEUE_WAIT_SECONDS = "toonserve_queue_wait_seconds"
WEIGHTS_LOADED = "toonserve_weights_loaded"
PROXY_REFUSALS = "toonserve_proxy_refusals"
REPLICA_METRICS = (REQUESTS, REQUEST_SECONDS, STAGE_SECONDS, REFUSALS, BATCH_SIZE, QUEUE_WAIT_SECONDS, WEIGHTS_LOADED)
"""What the replicas record; PROXY_REFUSALS is the proxy's."""
EXPORTED_PREFIX = "ray_"
"""What Ray puts before every metric's name when it exports it."""
EFFECT_STATE = "effect"
"""Where the ingress notes a request's effect for `RequestMetrics`: the ASGI scope's state."""


class IngressMetrics:
    def __init__(self) -> None:
        self.requests = Counter(
            REQUESTS,
            description="HTTP requests the ingress answered, by effect and status",
            tag_keys=("effect", "status"),
        )
        self.latency = Histogram(
            REQUEST_SECONDS, description="time to answer, by effect", boundaries=SECONDS, tag_keys=("effect",)
        )
        self.stages = Histogram(
            STAGE_SECONDS,
            description="time in each stage of a request (its Server-Timing entries)",
            boundaries=SECONDS,
            tag_keys=("stage",),
        )
        self.refusals = Counter(
            REFUSALS, description="error answers of the ingress, by their JSON error code", tag_keys=("reason",)
        )


class ModelMetrics:
    def __init__(self) -> None:
        self.batch_size = Histogram(
            BATCH_SIZE, description="images per forward batch", boundaries=BATCH_SIZES, tag_keys=("stage",)
        )
        self.queue_wait = Histogram(
            QUEUE_WAIT_SECONDS,
            description="time an image waited for its batch to start, on the model replica",
            boundaries=SECONDS,
            tag_keys=("stage",),
        )
        self.weights = Gauge(
            WEIGHTS_LOADED,
            description="1 where a model's weights are loaded, 0 where missing; origin: weights_dir, cache, download, random",
            tag_keys=("model", "origin"),
        )


class ProxyMetrics:
    def __init__(self) -> None:
        self.refusals = Counter(
            PROXY_REFUSALS,
            description="answers the proxy gave without the ingress (a full queue, a lost ingress replica), by reason",
            tag_keys=("reason",),
        )


@cache
def ingress_metrics() -> IngressMetrics:
    return IngressMetrics()


@cache
def model_metrics() -> ModelMetrics:
    return ModelMetrics()


@cache
def proxy_metrics() -> ProxyMetrics:
    return ProxyMetrics()


class RequestMetrics:
    """A pure ASGI middleware on the ingress: every answer counted by effect and status, and timed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what an exception that escapes the app becomes

        async def noting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting)
        finally:
            effect = _effect_of(scope)
            metrics = ingress_metrics()
            metrics.requests.inc(tags={"effect": effect, "status": str(status)})
            metrics.latency.observe(time.perf_counter() - started, tags={"effect": effect})


def _effect_of(scope: Scope) -> str:
    """The effect the ingress noted; else the route's name (`healthz`, `page`); else `unrouted`."""
    noted = scope.get("state", {}).get(EFFECT_STATE)
    if noted:
        return str(noted)
    route = scope.get("route")
    return str(getattr(route, "name", None) or "unrouted")
