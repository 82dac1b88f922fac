from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch._dynamo.utils

from core.device import choose_device
from core.errors import InvalidImage, InvalidParameter, WeightsMissing
from core.memory import MODEL_ALLOCATOR
from core.runner import ModelRunner, bucket_shape
from core.settings import Precision, Settings
from models.animegan import ANIME_WEIGHTS
from models.u2net import U2NET_WEIGHTS
from tests.images import photo, psnr


def settings_for(weights_dir: Path) -> Settings:
    return Settings(weights_dir=weights_dir, cache_dir=weights_dir / "cache", download_weights=False)


def anime_runner(weights_dir: Path, styles: list[str], precision: Precision = "auto", compiled: bool = False) -> ModelRunner:
    settings = settings_for(weights_dir).model_copy(update={"compile_models": compiled})
    return ModelRunner(settings, ANIME_WEIGHTS, choose_device(gpu_assigned=False, precision=precision), styles)


def matting_runner(weights_dir: Path, precision: Precision) -> ModelRunner:
    placement = choose_device(gpu_assigned=False, precision=precision)
    return ModelRunner(settings_for(weights_dir), U2NET_WEIGHTS, placement, ["u2netp", "u2net"])


@pytest.fixture(scope="module")
def stylizer(weights_dir: Path) -> ModelRunner:
    return anime_runner(weights_dir, ["face_paint_512_v2", "paprika"])


@pytest.fixture(scope="module")
def fp32(weights_dir: Path) -> ModelRunner:
    return matting_runner(weights_dir, "fp32")


def test_similar_aspects_share_a_bucket() -> None:
    assert bucket_shape(341, 512) == bucket_shape(352, 512) == (352, 512)
    assert bucket_shape(1, 1) == (32, 32)


def test_batch_result_matches_single_result(stylizer: ModelRunner) -> None:
    images = [photo(96, 64, seed=s) for s in range(3)]
    batched = stylizer.run([(image, "paprika") for image in images])
    for image, outcome in zip(images, batched, strict=True):
        assert isinstance(outcome, tuple)
        assert outcome[1] == 3
        single = stylizer.run([(image, "paprika")])[0]
        assert isinstance(single, tuple)
        assert np.abs(single[0].astype(int) - outcome[0].astype(int)).max() <= 1


def test_mixed_batch_groups_by_style_and_shape(stylizer: ModelRunner) -> None:
    items = [
        (photo(96, 64), "paprika"),
        (photo(90, 60), "paprika"),
        (photo(64, 96), "paprika"),
        (photo(96, 64), "face_paint_512_v2"),
    ]
    results = stylizer.run(items)
    assert [r[1] for r in results if isinstance(r, tuple)] == [2, 2, 1, 1]
    for (image, _), result in zip(items, results, strict=True):
        assert isinstance(result, tuple)
        assert result[0].shape == image.shape


@pytest.mark.parametrize("size", [(1, 1), (7, 3), (512, 5), (5, 512)], ids=str)
def test_tiny_and_extreme_aspect_images_work(stylizer: ModelRunner, size: tuple[int, int]) -> None:
    width, height = size
    (result,) = stylizer.run([(photo(width, height), "paprika")])
    assert isinstance(result, tuple)
    assert result[0].shape == (height, width, 3)


def test_one_bad_item_fails_alone(stylizer: ModelRunner) -> None:
    good = photo(64, 64)
    results = stylizer.run(
        [(good, "paprika"), (np.zeros((8, 8), np.float32), "paprika"), (good, "nope"), (good, "celeba_distill")]
    )
    assert isinstance(results[0], tuple)
    assert isinstance(results[1], InvalidImage)
    assert isinstance(results[2], InvalidParameter)
    assert isinstance(results[3], WeightsMissing)  # not loaded on this stylizer


def test_states_report_origin(stylizer: ModelRunner) -> None:
    states = {s.name: s for s in stylizer.states()}
    assert states["paprika"].loaded
    assert states["paprika"].origin == "weights_dir"


