"""Overload and timeouts over real HTTP: fast, polite refusals, and nothing left unanswered."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from core.settings import Settings
from deployments.metrics import EXPORTED_PREFIX, PROXY_REFUSALS
from tests.images import encode, photo
from tests.serving import FILTERS_ONLY, deploy, exported, local_serve
from toonserve.client import toonserve_client

pytestmark = pytest.mark.slow

CROWDED = {
    "Ingress": {"autoscaling_config": {"min_replicas": 1, "max_replicas": 1}, "max_ongoing_requests": 1, "max_queued_requests": 1}
}
"""An ingress that holds one request and queues one: the proxy refuses the rest itself."""
ONE_AT_A_TIME = {
    "ArtFilters": {
        "autoscaling_config": {"min_replicas": 1, "max_replicas": 1},
        "max_ongoing_requests": 1,
        "max_queued_requests": 1,
    }
}


@pytest.fixture(scope="module")
def client(weights_dir: Path) -> Iterator[httpx.Client]:
    settings = Settings(weights_dir=weights_dir, cache_dir=weights_dir / "cache", download_weights=False)
    # Every test here sends filters: the apps serve those alone, with no model replicas to start.
    with local_serve() as url:
        deploy(settings, "tight", "/tight", catalogue=FILTERS_ONLY, options=ONE_AT_A_TIME)
        deploy(settings, "crowded", "/crowded", catalogue=FILTERS_ONLY, options=CROWDED)
        deploy(settings.model_copy(update={"stage_timeout_s": 0.05}), "hasty", "/hasty", catalogue=FILTERS_ONLY)
        with httpx.Client(base_url=url, timeout=120) as http:
            yield http


def test_overload_is_refused_with_503_and_retry_after(client: httpx.Client) -> None:
    data = encode(photo(1600, 1200), "JPEG")
    with ThreadPoolExecutor(10) as pool:
        responses = list(pool.map(lambda _: client.post("/tight/v1/filters/oil_painting?max_side=1600", content=data), range(10)))
    statuses = [r.status_code for r in responses]
    assert set(statuses) == {200, 503}, statuses
    for response in responses:
        if response.status_code == 503:
            assert response.json()["error"]["code"] == "overloaded"
            assert int(response.headers["retry-after"]) >= 1


def test_every_refusal_the_proxy_makes_is_worded_and_says_when_to_retry(client: httpx.Client) -> None:
    data = encode(photo(1600, 1200), "JPEG")
    with ThreadPoolExecutor(12) as pool:
        responses = list(
            pool.map(lambda _: client.post("/crowded/v1/filters/oil_painting?max_side=1600", content=data), range(12))
        )
    refused = [r for r in responses if r.status_code == 503]
    assert refused
    assert {r.status_code for r in responses} == {200, 503}
    for response in refused:
        assert response.json()["error"]["code"] == "overloaded", response.text
        assert int(response.headers["retry-after"]) >= 1
    counted = exported({f"{EXPORTED_PREFIX}{PROXY_REFUSALS}"})
    assert {s.labels["reason"] for samples in counted.values() for s in samples if s.name.endswith("_total")} == {"overloaded"}


def test_liveness_answers_at_once_while_every_slot_is_taken(client: httpx.Client) -> None:
    data = encode(photo(1600, 1200), "JPEG")
    # A connection per probe, as a load balancer probes: with httpx's pool shared by all 44 threads,
    # a probe once failed in the client's own read of a pooled socket (EBADF), not in the service.
    fresh = httpx.Limits(max_keepalive_connections=0)
    with (
        httpx.Client(base_url=client.base_url, limits=fresh) as prober,
        ThreadPoolExecutor(12) as busy,
        ThreadPoolExecutor(32) as pool,
    ):
        work = [busy.submit(client.post, "/crowded/v1/filters/oil_painting?max_side=1600", content=data) for _ in range(12)]
        probes = list(pool.map(lambda _: prober.get("/healthz"), range(300)))
        assert [r.status_code for r in probes] == [200] * 300
        assert {f.result().status_code for f in work} <= {200, 503}


def test_the_retrying_client_gets_every_overloaded_request_through(client: httpx.Client) -> None:
    data = encode(photo(1600, 1200), "JPEG")
    with toonserve_client(str(client.base_url)) as retrying, ThreadPoolExecutor(10) as pool:
        responses = list(
            pool.map(lambda _: retrying.post("/tight/v1/filters/oil_painting?max_side=1600", content=data), range(10))
        )
    assert [r.status_code for r in responses] == [200] * 10


def test_a_slow_pipeline_times_out_with_504(client: httpx.Client) -> None:
    response = client.post("/hasty/v1/filters/oil_painting?max_side=1600", content=encode(photo(1600, 1200), "JPEG"))
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "timeout"
