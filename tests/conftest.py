from __future__ import annotations

import os

# Token authentication everywhere, as on a cluster (cluster.yaml). Set before Ray is imported: Ray
# reads it once, and a driver joining a cluster started by `ray start` sends the token only in this mode.
os.environ.setdefault("RAY_AUTH_MODE", "token")

from pathlib import Path

import pytest
import torch

from models.animegan import ANIME_WEIGHTS, AnimeGenerator
from models.u2net import ARCHITECTURES, U2NET_WEIGHTS
from models.weights import seeded_init

TEST_MATTING_MODELS = ("u2net_human_seg", "u2netp")
"""`u2net` is left out on purpose: the app tests see it missing."""


def save_official(module: torch.nn.Module, path: Path) -> Path:
    """Saves as upstream does: torch.save of a bare state_dict."""
    torch.save(module.state_dict(), path)
    return path


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seeded weights in the official format, under the official file names."""
    folder = tmp_path_factory.mktemp("weights")
    for seed, entry in enumerate(ANIME_WEIGHTS):
        save_official(seeded_init(AnimeGenerator(), seed), folder / entry.filename)
    for seed, name in enumerate(TEST_MATTING_MODELS):
        entry = U2NET_WEIGHTS.get(name)
        save_official(seeded_init(ARCHITECTURES[entry.architecture](), 100 + seed), folder / entry.filename)
    return folder


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--accept-golden", action="store_true", help="rewrite golden files from the current outputs")