def test_bf16_stays_within_35_db_of_fp32(weights_dir: Path) -> None:
    exact = anime_runner(weights_dir, ["paprika"], "fp32")
    fast = anime_runner(weights_dir, ["paprika"], "bf16")
    image = photo(192, 128, seed=9)
    (reference,), (approximate,) = exact.run([(image, "paprika")]), fast.run([(image, "paprika")])
    assert isinstance(reference, tuple)
    assert isinstance(approximate, tuple)
    assert psnr(reference[0], approximate[0]) >= 35.0


@pytest.mark.slow
# Raised inside torch's inductor on import, not by our code.
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_compiled_models_stay_within_35_db_of_fp32_and_compile_once(weights_dir: Path) -> None:
    exact = anime_runner(weights_dir, ["paprika"], "fp32")
    compiled = anime_runner(weights_dir, ["paprika"], "bf16", compiled=True)
    compiled.warm_up()
    assert "torch.compile" in compiled.states()[0].device
    torch._dynamo.utils.counters.clear()
    for width, height in [(192, 128), (160, 224)]:
        image = photo(width, height, seed=width)
        (reference,), (approximate,) = exact.run([(image, "paprika")]), compiled.run([(image, "paprika")])
        assert isinstance(reference, tuple)
        assert isinstance(approximate, tuple)
        assert psnr(reference[0], approximate[0]) >= 35.0
    # Photos of new shapes reuse the graph compiled at warm-up: no request waits for a compile.
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 0


def test_forward_batch_does_not_change_results(stylizer: ModelRunner) -> None:
    items = [(photo(96, 64, seed=s), "paprika") for s in range(4)]
    stylizer.forward_batch = 4
    together = stylizer.run(items)
    stylizer.forward_batch = 1
    alone = stylizer.run(items)
    for a, b in zip(together, alone, strict=True):
        assert isinstance(a, tuple)
        assert isinstance(b, tuple)
        assert a[1] == b[1] == 4
        assert psnr(a[0], b[0]) >= 40.0  # bf16: a batch's kernels round differently


def test_mattes_are_normalised_to_unit_range(fp32: ModelRunner) -> None:
    (outcome,) = fp32.run([(photo(320, 320), "u2netp")])
    assert isinstance(outcome, tuple)
    matte, batch = outcome
    assert matte.shape == (320, 320)
    assert batch == 1
    assert matte.min() == pytest.approx(0.0, abs=1e-6)
    assert matte.max() == pytest.approx(1.0, abs=1e-6)


def test_bad_items_fail_alone(fp32: ModelRunner) -> None:
    outcomes = fp32.run([(photo(320, 320), "u2netp"), (photo(100, 100), "u2netp"), (photo(320, 320), "u2net")])
    assert isinstance(outcomes[0], tuple)
    assert isinstance(outcomes[1], InvalidImage)
    assert isinstance(outcomes[2], WeightsMissing)  # the test weights leave u2net out


def test_bf16_mattes_stay_close_to_fp32(fp32: ModelRunner, weights_dir: Path) -> None:
    image = photo(320, 320, seed=4)
    (exact,), (approximate,) = fp32.run([(image, "u2netp")]), matting_runner(weights_dir, "bf16").run([(image, "u2netp")])
    assert isinstance(exact, tuple)
    assert isinstance(approximate, tuple)
    assert float(np.abs(exact[0] - approximate[0]).mean()) < 0.02


@pytest.mark.slow
def test_a_forward_past_the_default_output_hands_its_memory_back_a_while_after(weights_dir: Path) -> None:
    """Under the model replicas' allocator a forward at the default output's size keeps its memory for
    the next one; one past it keeps its memory for a while, then hands it back instead of holding its peak."""
    probe = [sys.executable, "-m", "tests.core.memory_probe", str(weights_dir)]
    found = subprocess.run(probe, env={**os.environ, **MODEL_ALLOCATOR}, capture_output=True, text=True, check=True)
    uss = json.loads(found.stdout.splitlines()[-1])
    assert uss["default"] > uss["loaded"] + 200, uss
    assert uss["larger"] > uss["default"] - 100, uss
    assert uss["later"] < uss["default"] - 200, uss
