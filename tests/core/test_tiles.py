"""Tiles: they cover the image, overlap as declared, and blend back without seams."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from core.runner import ModelRunner
from core.settings import Settings
from core.tiles import MAX_WORKING_SIDE, OVERLAP, blend, plan, spans
from models.animegan import ANIME_WEIGHTS
from tests.images import photo, psnr
from tests.runners import STYLE, anime_runner, styled


@pytest.mark.parametrize("length", [1, 300, 1024, 1025, 2048, 2049, 3000, 4096])
@pytest.mark.parametrize("stride", [1, 4])
@pytest.mark.parametrize("tile_side", [2 * OVERLAP, 1024, 1500])
def test_spans_cover_the_length_fewest_and_overlapping(length: int, tile_side: int, stride: int) -> None:
    found = spans(length, tile_side, stride)
    assert len(found) == math.ceil(length / tile_side)
    assert found[0].start == 0
    assert found[-1].start + found[-1].length == length
    for before, after in itertools.pairwise(found):
        shared = before.start + before.length - after.start
        assert abs(shared - OVERLAP) <= stride
        assert before.shared_after == after.shared_before == shared
    assert all(span.start % stride == 0 for span in found)
    assert all(span.length - span.shared_before - span.shared_after <= tile_side + stride for span in found)


@pytest.mark.parametrize(("height", "width"), [(800, 1200), (1700, 300), (257, 2100)])
def test_blending_unchanged_tiles_gives_the_image_back(height: int, width: int) -> None:
    image = photo(width, height)
    layout = plan(height, width, 2 * OVERLAP, 4)
    assert len(layout) > 1
    assert np.array_equal(blend(layout, [tile.crop(image) for tile in layout]), image)
    matte = image[:, :, 0].astype(np.float32) / 255.0
    assert np.allclose(blend(layout, [tile.crop(matte) for tile in layout]), matte, atol=1e-6)


SIZE = (820, 800)
"""(width, height): just past two tiles of the smallest side (2 x OVERLAP) each way, so 2 x 2 tiles."""


def tiling_runner(weights_dir: Path, tile_side: int) -> ModelRunner:
    settings = Settings(weights_dir=weights_dir, cache_dir=weights_dir / "cache", download_weights=False, tile_side=tile_side)
    return anime_runner(settings)


@pytest.fixture(scope="module")
def drawn_whole(weights_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The photo both tiling tests draw, and its anime drawn whole (one forward, shared: it is the slow part)."""
    image = photo(SIZE[0], SIZE[1], seed=5)
    return image, styled(tiling_runner(weights_dir, MAX_WORKING_SIDE), image)


def test_anime_past_the_tile_side_matches_anime_drawn_whole(
    weights_dir: Path, drawn_whole: tuple[np.ndarray, np.ndarray]
) -> None:
    image, whole = drawn_whole
    tiled = tiling_runner(weights_dir, 2 * OVERLAP)
    assert len(plan(SIZE[1], SIZE[0], tiled.tile_side)) == 4
    assert psnr(whole, styled(tiled, image)) >= 40.0


def test_tiles_normalised_on_their_own_would_show_seams(weights_dir: Path, drawn_whole: tuple[np.ndarray, np.ndarray]) -> None:
    """What the shared statistics are for: the same tiles, each normalised by its own statistics."""
    image, whole = drawn_whole
    runner = tiling_runner(weights_dir, MAX_WORKING_SIDE)
    layout = plan(SIZE[1], SIZE[0], 2 * OVERLAP, ANIME_WEIGHTS.get(STYLE).transforms.stride)
    assert psnr(whole, blend(layout, [styled(runner, tile.crop(image)) for tile in layout])) < 40.0
