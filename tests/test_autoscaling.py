"""The cluster behaviour of issue 4 on a simulated cluster whose nodes the real autoscaler launches.

The app is deployed from deploy/serve-cluster-gpu.yaml through Serve's REST API, as `serve
deploy` would, with only what one machine needs changed: HTTP on a free loopback port with one
proxy, seeded random weights, one replica minimum, short scaling delays everywhere and a quick
ArtFilters, so that the burst fits in a test. Placement (cpu_worker, fractional GPUs) and the queue
bounds are the committed config's: past them a burst is answered 503 at once, never left to time out.
"""

from __future__ import annotations

import copy
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from itertools import count
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.fake_cluster import FakeCluster, fake_cluster, wait_for
from tests.images import encode, photo
from toonserve.burst import LoadShape, run_burst
from toonserve.serve_admin import ServeAdmin
from toonserve.serve_configs import MODEL_DEPLOYMENTS, cpu_deployments

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
APP = "toonserve"
WORKER_TYPES = {
    # Small nodes, so that a burst needs more of them: 4 CPUs hold the Ingress (a quarter CPU here) and
    # one ArtFilters replica (2 CPUs, as in the cluster config); the second ArtFilters needs a new node.
    "cpu_worker": {"resources": {"CPU": 4, "cpu_worker": 1}, "min_workers": 1, "max_workers": 3},
    "gpu_worker": {"resources": {"CPU": 2, "GPU": 1}, "min_workers": 0, "max_workers": 1},
}
# Delays short enough for a test, for every deployment: the burst also grows the Ingress onto the
# new node, and the node is idle only once it has shrunk back too.
QUICK_DELAYS = {"upscale_delay_s": 1.0, "downscale_delay_s": 5.0, "look_back_period_s": 2.0}
QUICK_SCALING = {"max_replicas": 3, "target_ongoing_requests": 1}
ROUND_S = 5.0
"""A steady load's rounds: it stops within this long of the end of what it runs beside."""
# Serve's pack scheduling, as cluster.yaml's head runs it, with compaction after 5 s of calm
# instead of 300: after a burst it moves the last replicas off the nodes that can then go.
SERVE_CONTROLLER_ENV = {"RAY_SERVE_USE_PACK_SCHEDULING_STRATEGY": "1", "RAY_SERVE_NODE_COMPACTION_DELAY_S": "5"}


def config_for_test(serve_port: int, version: str = "1") -> dict[str, Any]:
    config = copy.deepcopy(yaml.safe_load((ROOT / "deploy" / "serve-cluster-gpu.yaml").read_text()))
    config["proxy_location"] = "HeadOnly"  # every fake node is this machine: one port, one proxy
    config["http_options"] = {"host": "127.0.0.1", "port": serve_port}
    (application,) = config["applications"]
    application["runtime_env"] = {"env_vars": {"TOONSERVE_RANDOM_WEIGHTS": "1", "TOONSERVE_TEST_VERSION": version}}
    for deployment in application["deployments"]:
        deployment["autoscaling_config"].update(min_replicas=1, initial_replicas=1, **QUICK_DELAYS)
        if deployment["name"] == "Ingress":
            deployment["ray_actor_options"]["num_cpus"] = 0.25
        if deployment["name"] == "ArtFilters":
            deployment["autoscaling_config"].update(QUICK_SCALING)
    return config


def deploy_and_wait(admin: ServeAdmin, config: dict[str, Any]) -> None:
    admin.deploy(config)
    wait_for(lambda: admin.application_status(APP) == "RUNNING", 420, "the application RUNNING", period_s=2.0)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeCluster, ServeAdmin]]:
    fake = fake_cluster(WORKER_TYPES, tmp_path_factory.mktemp("fake"), env=SERVE_CONTROLLER_ENV)
    with fake as cluster, ServeAdmin(cluster.dashboard) as admin:
        wait_for(lambda: _reachable(admin), 120, "the dashboard's Serve API")
        deploy_and_wait(admin, config_for_test(cluster.serve_port))
        yield cluster, admin


def _reachable(admin: ServeAdmin) -> bool:
    try:
        admin.details()
        return True
    except httpx.HTTPError:
        return False


def url(cluster: FakeCluster, path: str) -> str:
    return f"http://127.0.0.1:{cluster.serve_port}{path}"


def nodes_of(admin: ServeAdmin, deployment: str) -> list[str]:
    return [r.node_id for r in admin.replicas(APP) if r.deployment == deployment and r.state == "RUNNING"]


