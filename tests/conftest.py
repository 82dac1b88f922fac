from __future__ import annotations

import os

# Token authentication everywhere, as on a cluster (cluster.yaml). Set before Ray is imported: Ray
# reads it once, and a driver joining a cluster started by `ray start` sends the token only in this mode.
os.environ.setdefault("RAY_AUTH_MODE", "token")

from pathlib import Path

import pytest
import torch

from core.stages import model_stages
from models.registry import WeightsEntry
from models.weights import seeded_init

LEFT_OUT = "u2net"
"""Left out of `weights_dir` on purpose: the app tests see it missing."""
ALL_ENTRIES = [entry for stage in model_stages() for entry in stage.registry]
"""Every model of every model stage."""
TEST_ENTRIES = [entry for entry in ALL_ENTRIES if entry.name != LEFT_OUT]


def save_official(module: torch.nn.Module, path: Path) -> Path:
    """Saves as upstream does: torch.save of a bare state_dict."""
    torch.save(module.state_dict(), path)
    return path


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seeded weights in the official format, under the official file names."""
    folder = tmp_path_factory.mktemp("weights")
    for seed, entry in enumerate(TEST_ENTRIES):
        save_official(seeded_init(entry.build(), seed), folder / entry.filename)
    return folder


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--accept-golden", action="store_true", help="rewrite golden files from the current outputs")


@pytest.fixture(scope="session")
def all_weights_dir(weights_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every model's seeded weights: `weights_dir`'s, and `u2net` besides."""
    folder = tmp_path_factory.mktemp("all_weights")
    for path in weights_dir.iterdir():
        (folder / path.name).symlink_to(path)
    left_out: WeightsEntry = next(entry for entry in ALL_ENTRIES if entry.name == LEFT_OUT)
    save_official(seeded_init(left_out.build(), len(TEST_ENTRIES)), folder / left_out.filename)
    return folder
