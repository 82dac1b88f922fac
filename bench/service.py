"""toonserve on a local Ray inside the benchmark's own process, and what its replicas hold."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import ray
from ray import serve
from ray.serve.context import _get_global_client
from ray.serve.schema import ServeInstanceDetails

from bench.load import run_load
from core.settings import Settings
from deployments.environment import NODE_ENV
from serve_app import AppArgs, build_app

ROOT = Path(__file__).resolve().parent.parent
CORES = os.cpu_count() or 1
APP = "toonserve"


@contextmanager
def served(settings: Settings, port: int, options: dict[str, dict[str, Any]] | None = None) -> Iterator[str]:
    """Yields the base URL; `options` overrides deployments' options by name (serve_app.AppArgs)."""
    os.environ.update(NODE_ENV)  # as every node starts: Ray's processes inherit it
    ray.init(num_cpus=CORES, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(build_app(AppArgs(settings=settings, options=options or {})), name=APP, route_prefix="/")
        yield f"http://127.0.0.1:{port}"
    finally:
        serve.shutdown()
        ray.shutdown()


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


def grow(url: str, body: bytes, concurrency: int, deployment: str, replicas: int, limit_s: float = 180.0) -> float:
    """Drives `url` at `concurrency` until `deployment` runs `replicas` replicas (or `limit_s` passes);
    the seconds it took. Throughput measured after it is the replicas', not their scale-up's."""
    start = time.monotonic()
    while running_replicas(deployment) < replicas and time.monotonic() - start < limit_s:
        run_load(url, body, concurrency, concurrency)
    return time.monotonic() - start


def max_replicas() -> dict[str, int]:
    """Deployment -> the most replicas its autoscaling config allows, as the running app has it."""
    details = ServeInstanceDetails(**_get_global_client().get_serve_details())
    deployments = details.applications[APP].deployments
    return {
        name: d.deployment_config.autoscaling_config.get("max_replicas", 1) if d.deployment_config.autoscaling_config else 1
        for name, d in deployments.items()
    }
