"""A tile's forward pass told what the whole image's would know: its GroupNorm statistics and its place."""

from __future__ import annotations

import torch

from models.animegan import ANIME_WEIGHTS
from models.tiling import Placed, applying, as_tile, recording
from models.weights import seeded_init


def test_statistics_recorded_on_an_image_and_applied_to_it_change_nothing() -> None:
    generator = seeded_init(ANIME_WEIGHTS.get("paprika").build(), 1)
    x = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.inference_mode():
        plain = generator(x)
        with recording(generator) as statistics:
            generator(x)
        with applying(generator, statistics):
            applied = generator(x)
        after = generator(x)
    assert len(statistics) == sum(isinstance(m, torch.nn.GroupNorm) for m in generator.modules())
    assert torch.allclose(applied, plain, atol=1e-5)
    assert torch.equal(after, plain)


def test_applied_statistics_replace_the_inputs_own() -> None:
    generator = seeded_init(ANIME_WEIGHTS.get("paprika").build(), 1)
    x = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.inference_mode():
        with recording(generator) as statistics:
            generator(x)
        with applying(generator, statistics):
            darker = generator(x - 0.5)
        assert not torch.allclose(darker, generator(x - 0.5), atol=1e-3)


def test_a_tile_placed_as_the_whole_image_is_the_whole_image() -> None:
    generator = seeded_init(ANIME_WEIGHTS.get("paprika").build(), 1)
    x = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.inference_mode():
        plain = generator(x)
        with as_tile(generator, Placed((0, 0), (64, 96))):
            placed = generator(x)
    assert torch.allclose(placed, plain, atol=1e-5)
