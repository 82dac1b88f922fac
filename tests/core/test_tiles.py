"""Tiles: they cover the image, overlap as declared, and blend back without seams."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from core.device import choose_device
from core.runner import ModelRunner
from core.settings import Settings
from core.tiles import OVERLAP, blend, plan, spans
from models.animegan import ANIME_WEIGHTS
from tests.images import photo, psnr


@pytest.mark.parametrize("length", [1, 300, 1024, 1025, 2048, 2049, 3000, 4096])
@pytest.mark.parametrize("tile_side", [256, 640, 1024])
def test_spans_cover_the_length_fewest_and_overlapping(length: int, tile_side: int) -> None:
    found = spans(length, tile_side)
    assert len(found) == math.ceil(length / tile_side)
    assert found[0].start == 0
    assert found[-1].start + found[-1].length == length
    for before, after in itertools.pairwise(found):
        shared = before.start + before.length - after.start
        assert abs(shared - OVERLAP) <= 1
        assert before.shared_after == after.shared_before == shared
    assert all(span.length - span.shared_before - span.shared_after <= tile_side for span in found)


@pytest.mark.parametrize(("height", "width"), [(480, 640), (700, 300), (257, 1100)])
def test_blending_unchanged_tiles_gives_the_image_back(height: int, width: int) -> None:
    image = photo(width, height)
    layout = plan(height, width, 256)
    assert len(layout) > 1
    assert np.array_equal(blend(layout, [tile.crop(image) for tile in layout]), image)
    matte = image[:, :, 0].astype(np.float32) / 255.0
    assert np.allclose(blend(layout, [tile.crop(matte) for tile in layout]), matte, atol=1e-6)


def test_anime_in_tiles_matches_anime_whole(weights_dir: Path) -> None:
    settings = Settings(weights_dir=weights_dir, cache_dir=weights_dir / "cache", download_weights=False)
    runner = ModelRunner(settings, ANIME_WEIGHTS, choose_device(gpu_assigned=False), ["paprika"])
    image = photo(640, 480, seed=5)
    layout = plan(480, 640, 256)
    outcomes = runner.run([(image, "paprika")] + [(tile.crop(image), "paprika") for tile in layout])
    assert all(isinstance(outcome, tuple) for outcome in outcomes)
    whole, *parts = (outcome[0] for outcome in outcomes if isinstance(outcome, tuple))
    assert len(layout) == 6
    assert psnr(whole, blend(layout, parts)) >= 40.0
