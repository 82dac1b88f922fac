from __future__ import annotations

import yaml

from toonserve.cli import ROOT, serve_config


def test_committed_serve_config_is_what_serve_build_generates() -> None:
    assert (ROOT / "serve_config.yaml").read_text() == serve_config(), "run `make serve-config` and commit the result"


def test_every_deployment_autoscales_over_a_real_range() -> None:
    config = yaml.safe_load((ROOT / "serve_config.yaml").read_text())
    (application,) = config["applications"]
    assert config["http_options"]["host"] == "127.0.0.1"
    assert {d["name"] for d in application["deployments"]} == {"Ingress", "Preprocessor", "AnimeGAN", "ArtFilters", "Matting"}
    for deployment in application["deployments"]:
        scaling = deployment["autoscaling_config"]
        assert scaling["min_replicas"] < scaling["max_replicas"], deployment["name"]
        assert scaling["target_ongoing_requests"] > 0
