"""Golden outputs for the deterministic OpenCV filters, as 256-bit perceptual hashes.

Regenerate after an intended change: pytest tests/toonserve/test_art.py --accept-golden
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.art import FILTERS, FilterParams, WatercolorParams, in_strips, parallel_groups, render
from core.effects import CATALOGUE
from core.errors import InvalidParameter
from tests.images import photo

GOLDEN = Path(__file__).parent / "golden_filters.json"
MAX_HAMMING = 8


def perceptual_hash(image: np.ndarray) -> str:
    """Average hash of a 16x16 gray thumbnail, as 64 hex digits."""
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    gray = cv2.resize(gray, (16, 16), interpolation=cv2.INTER_AREA)
    bits = (gray > gray.mean()).flatten()
    return f"{int(''.join('1' if b else '0' for b in bits), 2):064x}"


def hamming(a: str, b: str) -> int:
    return bin(int(a, 16) ^ int(b, 16)).count("1")


@pytest.mark.parametrize("name", FILTERS.names())
def test_filter_matches_golden(name: str, request: pytest.FixtureRequest) -> None:
    art_filter = FILTERS.get(name)
    image = photo(256, 192, seed=3)
    out = art_filter.apply(image, art_filter.params())
    assert out.shape == (image.shape[:2] if name == "pencil_sketch" else image.shape)
    assert out.dtype == np.uint8
    actual = perceptual_hash(out)
    golden = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    if request.config.getoption("--accept-golden"):
        golden[name] = actual
        GOLDEN.write_text(json.dumps(golden, indent=2, sort_keys=True) + "\n")
    assert name in golden, "no golden yet: run with --accept-golden"
    assert hamming(actual, golden[name]) <= MAX_HAMMING


@pytest.mark.parametrize("name", FILTERS.names())
def test_filter_is_deterministic(name: str) -> None:
    art_filter = FILTERS.get(name)
    image = photo(96, 64, seed=5)
    assert np.array_equal(art_filter.apply(image, art_filter.params()), art_filter.apply(image, art_filter.params()))


def test_bad_filter_parameters_are_refused() -> None:
    with pytest.raises(InvalidParameter, match="sigma_s"):
        CATALOGUE.get("watercolor").parse({"sigma_s": "-3"})
    with pytest.raises(InvalidParameter, match="colour"):
        CATALOGUE.get("oil_painting").parse({"colour": "red"})


def test_render_shares_the_sketch_and_matches_each_filter() -> None:
    image = photo(96, 64, seed=2)
    wanted: list[tuple[str, FilterParams]] = [(f.name, f.params()) for f in FILTERS]
    for (name, params), out in zip(wanted, render(image, wanted), strict=True):
        assert np.array_equal(out, FILTERS.get(name).apply(image, params)), name


def test_parallel_groups_put_the_sketches_together() -> None:
    assert parallel_groups(FILTERS.names()) == [["pencil_sketch", "color_pencil"], ["oil_painting"], ["watercolor"]]


def test_watercolor_in_strips_matches_the_whole_image() -> None:
    image = photo(160, 240, seed=4)
    params = WatercolorParams(sigma_s=20.0)
    whole = FILTERS.get("watercolor").apply(image, params)
    with ThreadPoolExecutor(3) as pool:
        striped = in_strips(FILTERS.get("watercolor"), image, params, 3, pool)
        assert cv2.PSNR(whole, striped) > 50.0
        wanted: list[tuple[str, FilterParams]] = [("watercolor", params)]
        assert np.array_equal(render(image, wanted, pool, 3)[0], striped)
        # Too short for its context (2 x 120 rows per strip at the default sigma_s): one ordinary call.
        assert np.array_equal(
            in_strips(FILTERS.get("watercolor"), image, WatercolorParams(), 3, pool),
            FILTERS.get("watercolor").apply(image, WatercolorParams()),
        )
