"""An open-loop load generator with arrival profiles, and the replicas of each deployment over time.

Open loop: requests leave at their scheduled instants whether or not earlier ones have answered,
as a crowd of users would, so that overload shows as 503s and latency instead of being hidden by
a client that waits. Profiles (Poisson arrivals, seeded):
- steady: `rate` requests/s throughout;
- burst: `rate`, then `rate x peak` for `burst_s` seconds from `burst_at_s`, then `rate` again;
- ramp: from `rate` up to `rate x peak` in a straight line over the run.
While it runs, a sampler reads each deployment's RUNNING replicas (and the nodes they are on)
from Serve's REST API once a second. `python -m bench.burst` runs it from the command line and
plots it; the simulated-cluster tests drive their bursts with it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import numpy as np
from tqdm import tqdm

from toonserve.client import async_toonserve_client, key_headers
from toonserve.serve_admin import DEFAULT_DASHBOARD, ServeAdmin

Profile = Literal["steady", "burst", "ramp"]


@dataclass(frozen=True)
class LoadShape:
    profile: Profile = "burst"
    rate: float = 1.0
    peak: float = 10.0
    duration_s: float = 120.0
    burst_at_s: float = 20.0
    burst_s: float = 30.0
    seed: int = 0

    def rate_at(self, t: float) -> float:
        if self.profile == "burst" and self.burst_at_s <= t < self.burst_at_s + self.burst_s:
            return self.rate * self.peak
        if self.profile == "ramp":
            return self.rate * (1 + (self.peak - 1) * t / self.duration_s)
        return self.rate

    def arrivals(self) -> list[float]:
        """Send instants in seconds from the start: a Poisson process of rate `rate_at(t)` (by thinning)."""
        rng = np.random.default_rng(self.seed)
        ceiling = self.rate * max(self.peak, 1.0)
        instants: list[float] = []
        t = 0.0
        while True:
            t += float(rng.exponential(1.0 / ceiling))
            if t >= self.duration_s:
                return instants
            if rng.random() < self.rate_at(t) / ceiling:
                instants.append(t)


@dataclass(frozen=True)
class Outcome:
    sent_s: float
    latency_ms: float
    status: str
    refusal: str | None = None
    """For an answer other than 200: its JSON error code (or `not json`), and `+retry-after` if it said when."""


@dataclass(frozen=True)
class Sample:
    t_s: float
    replicas: dict[str, int]
    nodes: dict[str, int]  # deployment -> distinct nodes its RUNNING replicas are on
    all_nodes: int


@dataclass
class BurstReport:
    url: str
    shape: LoadShape
    retried: bool
    outcomes: list[Outcome] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    sampler_errors: dict[str, int] = field(default_factory=dict)
    """Failed reads of Serve's REST API, by kind: a wrong token or dashboard shows up here."""
    per_second: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    probe: dict[str, Any] | None = None
    """The liveness probe's answers during the run, where one was asked for."""

    def analyse(self, watched: str | None) -> None:
        seconds = int(np.ceil(self.shape.duration_s)) + 1
        finished = max((o.sent_s + o.latency_ms / 1e3 for o in self.outcomes), default=0.0)
        seconds = max(seconds, int(np.ceil(finished)) + 1)
        self.per_second = []
        for second in range(seconds):
            sent = [o for o in self.outcomes if second <= o.sent_s < second + 1]
            done = [o for o in self.outcomes if second <= o.sent_s + o.latency_ms / 1e3 < second + 1]
            ok_latencies = [o.latency_ms for o in done if o.status == "200"]
            replicas = next((s.replicas for s in reversed(self.samples) if s.t_s <= second + 1), {})
            self.per_second.append(
                {
                    "t_s": second,
                    "offered_rps": len(sent),
                    "ok_rps": sum(o.status == "200" for o in done),
                    "rejected_rps": sum(o.status == "503" for o in done),
                    "p50_ms": float(np.percentile(ok_latencies, 50)) if ok_latencies else None,
                    "p99_ms": float(np.percentile(ok_latencies, 99)) if ok_latencies else None,
                    "replicas": replicas,
                }
            )
        statuses = Counter(o.status for o in self.outcomes)
        ok = [o.latency_ms for o in self.outcomes if o.status == "200"]
        self.summary = {
            "requests": len(self.outcomes),
            "statuses": dict(statuses),
            "share_503": statuses.get("503", 0) / max(len(self.outcomes), 1),
            "refusals": dict(Counter(f"{o.status} {o.refusal}" for o in self.outcomes if o.refusal)),
            "503_without_retry_after": sum(o.status == "503" and "+retry-after" not in (o.refusal or "") for o in self.outcomes),
            "peak_offered_rps": max((s["offered_rps"] for s in self.per_second), default=0),
            "peak_ok_rps": max((s["ok_rps"] for s in self.per_second), default=0),
            "p50_ms": float(np.percentile(ok, 50)) if ok else None,
            "p99_ms": float(np.percentile(ok, 99)) if ok else None,
            "max_replicas": {
                name: max(s.replicas.get(name, 0) for s in self.samples) for name in {n for s in self.samples for n in s.replicas}
            },
            "max_nodes": {
                name: max(s.nodes.get(name, 0) for s in self.samples) for name in {n for s in self.samples for n in s.nodes}
            },
            "max_nodes_with_replicas": max((s.all_nodes for s in self.samples), default=0),
            "liveness_probe": self.probe,
        }
        if watched and self.samples and self.shape.profile == "burst":
            self.summary.update(scaling_times(self.samples, watched, self.shape))


