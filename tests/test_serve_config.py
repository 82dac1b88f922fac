"""The committed Serve configs, cluster.yaml and the KubeRay manifest: generated, valid, safe."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config
from ray.serve.schema import ServeDeploySchema

from core.memory import MODEL_ALLOCATOR
from core.settings import Settings
from deployments.environment import NODE_ENV
from toonserve.serve_configs import (
    CPU_WORKER_RESOURCE,
    DEPLOY,
    MODEL_DEPLOYMENTS,
    ROOT,
    cpu_deployments,
    generated_files,
    sized_to_machine,
)

CLUSTER = yaml.safe_load((ROOT / "cluster.yaml").read_text())
DEPLOYMENT_NAMES = {"Ingress", "AnimeGAN", "ArtFilters", "Matting"}


def load(path: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / path).read_text())


def deployments(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (application,) = config["applications"]
    return {d["name"]: d for d in application["deployments"]}


def test_committed_configs_are_what_the_generator_writes() -> None:
    for path, text in generated_files().items():
        assert path.read_text() == text, f"{path.relative_to(ROOT)} is stale: run `make serve-config` and commit it"


@pytest.mark.parametrize("path", ["serve_config.yaml", "deploy/serve-cluster-gpu.yaml", "deploy/serve-cluster-cpu.yaml"])
def test_serve_configs_validate_and_autoscale_for_bursts(path: str) -> None:
    config = load(path)
    ServeDeploySchema.model_validate(config)
    assert set(deployments(config)) == DEPLOYMENT_NAMES
    for name, deployment in deployments(config).items():
        scaling = deployment["autoscaling_config"]
        assert scaling["min_replicas"] < scaling["max_replicas"], name
        assert scaling["upscale_delay_s"] < scaling["downscale_delay_s"], name
        assert scaling["look_back_period_s"] <= 10, name


@pytest.mark.parametrize("cores", [1, 2, 16])
def test_a_local_run_lets_each_model_deployment_grow_to_one_replica_per_core(cores: int) -> None:
    config = load("serve_config.yaml")
    sized = sized_to_machine(config, cores)
    ServeDeploySchema.model_validate(sized)
    for name, deployment in deployments(sized).items():
        if name in MODEL_DEPLOYMENTS:
            assert deployment["autoscaling_config"]["min_replicas"] == 1
            assert deployment["autoscaling_config"]["max_replicas"] == cores
            assert deployment["user_config"]["threads"] == 1
        else:
            assert deployment == deployments(config)[name]


def test_local_config_listens_on_loopback_only() -> None:
    assert load("serve_config.yaml")["http_options"]["host"] == "127.0.0.1"


def test_cluster_configs_require_api_keys_and_the_local_one_does_not(monkeypatch: pytest.MonkeyPatch) -> None:
    def settings(config: dict[str, Any]) -> Settings:
        (application,) = config["applications"]
        for name, value in application.get("runtime_env", {}).get("env_vars", {}).items():
            monkeypatch.setenv(name, value)
        return Settings()

    assert not settings(load("serve_config.yaml")).require_api_key
    for path in ("deploy/serve-cluster-gpu.yaml", "deploy/serve-cluster-cpu.yaml"):
        assert settings(load(path)).require_api_key, path
    assert settings(yaml.safe_load(load("deploy/rayservice.yaml")["spec"]["serveConfigV2"])).require_api_key


def test_cpu_work_never_lands_on_gpu_nodes_or_the_head() -> None:
    gpu_node = CLUSTER["available_node_types"]["gpu_worker"]["resources"]
    head = CLUSTER["available_node_types"][CLUSTER["head_node_type"]]["resources"]
    assert CPU_WORKER_RESOURCE not in gpu_node
    assert CPU_WORKER_RESOURCE not in head
    assert head["CPU"] == 0
    assert CLUSTER["available_node_types"]["cpu_worker"]["resources"][CPU_WORKER_RESOURCE] >= 1
    for path in ("deploy/serve-cluster-gpu.yaml", "deploy/serve-cluster-cpu.yaml"):
        config = load(path)
        assert set(cpu_deployments(config)) == {"Ingress", "ArtFilters"}
        for name in cpu_deployments(config):
            actor = deployments(config)[name]["ray_actor_options"]
            assert actor["resources"][CPU_WORKER_RESOURCE] > 0, (path, name)
            assert "num_gpus" not in actor


def test_gpu_config_gives_models_fractional_gpus_and_larger_batches() -> None:
    local = deployments(load("serve_config.yaml"))
    for name, deployment in deployments(load("deploy/serve-cluster-gpu.yaml")).items():
        if name not in MODEL_DEPLOYMENTS:
            continue
        actor = deployment["ray_actor_options"]
        assert 0 < actor["num_gpus"] < 1
        assert "resources" not in actor
        assert deployment["user_config"]["max_batch_size"] > local[name]["user_config"]["max_batch_size"]


def test_cpu_config_runs_the_models_on_cpu_workers() -> None:
    for name in MODEL_DEPLOYMENTS:
        actor = deployments(load("deploy/serve-cluster-cpu.yaml"))[name]["ray_actor_options"]
        assert "num_gpus" not in actor
        assert actor["resources"][CPU_WORKER_RESOURCE] > 0


@pytest.mark.parametrize("path", ["serve_config.yaml", "deploy/serve-cluster-gpu.yaml", "deploy/serve-cluster-cpu.yaml"])
def test_a_redeploy_replaces_before_it_stops_except_on_scarce_gpus(path: str) -> None:
    for name, deployment in deployments(load(path)).items():
        on_gpu = "num_gpus" in deployment["ray_actor_options"]
        assert deployment["max_surge_percent"] == (0 if on_gpu else 100), name


@pytest.mark.parametrize("path", ["serve_config.yaml", "deploy/serve-cluster-gpu.yaml", "deploy/serve-cluster-cpu.yaml"])
def test_model_replicas_start_with_the_model_allocator(path: str) -> None:
    for name, deployment in deployments(load(path)).items():
        env = deployment["ray_actor_options"].get("runtime_env", {}).get("env_vars", {})
        assert (env == MODEL_ALLOCATOR) == (name in MODEL_DEPLOYMENTS), name


def test_cluster_yaml_is_valid_for_rays_schema() -> None:
    # What `ray up` does: fill in the provider's defaults, then check against ray-schema.json.
    validate_config(prepare_config(CLUSTER))


def test_cluster_yaml_is_safe_by_default() -> None:
    types = CLUSTER["available_node_types"]
    assert types["gpu_worker"]["min_workers"] == 0
    # Every node type brings its own security group: Ray's AWS provider would otherwise create one
    # that admits SSH from 0.0.0.0/0.
    for name, node_type in types.items():
        assert node_type["node_config"]["SecurityGroupIds"], name
    head = " ".join(CLUSTER["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head
    # Without packing, replicas left one to a node after a burst keep every node busy.
    assert "RAY_SERVE_USE_PACK_SCHEDULING_STRATEGY=1" in head
    assert "--num-cpus=0" in head
    for commands in (CLUSTER["head_start_ray_commands"], CLUSTER["worker_start_ray_commands"]):
        assert "RAY_AUTH_MODE=token" in " ".join(commands)
        assert all(f"{name}={value}" in " ".join(commands) for name, value in NODE_ENV.items())
    assert "~/.ray/auth_token" in CLUSTER["file_mounts"]
    assert "ray-client-server-port" not in head


def test_gpu_nodes_install_the_cuda_build_of_torch() -> None:
    setup = " ".join(CLUSTER["available_node_types"]["gpu_worker"]["worker_setup_commands"])
    assert "download.pytorch.org/whl/cu" in setup
    assert "whl/cpu" in " ".join(CLUSTER["setup_commands"])


def test_rayservice_serves_the_gpu_cluster_config() -> None:
    manifest = load("deploy/rayservice.yaml")
    assert manifest["kind"] == "RayService"
    served = yaml.safe_load(manifest["spec"]["serveConfigV2"])
    cluster = load("deploy/serve-cluster-gpu.yaml")
    assert served["applications"] == cluster["applications"]
    spec = manifest["spec"]["rayClusterConfig"]
    assert spec["authOptions"]["mode"] == "token"
    (head,) = spec["headGroupSpec"]["template"]["spec"]["containers"]
    assert {"name": "RAY_SERVE_USE_PACK_SCHEDULING_STRATEGY", "value": "1"} in head["env"]
    for group in [spec["headGroupSpec"], *spec["workerGroupSpecs"]]:
        (container,) = group["template"]["spec"]["containers"]
        assert all({"name": name, "value": value} in container["env"] for name, value in NODE_ENV.items())
    assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    groups = {g["groupName"]: g for g in spec["workerGroupSpecs"]}
    assert groups["gpu-workers"]["minReplicas"] == 0
    assert CPU_WORKER_RESOURCE in groups["cpu-workers"]["rayStartParams"]["resources"]
    assert (DEPLOY / "Dockerfile").is_file()
