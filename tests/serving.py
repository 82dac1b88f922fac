"""Starting toonserve on a real local Ray for tests, and tearing it down."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil
import ray
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from ray import serve
from ray.serve.context import _disconnect, _get_global_client

from core.catalogue import DEFAULT_CATALOGUE
from core.settings import Settings
from deployments.environment import NODE_ENV
from serve_app import AppArgs, build_app

ROOT = Path(__file__).resolve().parent.parent
# Replica processes import the checkout (deployments/, core/, models/, and tests/ for test-only catalogues).
RUNTIME_ENV = {"env_vars": {"PYTHONPATH": str(ROOT)}}
FILTERS_ONLY = "tests.extra_effects:FILTERS"
"""The catalogue of the filters alone: an app with no model replicas, quick to start."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def local_serve(num_cpus: int = 4) -> Iterator[str]:
    """A fresh local Ray with Serve's HTTP proxy on a free loopback port; yields its base URL."""
    os.environ.update(NODE_ENV)  # Ray's processes inherit it, as on every node
    ray.init(num_cpus=num_cpus, include_dashboard=False, runtime_env=RUNTIME_ENV, log_to_driver=False)
    try:
        port = free_port()  # after Ray has taken its own ports (its dashboard agent's 52365 among them)
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_ray()


def stop_ray() -> None:
    """Ray's shutdown ends Serve's processes with it; serve.shutdown() would first drain each replica,
    about 5 s a module. Only the driver's handles stop first: their routers would start a new Ray."""
    client = _get_global_client(raise_if_no_controller_running=False)
    if client is not None:
        client.shutdown_cached_handles()
    _disconnect()
    ray.shutdown()


def metrics_url() -> str:
    """Where the local node's Ray exports its metrics and toonserve's, as Prometheus text."""
    return f"http://127.0.0.1:{ray._private.worker._global_node.metrics_export_port}/metrics"


def exported(names: set[str], limit_s: float = 90) -> dict[str, list[Sample]]:
    """The samples of each named metric family, once Ray exports all of them (its workers report every few seconds)."""
    deadline = time.monotonic() + limit_s
    while True:
        text = httpx.get(metrics_url(), timeout=10).text
        found = {f.name: f.samples for f in text_string_to_metric_families(text) if f.name in names}
        if set(found) == names or time.monotonic() > deadline:
            return found
        time.sleep(2)


def deploy(
    settings: Settings,
    name: str,
    route_prefix: str,
    catalogue: str = DEFAULT_CATALOGUE,
    options: dict[str, dict[str, Any]] | None = None,
) -> None:
    app = build_app(AppArgs(settings=settings, catalogue=catalogue, options=options or {}))
    serve.run(app, name=name, route_prefix=route_prefix)


@contextmanager
def in_background(command: list[str], url: str, env: dict[str, str], limit_s: float = 600) -> Iterator[psutil.Process]:
    """Runs a command that serves toonserve at `url` (`make run`, `toonserve serve`) until its /readyz
    answers 200; at the end, Ctrl-C to its process group, as a person stops it."""
    server = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + limit_s
        while not _ready(url):
            if server.poll() is not None:
                raise RuntimeError(f"{' '.join(command)} exited with {server.returncode} before it was ready")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{' '.join(command)}: nothing ready at {url} within {limit_s} s")
            time.sleep(0.25)
        yield psutil.Process(server.pid)
    finally:
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(timeout=120)
        except subprocess.TimeoutExpired:
            # Ray's shutdown can hang on a Ctrl-C after a long run; then, as a person would, kill it all.
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
