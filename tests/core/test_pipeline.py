"""Every effect through the real pipeline, in this process (LocalStages), on seeded weights."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.effects import CATALOGUE
from core.messages import Rendered
from core.pipeline import Pipeline
from core.settings import Settings
from core.stages import LocalStages
from tests.images import assert_blend, decode, encode, photo, pixels


@pytest.fixture(scope="module")
def pipeline(weights_dir: Path) -> Iterator[Pipeline]:
    settings = Settings(weights_dir=weights_dir, cache_dir=weights_dir / "cache", download_weights=False)
    with ThreadPoolExecutor(2) as executor:
        yield Pipeline(settings, CATALOGUE, LocalStages(settings), executor)


def render(pipeline: Pipeline, effect: str, data: bytes, **values: Any) -> Rendered:
    chosen = CATALOGUE.get(effect)
    params, output = chosen.resolve(chosen.query_model().model_validate(values))
    return asyncio.run(pipeline.render(data, effect, params, output))


def picture(rendered: Rendered) -> np.ndarray:
    (encoded,) = rendered.pictures.values()
    return pixels(encoded.data)


@pytest.mark.parametrize("effect", [effect.name for effect in CATALOGUE])
def test_every_effect_renders_its_defaults_at_the_output_size(pipeline: Pipeline, effect: str) -> None:
    rendered = render(pipeline, effect, encode(photo(300, 200), "JPEG"), max_side=150)
    assert rendered.pictures
    for encoded in rendered.pictures.values():
        assert decode(encoded.data).size == (150, 100)
    assert rendered.timings[0].name == "decode"


def test_photos_decode_at_least_as_large_as_the_largest_fixed_model_input(pipeline: Pipeline) -> None:
    assert pipeline.decode_floor == (320, 320)


@pytest.mark.parametrize(
    "size", [(320, 200), (4000, 40), (40, 4000), (1, 1)], ids=["photo", "wide strip", "tall strip", "one pixel"]
)
@pytest.mark.parametrize("background", ["watercolor", "pencil_sketch", "paprika", "1e90ff"])
def test_portrait_is_the_single_effects_blended_over_the_matte(
    pipeline: Pipeline, size: tuple[int, int], background: str
) -> None:
    data = encode(photo(*size, seed=7), "PNG")
    portrait = picture(render(pipeline, "portrait", data, style="face_paint_512_v2", background=background))
    mask = picture(render(pipeline, "matte", data, output="mask"))
    person = picture(render(pipeline, "anime", data, style="face_paint_512_v2"))
    if background in CATALOGUE.effects:
        behind = picture(render(pipeline, background, data))
    elif background.isalpha():
        behind = picture(render(pipeline, "anime", data, style=background))
    else:
        behind = np.broadcast_to(np.array([0x1E, 0x90, 0xFF], np.uint8), person.shape)
    assert_blend(portrait, mask, person, behind)


def test_portrait_over_the_original(pipeline: Pipeline) -> None:
    original = photo(96, 64, seed=3)
    data = encode(original, "PNG")
    portrait = picture(render(pipeline, "portrait", data, background="original"))
    mask = picture(render(pipeline, "matte", data, output="mask"))
    person = picture(render(pipeline, "anime", data))
    assert_blend(portrait, mask, person, original)


def test_portrait_names_each_branch_in_server_timing(pipeline: Pipeline) -> None:
    names = [t.name for t in render(pipeline, "portrait", encode(photo(96, 64), "PNG")).timings]
    assert names[0] == "decode"
    assert sorted(names[1:-2]) == ["background", "matte", "person"]
    assert names[-2:] == ["compose", "encode"]
