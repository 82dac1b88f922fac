from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.device import choose_device
from core.errors import InvalidImage, WeightsMissing
from core.matting import Matter
from core.settings import Precision, Settings
from tests.images import photo


def matter(weights_dir: Path, precision: Precision) -> Matter:
    settings = Settings(weights_dir=weights_dir, cache_dir=weights_dir / "cache", download_weights=False)
    return Matter(settings, ["u2netp", "u2net"], choose_device(gpu_assigned=False, precision=precision))


@pytest.fixture(scope="module")
def fp32(weights_dir: Path) -> Matter:
    return matter(weights_dir, "fp32")


def test_mattes_are_normalised_to_unit_range(fp32: Matter) -> None:
    (outcome,) = fp32.run([(photo(320, 320), "u2netp")])
    assert isinstance(outcome, tuple)
    matte, batch = outcome
    assert matte.shape == (320, 320)
    assert batch == 1
    assert matte.min() == pytest.approx(0.0, abs=1e-6)
    assert matte.max() == pytest.approx(1.0, abs=1e-6)


def test_bad_items_fail_alone(fp32: Matter) -> None:
    outcomes = fp32.run([(photo(320, 320), "u2netp"), (photo(100, 100), "u2netp"), (photo(320, 320), "u2net")])
    assert isinstance(outcomes[0], tuple)
    assert isinstance(outcomes[1], InvalidImage)
    assert isinstance(outcomes[2], WeightsMissing)  # the test weights leave u2net out


def test_bf16_mattes_stay_close_to_fp32(fp32: Matter, weights_dir: Path) -> None:
    image = photo(320, 320, seed=4)
    (exact,), (approximate,) = fp32.run([(image, "u2netp")]), matter(weights_dir, "bf16").run([(image, "u2netp")])
    assert isinstance(exact, tuple)
    assert isinstance(approximate, tuple)
    assert float(np.abs(exact[0] - approximate[0]).mean()) < 0.02
