"""A simulated multi-node cluster: head, a CPU node, and a node that declares a GPU torch cannot see."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import ray
from ray import serve
from ray.cluster_utils import Cluster
from ray.util.state import list_actors

from core.settings import Settings
from serve_app import AppArgs, build_app
from tests.images import encode, photo
from tests.serving import RUNTIME_ENV, free_port

pytestmark = pytest.mark.slow

CPU_ONLY = {"resources": {"cpu_worker": 0.01}}
ON_GPU = {"num_cpus": 0.5, "num_gpus": 0.5}
CPU_DEPLOYMENTS = ("Ingress", "Compositor", "ArtFilters")
GPU_DEPLOYMENTS = ("AnimeGAN", "Matting")


@dataclass(frozen=True)
class RunningCluster:
    url: str
    cpu_node: str
    gpu_node: str


PLACEMENT = {
    "Ingress": {"ray_actor_options": {"num_cpus": 0.05, **CPU_ONLY}},
    "Compositor": {"ray_actor_options": {"num_cpus": 0.2, **CPU_ONLY}},
    "ArtFilters": {"ray_actor_options": {"num_cpus": 0.2, **CPU_ONLY}},
    "AnimeGAN": {"ray_actor_options": ON_GPU},
    "Matting": {"ray_actor_options": ON_GPU},
}
"""The placement a cluster's Serve config would give."""


@pytest.fixture(scope="module")
def cluster(weights_dir: Path) -> Iterator[RunningCluster]:
    nodes = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": True, "dashboard_host": "127.0.0.1"}
    )
    try:
        cpu_node = nodes.add_node(num_cpus=2, resources={"cpu_worker": 10})
        gpu_node = nodes.add_node(num_cpus=2, num_gpus=1, resources={"gpu_worker": 10})
        ray.init(address=nodes.address, runtime_env=RUNTIME_ENV, log_to_driver=False)
        port = free_port()
        serve.start(proxy_location="HeadOnly", http_options={"host": "127.0.0.1", "port": port})
        settings = Settings(weights_dir=weights_dir, cache_dir=weights_dir / "cache", download_weights=False)
        serve.run(build_app(AppArgs(settings=settings, options=PLACEMENT)), name="toonserve", route_prefix="/")
        yield RunningCluster(f"http://127.0.0.1:{port}", cpu_node.node_id, gpu_node.node_id)
    finally:
        serve.shutdown()
        ray.shutdown()
        nodes.shutdown()


def replica_nodes() -> dict[str, set[str]]:
    """{deployment name: the node ids its live replicas run on}."""
    placed: dict[str, set[str]] = {}
    for actor in list_actors(filters=[("state", "=", "ALIVE")], limit=1000):
        if actor.class_name.startswith("ServeReplica:toonserve:"):
            placed.setdefault(actor.class_name.rsplit(":", 1)[1], set()).add(actor.node_id)
    return placed


def test_deployments_land_where_configured(cluster: RunningCluster) -> None:
    placed = replica_nodes()
    for name in CPU_DEPLOYMENTS:
        assert placed[name] == {cluster.cpu_node}, name
    for name in GPU_DEPLOYMENTS:
        assert placed[name] == {cluster.gpu_node}, name


def test_gpu_replica_without_cuda_serves_on_cpu_and_says_so(cluster: RunningCluster) -> None:
    with httpx.Client(base_url=cluster.url, timeout=120) as client:
        ready = client.get("/readyz").json()
        for group in ("anime", "matting"):
            loaded = [m for m in ready["models"][group] if m["loaded"]]
            assert loaded
            assert all("torch sees none: serving on the CPU" in m["device"] for m in loaded)
        data = encode(photo(96, 64), "JPEG")
        assert client.post("/v1/anime?style=paprika", content=data).status_code == 200
        assert client.post("/v1/matte?model=u2netp", content=data).status_code == 200
        assert client.post("/v1/filters/pencil_sketch", content=data).status_code == 200
