"""A closed-loop HTTP load generator: `concurrency` clients send `requests` posts in all; how many a level sends."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
import numpy as np

from bench.photos import jpeg, photo
from core.stages import ANIME_STAGE, FILTER_STAGE, MATTING_STAGE

RATIO_CONCURRENCY = {"anime": 8, "matte_u2netp": 16, "matte_u2net_human_seg": 16}
"""Workload -> the concurrency its served figures are compared at: against raw, the baseline, other shapes."""


def requests_at(workload: str, concurrency: int) -> int:
    """A load level's requests: 3 rounds of the closed loop, 8 at the concurrency a ratio is read at.
    A loop's last requests leave cores idle for about one request's time: a few % of 3 rounds."""
    return (8 if RATIO_CONCURRENCY.get(workload) == concurrency else 3) * concurrency


@dataclass(frozen=True)
class LoadResult:
    concurrency: int
    requests: int
    ok: int
    wall_s: float
    images_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    statuses: dict[str, int]
    cpu_s_per_image: dict[str, float] = field(default_factory=dict)
    """Process role (bench.service.role) -> CPU seconds per image, summed over every process on the machine."""


async def _load(url: str, body: bytes, concurrency: int, requests: int, timeout_s: float) -> LoadResult:
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    remaining = iter(range(requests))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=timeout_s, limits=limits) as client:

        async def worker() -> None:
            for _ in remaining:
                start = time.perf_counter()
                try:
                    response = await client.post(url, content=body)
                    statuses[str(response.status_code)] += 1
                except httpx.HTTPError as error:
                    statuses[type(error).__name__] += 1
                latencies.append((time.perf_counter() - start) * 1e3)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - start
    ok = statuses.get("200", 0)
    p50, p95, p99 = (float(np.percentile(latencies, q)) for q in (50, 95, 99))
    return LoadResult(concurrency, requests, ok, wall, ok / wall, p50, p95, p99, dict(statuses))


def run_load(url: str, body: bytes, concurrency: int, requests: int, timeout_s: float = 300.0) -> LoadResult:
    return asyncio.run(_load(url, body, concurrency, requests, timeout_s))


@dataclass(frozen=True)
class Workload:
    path: str
    """Path and query."""
    body: bytes
    """A JPEG."""
    deployment: str
    """The deployment whose replicas do its heavy work."""


def workloads() -> dict[str, Workload]:
    """The same photos for toonserve and the baseline."""
    landscape, _ = photo(1024, 768)
    hd, _ = photo(1920, 1080)
    square, _ = photo(512, 512)
    anime, matting, filters = ANIME_STAGE.deployment, MATTING_STAGE.deployment, FILTER_STAGE.deployment
    return {
        "anime": Workload("/v1/anime?max_side=512", jpeg(landscape), anime),
        "art": Workload("/v1/art?max_side=1920", jpeg(hd), filters),
        "matte_u2netp": Workload("/v1/matte?model=u2netp&max_side=320", jpeg(square), matting),
        "matte_u2net_human_seg": Workload("/v1/matte?model=u2net_human_seg&max_side=320", jpeg(square), matting),
    }
