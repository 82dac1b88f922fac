"""The Serve configs, all generated from the app's own defaults (`serve build serve_app:app`):

- serve_config.yaml: one machine; HTTP on loopback.
- deploy/serve-cluster-gpu.yaml: a cluster with CPU workers and GPU workers (cluster.yaml);
- deploy/serve-cluster-cpu.yaml: the same cluster without a GPU node type;
- deploy/rayservice.yaml: KubeRay RayService whose serveConfigV2 is the GPU cluster config;
- deploy/grafana/toonserve.json: the dashboard of toonserve's own metrics (toonserve/grafana.py).

The deployments are the app's: the Ingress and the stages the catalogue's effects
use. On a cluster, every deployment that does CPU work asks for a sliver of the `cpu_worker`
custom resource, which only CPU worker nodes declare: those replicas never land on the head
(which declares CPU: 0) nor on a GPU node. The model stages ask for a fraction of a GPU in the GPU
config, and for cpu_worker in the CPU config. A deployment without a profile below gets the
default one of its kind. `make serve-config` rewrites all five files; a test fails when a
committed one differs from what this module generates.
"""

from __future__ import annotations

import copy
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from core.settings import env_name
from core.stages import model_stages
from deployments.environment import NODE_ENV
from toonserve.grafana import DASHBOARD, dashboard_text

APP_NAME = "toonserve"
LOCAL_HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
CLUSTER_CONFIGS = {True: DEPLOY / "serve-cluster-gpu.yaml", False: DEPLOY / "serve-cluster-cpu.yaml"}
"""Whether the cluster has GPU workers -> its Serve config."""
CPU_WORKER_RESOURCE = "cpu_worker"
# A sliver: it marks where a replica may run; CPU and memory still bound how many fit on a node.
CPU_WORKER_SHARE = 0.01
MODEL_DEPLOYMENTS = tuple(stage.deployment for stage in model_stages())

# Sized for the node types of cluster.yaml: m6i.2xlarge CPU workers (8 vCPU, 32 GiB) and
# g5.xlarge GPU workers (4 vCPU, one 24 GB A10G). Scaling bounds are per deployment, across nodes.
CLUSTER_CPU: dict[str, dict[str, Any]] = {
    # A CPU each for its Compositor's decoding and encoding. Its replicas are the stages' callers: a
    # stage bounds its queue per caller, so each extra one admits one more queue's worth of waiting.
    "Ingress": {
        "num_cpus": 1,
        "max_ongoing_requests": 256,
        "max_queued_requests": 128,
        "autoscaling": {"min_replicas": 2, "max_replicas": 8, "target_ongoing_requests": 64},
    },
    "ArtFilters": {"num_cpus": 2, "autoscaling": {"min_replicas": 1, "max_replicas": 32, "target_ongoing_requests": 2}},
    # Model replicas of one CPU and one torch thread: more of them, not more threads, use more cores.
    "AnimeGAN": {"num_cpus": 1, "autoscaling": {"min_replicas": 1, "max_replicas": 64, "target_ongoing_requests": 2}},
    "Matting": {"num_cpus": 1, "autoscaling": {"min_replicas": 1, "max_replicas": 32, "target_ongoing_requests": 4}},
}
DEFAULT_CPU_PROFILE: dict[str, Any] = {
    "num_cpus": 1,
    "autoscaling": {"min_replicas": 1, "max_replicas": 32, "target_ongoing_requests": 2},
}
# On a GPU, batches are what make it pay: bigger batches, a longer wait to fill them, and enough
# requests in flight per replica for the batch to fill (an upstream max_ongoing_requests caps it).
# A GPU is scarce: a redeploy stops a model replica before starting its replacement (no surge), since
# a replacement that finds no GPU free would hold the rollout; requests wait in the Ingress meanwhile.
CLUSTER_GPU: dict[str, dict[str, Any]] = {
    "AnimeGAN": {
        "num_gpus": 0.5,
        "num_cpus": 1,
        "max_surge_percent": 0,
        "max_ongoing_requests": 64,
        "max_queued_requests": 64,
        "batch": {"max_batch_size": 16, "batch_wait_timeout_s": 0.02},
        "autoscaling": {"min_replicas": 1, "max_replicas": 8, "target_ongoing_requests": 16},
    },
    "Matting": {
        "num_gpus": 0.25,
        "num_cpus": 0.5,
        "max_surge_percent": 0,
        "max_ongoing_requests": 64,
        "max_queued_requests": 64,
        "batch": {"max_batch_size": 32, "batch_wait_timeout_s": 0.02},
        "autoscaling": {"min_replicas": 1, "max_replicas": 8, "target_ongoing_requests": 16},
    },
}
DEFAULT_GPU_PROFILE = CLUSTER_GPU["Matting"]
# A cluster faces a network: every /v1 call needs an API key. The keys themselves are the operator's
# to add (TOONSERVE_API_KEYS beside this, or a file on every node); until then every /v1 call is 401.
CLUSTER_SETTINGS = {env_name("require_api_key"): "true"}


