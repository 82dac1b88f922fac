"""A local run (`make run`, which is `toonserve serve`) listens on loopback only, but for one residue.

Serve 2.60 binds each replica's inter-deployment gRPC server to [::]:0 whatever the node's address
(ray/serve/_private/replica.py). What guards it is Ray's token: a call without it is refused.
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import psutil
import pytest
import yaml
from ray._private.services import node_ip_address_from_perspective

from tests.serving import free_port, in_background
from toonserve.serve_configs import ROOT

pytestmark = pytest.mark.slow


def loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)  # gRPC listens on ::ffff:127.0.0.1
    return (mapped or ip).is_loopback


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[psutil.Process, str]]:
    """`toonserve serve` on a copy of serve_config.yaml at a free port, with seeded weights."""
    config = yaml.safe_load((ROOT / "serve_config.yaml").read_text())
    port = free_port()
    config["http_options"]["port"] = port
    config.pop("grpc_options", None)
    path = tmp_path_factory.mktemp("loopback") / "serve_config.yaml"
    path.write_text(yaml.safe_dump(config))
    url = f"http://127.0.0.1:{port}"
    command = [str(Path(sys.executable).parent / "toonserve"), "serve", str(path)]
    with in_background(command, url, {"TOONSERVE_RANDOM_WEIGHTS": "1", "PYTHONPATH": str(ROOT)}) as server:
        yield server, url


def deployment_names() -> set[str]:
    (app,) = yaml.safe_load((ROOT / "serve_config.yaml").read_text())["applications"]
    return {deployment["name"] for deployment in app["deployments"]}


def listening(root: psutil.Process) -> list[tuple[str, str, int]]:
    """(process name, address, port) of every listening TCP socket of the process and its descendants."""
    found = []
    for process in [root, *root.children(recursive=True)]:
        try:
            connections = process.net_connections(kind="tcp")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        found += [(process.name(), c.laddr.ip, c.laddr.port) for c in connections if c.status == psutil.CONN_LISTEN]
    return found


def test_nothing_but_serve_replicas_listens_beyond_loopback(running: tuple[psutil.Process, str]) -> None:
    root, url = running
    assert httpx.get(url + "/healthz").status_code == 200
    sockets = listening(root)
    assert len(sockets) > 5, sockets  # the GCS, the raylet, the agents, the proxy, the workers
    beyond = [s for s in sockets if not loopback(s[1])]
    assert {name for name, _, _ in beyond} == {f"ray::ServeReplica:toonserve:{d}" for d in deployment_names()}, beyond


def test_a_replica_refuses_a_call_from_the_network_without_ray_s_token(running: tuple[psutil.Process, str]) -> None:
    root, _ = running
    outward = node_ip_address_from_perspective()
    for name, _, port in [s for s in listening(root) if not loopback(s[1])]:
        with grpc.insecure_channel(f"{outward}:{port}") as channel:
            call = channel.unary_unary("/ray.serve.ASGIService/HandleRequest")
            with pytest.raises(grpc.RpcError) as refused:
                call(b"", timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED, name