def cpu_nodes(cluster: FakeCluster) -> int:
    return Counter(cluster.node_types().values())["cpu_worker"]


@contextmanager
def steady_load(cluster: FakeCluster, rate: float) -> Iterator[Counter[str]]:
    """Plain requests (no retries) at `rate`/s while the block runs, in short open-loop rounds, so that a
    test waits for what it watches rather than for a fixed load; yields their statuses, counted."""
    target, body = url(cluster, "/v1/filters/pencil_sketch"), encode(photo(320, 240), "JPEG")
    statuses: Counter[str] = Counter()
    stop = threading.Event()

    def rounds() -> None:
        for seed in count():
            if stop.is_set():
                return
            shape = LoadShape("steady", rate=rate, duration_s=ROUND_S, seed=seed)
            statuses.update(run_burst(target, body, shape, dashboard=None).summary["statuses"])

    with ThreadPoolExecutor(1) as pool:
        load = pool.submit(rounds)
        try:
            yield statuses
        finally:
            stop.set()
            load.result()  # what went wrong in the load, raised here


def test_a_pending_gpu_replica_launches_a_gpu_node_and_anime_lands_on_it(cluster: tuple[FakeCluster, ServeAdmin]) -> None:
    fake, admin = cluster
    types = fake.node_types()
    assert "gpu_worker" in types.values(), "the autoscaler launched no GPU node"
    for deployment in MODEL_DEPLOYMENTS:
        assert {types[n] for n in nodes_of(admin, deployment)} == {"gpu_worker"}, deployment
    for deployment in cpu_deployments(config_for_test(fake.serve_port)):
        assert {types[n] for n in nodes_of(admin, deployment)} == {"cpu_worker"}, deployment
    response = httpx.post(url(fake, "/v1/anime?max_side=256"), content=encode(photo(256, 192), "JPEG"), timeout=120)
    assert response.status_code == 200
    ready = httpx.get(url(fake, "/readyz"), timeout=30).json()
    assert "torch sees none" in str(ready)


def test_b_c_a_burst_scales_out_across_nodes_then_back_in_without_dropping_requests(
    cluster: tuple[FakeCluster, ServeAdmin],
) -> None:
    fake, admin = cluster
    assert cpu_nodes(fake) == 1
    shape = LoadShape("burst", rate=1.0, peak=8.0, duration_s=32.0, burst_at_s=5.0, burst_s=25.0)
    body = encode(photo(640, 480), "JPEG")
    report = run_burst(
        url(fake, "/v1/filters/watercolor?max_side=640"), body, shape, dashboard=fake.dashboard, app=APP, watched="ArtFilters"
    )
    print("burst:", report.summary)
    # (b) the burst grew ArtFilters beyond one replica, on more nodes than before, all CPU workers.
    assert set(report.summary["statuses"]) <= {"200", "503"}, report.summary
    # The sampler read Serve's REST API with the cluster's token (a wrong one shows as HTTP 401).
    assert not [kind for kind in report.sampler_errors if kind.startswith("HTTP 4")], report.sampler_errors
    assert report.summary["max_replicas"]["ArtFilters"] >= 2, report.summary
    assert report.summary["scale_up_s"] is not None
    # Before the burst one CPU worker held every CPU replica, and ArtFilters cannot use the GPU node:
    # replicas on two nodes at once mean the autoscaler launched a CPU worker for them.
    assert report.summary["max_nodes"]["ArtFilters"] >= 2, report.summary

    # (c) and (d): afterwards replicas and nodes shrink back, and no request sent meanwhile fails.
    with steady_load(fake, rate=1.0) as meanwhile:
        wait_for(lambda: len(nodes_of(admin, "ArtFilters")) == 1, 90, "ArtFilters back to one replica")
        wait_for(lambda: cpu_nodes(fake) == WORKER_TYPES["cpu_worker"]["min_workers"], 120, "idle CPU workers terminated")
    print("meanwhile:", meanwhile)
    assert set(meanwhile) == {"200"}, meanwhile


def test_d_a_redeploy_drops_no_request(cluster: tuple[FakeCluster, ServeAdmin]) -> None:
    fake, admin = cluster
    before = {r.replica_id for r in admin.replicas(APP)}
    with steady_load(fake, rate=2.0) as meanwhile:
        deploy_and_wait(admin, config_for_test(fake.serve_port, version="2"))
        wait_for(lambda: not before & {r.replica_id for r in admin.replicas(APP)}, 240, "every replica replaced")
    print("meanwhile:", meanwhile)
    assert set(meanwhile) == {"200"}, meanwhile