def built_config() -> dict[str, Any]:
    """`serve build serve_app:app` as a dict, the app named toonserve."""
    with tempfile.TemporaryDirectory() as scratch:
        built = Path(scratch) / "built.yaml"
        subprocess.run(
            [str(Path(sys.executable).parent / "serve"), "build", "serve_app:app", "-o", str(built)],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        config: dict[str, Any] = yaml.safe_load(built.read_text())
    config["applications"][0]["name"] = APP_NAME
    return config


def _apply(deployment: dict[str, Any], profile: dict[str, Any], on_cpu_workers: bool) -> None:
    # The built options may carry a runtime_env (the model replicas' allocator settings): kept.
    actor: dict[str, Any] = {**deployment.get("ray_actor_options", {}), "num_cpus": profile["num_cpus"]}
    if "num_gpus" in profile:
        actor["num_gpus"] = profile["num_gpus"]
    if on_cpu_workers:
        actor["resources"] = {CPU_WORKER_RESOURCE: CPU_WORKER_SHARE}
    deployment["ray_actor_options"] = actor
    deployment["autoscaling_config"].update(profile["autoscaling"])
    for option in ("max_ongoing_requests", "max_queued_requests", "max_surge_percent"):
        if option in profile:
            deployment[option] = profile[option]
    if "batch" in profile:
        deployment["user_config"].update(profile["batch"])


def cluster_config(built: dict[str, Any], gpu: bool) -> dict[str, Any]:
    config = copy.deepcopy(built)
    config["http_options"]["host"] = "0.0.0.0"  # reached through the load balancer; see cluster.yaml
    (application,) = config["applications"]
    application["runtime_env"] = {"env_vars": CLUSTER_SETTINGS}
    for deployment in application["deployments"]:
        name = deployment["name"]
        if gpu and name in MODEL_DEPLOYMENTS:
            _apply(deployment, CLUSTER_GPU.get(name, DEFAULT_GPU_PROFILE), on_cpu_workers=False)
        else:
            _apply(deployment, CLUSTER_CPU.get(name, DEFAULT_CPU_PROFILE), on_cpu_workers=True)
    return config


def _dump(header: str, config: dict[str, Any]) -> str:
    return "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines()) + yaml.safe_dump(config, sort_keys=False)


def local_text(built: dict[str, Any]) -> str:
    config = copy.deepcopy(built)
    config["http_options"]["host"] = LOCAL_HOST
    return _dump(
        "Generated by `make serve-config` (serve build serve_app:app, then: app named toonserve, HTTP on 127.0.0.1).", config
    )


def cluster_text(built: dict[str, Any], gpu: bool) -> str:
    kind = "CPU workers plus GPU workers" if gpu else "CPU workers only (no GPU node type)"
    return _dump(
        f"Generated by `make serve-config` from serve_app's defaults and toonserve/serve_configs.py.\n"
        f"For the cluster of cluster.yaml with {kind}. Deploy it from your machine:\n"
        f"  ray dashboard cluster.yaml   # forwards the dashboard to localhost:8265 over SSH\n"
        f"  RAY_AUTH_MODE=token serve deploy {CLUSTER_CONFIGS[gpu].relative_to(ROOT)}\n"
        f"Autoscaling is tuned for bursts; deployments/scaling.py explains each number.",
        cluster_config(built, gpu),
    )


def rayservice_text(built: dict[str, Any]) -> str:
    serve = cluster_config(built, gpu=True)
    serve.pop("http_options")  # KubeRay sets the Serve port and host itself
    serve.pop("grpc_options", None)
    manifest = yaml.safe_load((DEPLOY / "rayservice.template.yaml").read_text())
    cluster = manifest["spec"]["rayClusterConfig"]
    for group in [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]:
        for container in group["template"]["spec"]["containers"]:
            container.setdefault("env", []).extend({"name": name, "value": value} for name, value in NODE_ENV.items())
    manifest["spec"]["serveConfigV2"] = yaml.safe_dump(serve, sort_keys=False)
    return _dump(
        "Generated by `make serve-config` from deploy/rayservice.template.yaml; serveConfigV2 is\n"
        f"{CLUSTER_CONFIGS[True].relative_to(ROOT)} without http_options (KubeRay owns the Serve port). The image is\n"
        "deploy/Dockerfile's. Edit the template or toonserve/serve_configs.py, not this file.",
        manifest,
    )


def sized_to_machine(config: dict[str, Any], model_replicas: int) -> dict[str, Any]:
    """A local config whose model deployments may grow to `model_replicas` replicas (`toonserve serve`
    passes this machine's cores): the committed config cannot know the machine it will run on."""
    sized = copy.deepcopy(config)
    for application in sized["applications"]:
        for deployment in application.get("deployments", []):
            if deployment["name"] in MODEL_DEPLOYMENTS:
                deployment.setdefault("autoscaling_config", {})["max_replicas"] = model_replicas
    return sized


def generated_files() -> dict[Path, str]:
    built = built_config()
    return {
        ROOT / "serve_config.yaml": local_text(built),
        **{path: cluster_text(built, gpu) for gpu, path in CLUSTER_CONFIGS.items()},
        DEPLOY / "rayservice.yaml": rayservice_text(built),
        DASHBOARD: dashboard_text(),
    }


def cpu_deployments(config: dict[str, Any]) -> list[str]:
    """The config's deployments that are not model stages: the ones that never take a GPU."""
    (application,) = config["applications"]
    return [d["name"] for d in application["deployments"] if d["name"] not in MODEL_DEPLOYMENTS]
