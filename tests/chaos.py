"""Killing toonserve's processes under a steady load through `toonserve.client`: the chaos tests and
`python -m bench.chaos` share it.

A victim is a deployment of the app (one of its replicas is killed) or PROXY (Serve's HTTP proxy).
A fault counts as ridden out when a process of its kind that was not there before runs and Serve
reports the kind healthy again: every replica RUNNING, or every proxy HEALTHY.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from itertools import count

import httpx
import psutil
from ray.serve.schema import ProxyStatus, ServeStatus

from toonserve.client import async_toonserve_client

PROXY = "proxy"
REPLACED_WITHIN_S = 30.0
"""The issue's bound on a replacement: past it, a fault is reported as not ridden out."""


@dataclass(frozen=True)
class Outcome:
    sent_s: float
    path: str
    status: int | str


@dataclass(frozen=True)
class Fault:
    killed: str
    at_s: float
    replaced_after_s: float


def process_name(app: str, kind: str) -> str:
    return "ray::ProxyActor" if kind == PROXY else f"ray::ServeReplica:{app}:{kind}"


def processes(root: psutil.Process, app: str, kind: str) -> list[psutil.Process]:
    """The running processes of a kind among `root`'s descendants (the driver, or `toonserve serve`)."""
    found = []
    for process in root.children(recursive=True):
        try:
            # A busy actor's title names the method it runs: ray::ServeReplica:app:Ingress.handle_request.
            if process.name().split(".")[0] == process_name(app, kind):
                found.append(process)
        except psutil.NoSuchProcess:
            continue
    return found


Healthy = Callable[[str], Awaitable[bool]]
"""Whether Serve reports a kind healthy: asked in the driver (tests), or of the dashboard (bench.chaos)."""


def healthy_in(status: ServeStatus, app: str, kind: str) -> bool:
    if kind == PROXY:
        return bool(status.proxies) and all(p == ProxyStatus.HEALTHY for p in status.proxies.values())
    deployment = status.applications[app].deployments[kind]
    return deployment.status == "HEALTHY" and set(deployment.replica_states) == {"RUNNING"}


async def steady_load(
    url: str, rate: float, until: asyncio.Event, requests: Sequence[tuple[str, bytes]], outcomes: list[Outcome]
) -> None:
    """Open loop: `rate` requests a second until `until` is set, taking `requests` (path, body) in turn."""
    start = time.perf_counter()

    async def one(client: httpx.AsyncClient, path: str, body: bytes, sent: float) -> None:
        try:
            status: int | str = (await client.post(path, content=body)).status_code
        except httpx.HTTPError as error:
            status = type(error).__name__
        outcomes.append(Outcome(sent, path, status))

    async with async_toonserve_client(url, limits=httpx.Limits(max_connections=64)) as client:
        tasks = []
        for n in count():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(until.wait(), max(0.0, start + n / rate - time.perf_counter()))
            if until.is_set():
                break
            path, body = requests[n % len(requests)]
            tasks.append(asyncio.create_task(one(client, path, body, time.perf_counter() - start)))
        await asyncio.gather(*tasks)


async def kill_and_wait(root: psutil.Process, app: str, kind: str, healthy: Healthy, started: float) -> Fault:
    """SIGKILL one process of `kind`; returns once it is replaced and healthy, or REPLACED_WITHIN_S has passed."""
    before = processes(root, app, kind)
    before[0].kill()
    killed = time.perf_counter()
    while time.perf_counter() - killed < REPLACED_WITHIN_S:
        await asyncio.sleep(0.2)
        # A new process, not one of the kind's other replicas: Serve may still report the dead one RUNNING.
        new = {p.pid for p in processes(root, app, kind)} - {p.pid for p in before}
        if new and await healthy(kind):
            return Fault(kind, killed - started, time.perf_counter() - killed)
    return Fault(kind, killed - started, float("inf"))


async def faults(root: psutil.Process, app: str, victims: Sequence[str], healthy: Healthy, every_s: float) -> list[Fault]:
    """Kills each victim in turn, `every_s` after the one before was ridden out: a replacement leaves a
    backlog that takes seconds to drain, and the next fault should strike a service that has served it."""
    found = []
    start = time.perf_counter()
    for kind in victims:
        await asyncio.sleep(every_s)
        found.append(await kill_and_wait(root, app, kind, healthy, start))
    return found


async def chaos(
    url: str,
    root: psutil.Process,
    app: str,
    victims: Sequence[str],
    healthy: Healthy,
    every_s: float,
    rate: float,
    requests: Sequence[tuple[str, bytes]],
) -> tuple[list[Fault], list[Outcome]]:
    """The steady load from `every_s` before the first fault until `every_s` after the last is ridden
    out (or given up on), and the faults."""
    outcomes: list[Outcome] = []
    calm = asyncio.Event()

    async def faults_then_calm() -> list[Fault]:
        try:
            found = await faults(root, app, victims, healthy, every_s)
            await asyncio.sleep(every_s)
            return found
        finally:
            calm.set()  # a fault that fails to happen ends the load too

    found, _ = await asyncio.gather(faults_then_calm(), steady_load(url, rate, calm, requests, outcomes))
    return found, outcomes
