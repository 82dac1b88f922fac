"""toonserve on a local Ray inside the benchmark's own process, and what its replicas hold."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import psutil
import ray
from ray import serve
from ray.serve.context import _get_global_client
from ray.serve.deployment import Deployment
from ray.serve.schema import ServeInstanceDetails

from bench.load import LoadResult, run_load
from core.settings import Settings
from deployments.environment import NODE_ENV
from deployments.ingress import Ingress
from serve_app import AppArgs, build_app

ROOT = Path(__file__).resolve().parent.parent
CORES = os.cpu_count() or 1
APP = "toonserve"
PORT = 8300
"""The benchmarks' HTTP port, off `make run`'s 8000."""
INGRESS = cast(Deployment, Ingress).name  # mypy sees the class, not the Deployment made of it


@contextmanager
def served(
    settings: Settings, port: int, options: dict[str, dict[str, Any]] | None = None, cpus: int = CORES, gpus: int = 0
) -> Iterator[str]:
    """Yields the base URL; `options` overrides deployments' options by name (serve_app.AppArgs);
    `cpus` and `gpus` are what the local Ray declares."""
    os.environ.update(NODE_ENV)  # as every node starts: Ray's processes inherit it
    ray.init(
        num_cpus=cpus,
        num_gpus=gpus,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}},
    )
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(build_app(AppArgs(settings=settings, options=options or {})), name=APP, route_prefix="/")
        yield f"http://127.0.0.1:{port}"
    finally:
        serve.shutdown()
        ray.shutdown()


def measured(url: str, body: bytes, concurrency: int, requests: int) -> LoadResult:
    """One load level, with the CPU seconds each process on the machine spent per image."""
    before = cpu_seconds()
    outcome = run_load(url, body, concurrency, requests)
    used = cpu_by_role(before, cpu_seconds())
    return replace(outcome, cpu_s_per_image={role: seconds / max(1, outcome.ok) for role, seconds in used.items()})


def running_replicas(deployment: str) -> int:
    """Replicas of `deployment` that are running now."""
    status = serve.status().applications[APP].deployments[deployment]
    return int(status.replica_states.get("RUNNING", 0))


def replica_memory_mb() -> dict[str, dict[str, float]]:
    """RSS and USS of each replica process. RSS counts the object store's shared pages a replica
    has mapped; USS is the memory that is the replica's alone."""
    memory: dict[str, dict[str, float]] = {}
    for process in psutil.process_iter(["cmdline"]):
        command = " ".join(process.info["cmdline"] or [])
        if f"ServeReplica:{APP}:" not in command:
            continue
        name = command.split(f"ServeReplica:{APP}:")[1].split()[0]
        info = process.memory_full_info()
        memory[f"{name} (pid {process.pid})"] = {"rss": info.rss / 2**20, "uss": info.uss / 2**20}
    return memory


def role(process: psutil.Process) -> str:
    """What a process on this machine is, for CPU accounting: a replica's deployment, a Ray part, or other."""
    try:
        command = " ".join(process.cmdline())
    except psutil.Error:
        return "gone"
    if f"ServeReplica:{APP}:" in command:
        return command.split(f"ServeReplica:{APP}:")[1].split(".")[0].split()[0]
    for part in ("ProxyActor", "ServeController", "raylet", "gcs_server", "DashboardAgent", "RuntimeEnvAgent", "dashboard.py"):
        if part in command:
            return part.removesuffix(".py")
    if process.pid == os.getpid():
        return "load generator (this process)"
    return "ray, other" if "ray" in command else "other"


def cpu_seconds() -> dict[int, tuple[str, float]]:
    """pid -> (role, user + system CPU seconds so far) of every process on the machine."""
    found = {}
    for process in psutil.process_iter():
        try:
            times = process.cpu_times()
            found[process.pid] = (role(process), times.user + times.system)
        except psutil.Error:
            continue
    return found


def cpu_by_role(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
    """CPU seconds each role used between two cpu_seconds() readings, most first."""
    used: dict[str, float] = {}
    for pid, (name, seconds) in after.items():
        used[name] = used.get(name, 0.0) + seconds - before.get(pid, (name, 0.0))[1]
    return dict(sorted(used.items(), key=lambda item: -item[1]))


def grow(url: str, body: bytes, concurrency: int, deployment: str, limit_s: float = 180.0) -> float:
    """Drives `url` at `concurrency` until `deployment` and the Ingress, which every request passes,
    run the replicas their autoscaling settles on at that load (or `limit_s` passes); the seconds it
    took. Throughput measured after it is the replicas', not their start's: a start takes seconds of CPU."""
    wanted = settled_replicas(concurrency, (INGRESS, deployment))
    start = time.monotonic()
    while any(running_replicas(d) < n for d, n in wanted.items()) and time.monotonic() - start < limit_s:
        run_load(url, body, concurrency, concurrency)
    return time.monotonic() - start


def settled_replicas(concurrency: int, deployments: Iterable[str]) -> dict[str, int]:
    """Deployment -> the replicas Serve's autoscaling settles on with `concurrency` requests in flight
    at it (over its target_ongoing_requests, rounded up, at most max_replicas), as the running app has it."""
    details = ServeInstanceDetails(**_get_global_client().get_serve_details())
    settled = {}
    for name in deployments:
        config = details.applications[APP].deployments[name].deployment_config.autoscaling_config
        settled[name] = min(config["max_replicas"], math.ceil(concurrency / config["target_ongoing_requests"])) if config else 1
    return settled
