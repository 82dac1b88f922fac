"""A node-autoscaling Ray cluster on this one machine: Ray's `fake_multinode` provider.

`RAY_FAKE_CLUSTER=1 ray start --head --autoscaling-config=FILE` runs the real autoscaler, whose
provider starts each "node" as another raylet on this machine, with the resources its node type
declares (a GPU too: torch then sees none, and the models fall back to the CPU). Ray's own helper
for this (ray.cluster_utils.AutoscalingCluster) reads an example config that the wheel lacks and
runs `ray stop --force`, which would also stop any other Ray on the machine; this one writes its
config itself, picks free ports, and stops only its own processes, which it finds by a marker in
their environment.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import ray

from tests.serving import ROOT, free_port

HEAD_TYPE = "ray.head.default"
MARKER = "TOONSERVE_FAKE_CLUSTER"


def autoscaling_config(worker_types: dict[str, dict[str, Any]], gcs_address: str, idle_timeout_minutes: float) -> dict[str, Any]:
    return {
        "cluster_name": "toonserve-fake",
        "max_workers": sum(t["max_workers"] for t in worker_types.values()),
        "provider": {
            "type": "fake_multinode",
            "use_node_id_as_ip": True,
            "disable_node_updaters": True,
            "disable_launch_config_check": True,
            "gcs_address": gcs_address,
        },
        "available_node_types": {
            HEAD_TYPE: {"resources": {"CPU": 0}, "node_config": {}, "max_workers": 0},
            **{name: {"node_config": {}, "min_workers": 0, **spec} for name, spec in worker_types.items()},
        },
        "head_node_type": HEAD_TYPE,
        "auth": {},
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": idle_timeout_minutes,
        "docker": {},
        "initialization_commands": [],
        "setup_commands": [],
        "head_setup_commands": [],
        "worker_setup_commands": [],
        "head_start_ray_commands": [],
        "worker_start_ray_commands": [],
        "file_mounts": {},
        "cluster_synced_files": [],
        "file_mounts_sync_continuously": False,
        "rsync_exclude": [],
        "rsync_filter": [],
    }


@dataclass(frozen=True)
class FakeCluster:
    address: str
    dashboard: str
    serve_port: int

    @staticmethod
    def node_types() -> dict[str, str]:
        """Alive node id -> its node type, told apart by the resources each type declares."""
        return {node["NodeID"]: _node_type(node["Resources"]) for node in ray.nodes() if node["Alive"]}


def _node_type(resources: dict[str, float]) -> str:
    if resources.get("GPU"):
        return "gpu_worker"
    if resources.get("cpu_worker"):
        return "cpu_worker"
    return HEAD_TYPE


def _own_processes(marker: str) -> list[psutil.Process]:
    mine = []
    for process in psutil.process_iter():
        try:
            if process.environ().get(MARKER) == marker:
                mine.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return mine


def _stop(marker: str) -> None:
    processes = _own_processes(marker)
    for process in processes:
        try:
            process.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            continue
    # Workers leave within a second of SIGTERM; the GCS and raylets do not leave at all: kill what is left.
    _, alive = psutil.wait_procs(processes, timeout=2)
    for process in alive:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            continue


@contextmanager
def fake_cluster(
    worker_types: dict[str, dict[str, Any]], tmp: Path, idle_timeout_minutes: float = 0.1, env: dict[str, str] | None = None
) -> Iterator[FakeCluster]:
    """Starts the head (CPU 0, as cluster.yaml's), connects this process to it, and stops it all after."""
    port, dashboard_port = free_port(), free_port()
    config = tmp / "autoscaling.json"
    config.write_text(json.dumps(autoscaling_config(worker_types, f"127.0.0.1:{port}", idle_timeout_minutes)))
    marker = uuid.uuid4().hex
    environment = {
        **os.environ,
        **(env or {}),
        MARKER: marker,
        "RAY_FAKE_CLUSTER": "1",
        "RAY_AUTH_MODE": "token",
        "AUTOSCALER_UPDATE_INTERVAL_S": "1",
        "PYTHONPATH": str(ROOT),
    }
    ray_cli = str(Path(sys.executable).parent / "ray")
    command = [
        ray_cli,
        "start",
        "--head",
        f"--port={port}",
        "--num-cpus=0",
        "--num-gpus=0",
        f"--autoscaling-config={config}",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dashboard_port}",
        f"--dashboard-agent-listen-port={free_port()}",
        f"--ray-client-server-port={free_port()}",
        f"--metrics-export-port={free_port()}",
        f"--temp-dir={tmp / 'ray'}",
    ]
    # tests/conftest.py sets RAY_AUTH_MODE=token for this process, before Ray is imported.
    try:
        subprocess.run(command, env=environment, check=True, capture_output=True, cwd=ROOT)
        ray.init(address=f"127.0.0.1:{port}", log_to_driver=False)
        yield FakeCluster(f"127.0.0.1:{port}", f"http://127.0.0.1:{dashboard_port}", free_port())
    finally:
        ray.shutdown()
        _stop(marker)


def wait_for(condition: Any, timeout_s: float, what: str, period_s: float = 1.0) -> Any:
    """Polls `condition()` until it is truthy; returns it, or fails saying `what` never happened."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:.0f} s: {what}")
        time.sleep(period_s)
