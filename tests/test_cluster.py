"""A simulated multi-node cluster: head, a CPU node, and a node that declares a GPU torch cannot see,
with a Serve proxy on every node, as a cluster has behind its load balancer."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
import ray
from ray import serve
from ray.cluster_utils import Cluster
from ray.util.state import list_actors

from core.settings import Settings
from deployments.environment import NODE_ENV
from serve_app import AppArgs, build_app
from tests.fake_cluster import wait_for
from tests.images import encode, photo
from tests.serving import RUNTIME_ENV, free_port, stop_ray

pytestmark = pytest.mark.slow

CPU_ONLY = {"resources": {"cpu_worker": 0.01}}
ON_GPU = {"num_cpus": 0.5, "num_gpus": 0.5}
CPU_DEPLOYMENTS = ("Ingress", "ArtFilters")
GPU_DEPLOYMENTS = ("AnimeGAN", "Matting")


@dataclass(frozen=True)
class RunningCluster:
    url: str
    cpu_node: str
    gpu_node: str
    proxies: dict[str, str]
    """Node id -> the base URL of its proxy."""


PLACEMENT = {
    "Ingress": {"ray_actor_options": {"num_cpus": 0.2, **CPU_ONLY}},
    "ArtFilters": {"ray_actor_options": {"num_cpus": 0.2, **CPU_ONLY}},
    "AnimeGAN": {"ray_actor_options": ON_GPU},
    "Matting": {"ray_actor_options": ON_GPU},
}
"""The placement a cluster's Serve config would give."""


@pytest.fixture(scope="module")
def cluster(weights_dir: Path) -> Iterator[RunningCluster]:
    ports = [free_port() for _ in range(3)]
    with pytest.MonkeyPatch.context() as env:
        for name, value in NODE_ENV.items():
            env.setenv(name, value)
        nodes = Cluster(
            initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": True, "dashboard_host": "127.0.0.1"}
        )
        try:
            # Every node here is 127.0.0.1: each worker node's proxy is given a port of its own (the head's is Serve's).
            env.setenv("RAY_SERVE_WORKER_PROXY_HTTP_PORT", str(ports[1]))
            cpu_node = nodes.add_node(num_cpus=2, resources={"cpu_worker": 10})
            env.setenv("RAY_SERVE_WORKER_PROXY_HTTP_PORT", str(ports[2]))
            gpu_node = nodes.add_node(num_cpus=2, num_gpus=1, resources={"gpu_worker": 10})
            ray.init(address=nodes.address, runtime_env=RUNTIME_ENV, log_to_driver=False)
            serve.start(proxy_location="EveryNode", http_options={"host": "127.0.0.1", "port": ports[0]})
            settings = Settings(weights_dir=weights_dir, cache_dir=weights_dir / "cache", download_weights=False)
            serve.run(build_app(AppArgs(settings=settings, options=PLACEMENT)), name="toonserve", route_prefix="/")
            head = nodes.head_node.node_id
            node_ids = (head, cpu_node.node_id, gpu_node.node_id)
            proxies = {node: f"http://127.0.0.1:{port}" for node, port in zip(node_ids, ports, strict=True)}
            for url in proxies.values():
                wait_for(lambda url=url: answers(url), 60, f"a proxy at {url}")
            yield RunningCluster(proxies[head], cpu_node.node_id, gpu_node.node_id, proxies)
        finally:
            stop_ray()
            nodes.shutdown()


def answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


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


def test_with_one_nodes_proxy_dead_the_others_serve_on_and_it_comes_back(cluster: RunningCluster) -> None:
    head = next(node for node, url in cluster.proxies.items() if url == cluster.url)
    (proxy,) = [a for a in list_actors(filters=[("state", "=", "ALIVE")]) if a.class_name == "ProxyActor" and a.node_id == head]
    data = encode(photo(96, 64), "JPEG")
    elsewhere = cluster.proxies[cluster.cpu_node]
    psutil.Process(proxy.pid).kill()
    wait_for(lambda: not answers(cluster.url), 10, "the head's proxy stops answering", period_s=0.1)
    served = 0
    with httpx.Client(base_url=elsewhere, timeout=120) as client:
        while not answers(cluster.url):
            assert client.post("/v1/filters/pencil_sketch", content=data).status_code == 200
            served += 1
    assert served > 0
    assert httpx.post(f"{cluster.url}/v1/filters/pencil_sketch", content=data, timeout=120).status_code == 200