def scaling_times(samples: Sequence[Sample], watched: str, shape: LoadShape) -> dict[str, Any]:
    """Seconds from the burst's start until `watched` has more replicas than before it, and from the
    burst's end until it is back to that count (None: not within the run)."""
    before = [s.replicas.get(watched, 0) for s in samples if s.t_s <= shape.burst_at_s]
    baseline = before[-1] if before else samples[0].replicas.get(watched, 0)
    end = shape.burst_at_s + shape.burst_s
    up = next(
        (s.t_s - shape.burst_at_s for s in samples if s.t_s > shape.burst_at_s and s.replicas.get(watched, 0) > baseline), None
    )
    down = next((s.t_s - end for s in samples if s.t_s > end and s.replicas.get(watched, 0) <= baseline), None)
    return {"watched": watched, "baseline_replicas": baseline, "scale_up_s": up, "scale_down_after_burst_s": down}


class HealthProbe(threading.Thread):
    """A load balancer's view: GET `url` (liveness) every `period_s`, one at a time, and how long each took."""

    def __init__(self, url: str, period_s: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.url, self.period_s = url, period_s
        self.answers: list[tuple[float, str]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop_event.is_set():
                start = time.perf_counter()
                try:
                    status = str(client.get(self.url).status_code)
                except httpx.HTTPError as error:
                    status = type(error).__name__
                self.answers.append(((time.perf_counter() - start) * 1e3, status))
                self._stop_event.wait(self.period_s)

    def stop(self) -> dict[str, Any]:
        self._stop_event.set()
        self.join()
        latencies = sorted(ms for ms, _ in self.answers)
        return {
            "url": self.url,
            "probes": len(latencies),
            "statuses": dict(Counter(status for _, status in self.answers)),
            "p50_ms": float(np.percentile(latencies, 50)) if latencies else None,
            "p95_ms": float(np.percentile(latencies, 95)) if latencies else None,
            "max_ms": latencies[-1] if latencies else None,
        }


class ReplicaSampler(threading.Thread):
    """Reads RUNNING replicas per deployment from Serve's REST API every `period_s`."""

    def __init__(self, admin: ServeAdmin, app: str, period_s: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.admin, self.app, self.period_s = admin, app, period_s
        self.samples: list[Sample] = []
        self.errors: Counter[str] = Counter()
        self._stop_event = threading.Event()
        self._start = time.monotonic()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                replicas = [r for r in self.admin.replicas(self.app) if r.state == "RUNNING"]
                counts = Counter(r.deployment for r in replicas)
                nodes = Counter(deployment for deployment, _ in {(r.deployment, r.node_id) for r in replicas})
                t = time.monotonic() - self._start
                self.samples.append(Sample(t, dict(counts), dict(nodes), len({r.node_id for r in replicas})))
            except httpx.HTTPStatusError as error:
                self.errors[f"HTTP {error.response.status_code}"] += 1
            except httpx.HTTPError as error:
                self.errors[type(error).__name__] += 1
            self._stop_event.wait(self.period_s)

    def stop(self) -> list[Sample]:
        self._stop_event.set()
        self.join()
        return self.samples


def _refusal(response: httpx.Response) -> str | None:
    if response.status_code == 200:
        return None
    try:
        code = str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        code = "not json"
    return code + ("+retry-after" if "retry-after" in response.headers else "")


async def _drive(
    url: str,
    body: bytes,
    instants: list[float],
    retry: bool,
    timeout_s: float,
    on_done: Callable[[], object],
    key: str | None,
) -> list[Outcome]:
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
    client = async_toonserve_client(url, key=key, timeout_s=timeout_s, limits=limits) if retry else None
    plain = httpx.AsyncClient(timeout=timeout_s, limits=limits, headers=key_headers(key))
    start = time.perf_counter()

    async def one(at: float) -> Outcome:
        await asyncio.sleep(max(0.0, at - (time.perf_counter() - start)))
        sent = time.perf_counter()
        try:
            response = await (client or plain).post(url, content=body)
            status, refusal = str(response.status_code), _refusal(response)
        except httpx.HTTPError as error:
            status, refusal = type(error).__name__, None
        on_done()
        return Outcome(sent - start, (time.perf_counter() - sent) * 1e3, status, refusal)

    try:
        return list(await asyncio.gather(*(one(at) for at in instants)))
    finally:
        await plain.aclose()
        if client is not None:
            await client.aclose()


def run_burst(
    url: str,
    body: bytes,
    shape: LoadShape,
    *,
    dashboard: str | None = DEFAULT_DASHBOARD,
    app: str = "toonserve",
    watched: str | None = None,
    retry: bool = False,
    timeout_s: float = 120.0,
    progress: bool = False,
    key: str | None = None,
    probe: str | None = None,
) -> BurstReport:
    """Sends `body` to `url` on the profile's schedule and samples replicas while it runs; with `probe`
    (a liveness URL), probes it as a load balancer would."""
    report = BurstReport(url, shape, retry)
    admin = ServeAdmin(dashboard) if dashboard else None
    sampler = ReplicaSampler(admin, app) if admin else None
    if sampler:
        sampler.start()
    prober = HealthProbe(probe) if probe else None
    if prober:
        prober.start()
    instants = shape.arrivals()
    bar = tqdm(total=len(instants), unit="req", desc="answered", disable=not progress)
    try:
        report.outcomes = asyncio.run(_drive(url, body, instants, retry, timeout_s, bar.update, key))
    finally:
        bar.close()
        if sampler:
            report.samples = sampler.stop()
            report.sampler_errors = dict(sampler.errors)
        if admin:
            admin.close()
        if prober:
            report.probe = prober.stop()
    report.analyse(watched)
    return report
