from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from models.animegan import ANIME_WEIGHTS, AnimeGenerator, ReflectionPad
from models.u2net import U2NET_WEIGHTS, u2net_lite
from models.weights import for_inference, seeded_init

OFFICIAL_SHAPES = json.loads((Path(__file__).parent / "official_state_dict_shapes.json").read_text())
ARCHITECTURES: dict[str, Callable[[], nn.Module]] = {e.architecture: e.build for e in [*ANIME_WEIGHTS, *U2NET_WEIGHTS]}


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_state_dict_matches_official_keys_and_shapes(name: str) -> None:
    state = ARCHITECTURES[name]().state_dict()
    assert {k: list(v.shape) for k, v in state.items()} == OFFICIAL_SHAPES[name]


def test_anime_generator_keeps_size_and_range() -> None:
    generator = seeded_init(AnimeGenerator(), 0)
    with torch.inference_mode():
        out = generator(torch.rand(2, 3, 64, 96) * 2 - 1)
    assert out.shape == (2, 3, 64, 96)
    assert out.min() >= -1.0
    assert out.max() <= 1.0


def test_anime_padding_in_bf16_gives_the_convolutions_the_same_bits() -> None:
    """Under bf16 autocast, padding in bf16 (ReflectionPad) and padding in float32 (torch's own,
    the next conv casting back) must give the same output."""
    generator = seeded_init(AnimeGenerator(), 0).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    x = (torch.rand(1, 3, 64, 96) * 2 - 1).contiguous(memory_format=torch.channels_last)
    pads = [m for m in generator.modules() if isinstance(m, ReflectionPad)]
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        ours = generator(x)
        for pad in pads:
            pad.forward = functools.partial(nn.ReflectionPad2d.forward, pad)  # type: ignore[method-assign]
        torch_own = generator(x)
    assert pads
    assert torch.equal(ours, torch_own)


@pytest.mark.parametrize(("build", "size"), [(u2net_lite, (320, 320)), (u2net_lite, (100, 37))])
def test_u2net_predicts_one_map_in_unit_range(build: Callable[[], nn.Module], size: tuple[int, int]) -> None:
    net = seeded_init(build(), 0)
    with torch.inference_mode():
        out = net(torch.randn(1, 3, *size))
    assert out.shape == (1, 1, *size)
    assert 0.0 <= float(out.min()) <= float(out.max()) <= 1.0


@pytest.mark.parametrize("name", ["u2netp", "u2net_human_seg"])
def test_u2net_with_batch_norm_folded_predicts_the_same_matte(name: str) -> None:
    entry = U2NET_WEIGHTS.get(name)
    net = seeded_init(entry.build(), 3)
    x = torch.rand(2, 3, 160, 96)
    with torch.inference_mode():
        before = net(x)
        folded = for_inference(copy.deepcopy(net))
        after = folded(x)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) > 0
    assert torch.allclose(before, after, atol=1e-4)
    assert for_inference(folded) is folded  # folding again changes nothing
    with torch.inference_mode():
        assert torch.equal(folded(x), after)
