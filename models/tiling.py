"""What a model needs so that a tile of an image comes out as that part of the whole image would.

- GroupNorm statistics: a GroupNorm normalises by the mean and variance of all it sees; run on a
  tile, each tile is normalised by its own and the tiles disagree. Recorded on the whole image at a
  size that fits in memory and applied to every tile, the statistics are the image's again.
  Forward hooks, so that the model's own code is untouched; on eager modules, not compiled ones.
- Where the tile sits: a model whose layers depend on the image's size (AnimeGAN's corner-aligned
  upsampling) is a TileAware, told its tile's place by `as_tile`.
docs/performance.md has what each buys.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


def _groups(module: nn.GroupNorm, x: torch.Tensor) -> torch.Tensor:
    """x as (batch, groups, rest), in float32."""
    return x.float().reshape(x.shape[0], module.num_groups, -1)


def _normalised(module: nn.GroupNorm, x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    grouped = (_groups(module, x) - mean[None, :, None]) * torch.rsqrt(var[None, :, None] + module.eps)
    out = grouped.reshape(x.shape)
    if module.affine:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        out = out * module.weight.reshape(shape) + module.bias.reshape(shape)
    return out


Statistics = dict[nn.Module, tuple[torch.Tensor, torch.Tensor]]
"""GroupNorm -> (mean, variance) per group."""


def _norms(module: nn.Module) -> list[nn.GroupNorm]:
    return [m for m in module.modules() if isinstance(m, nn.GroupNorm)]


@contextmanager
def recording(module: nn.Module) -> Iterator[Statistics]:
    """Inside, a forward pass of one image fills the dict yielded with every GroupNorm's statistics."""
    found: Statistics = {}

    def record(norm: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        grouped = _groups(norm, inputs[0])  # type: ignore[arg-type]
        found[norm] = (grouped.mean(dim=(0, 2)), grouped.var(dim=(0, 2), unbiased=False))

    handles = [norm.register_forward_hook(record) for norm in _norms(module)]
    try:
        yield found
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def applying(module: nn.Module, statistics: Statistics) -> Iterator[None]:
    """Inside, every GroupNorm normalises by the recorded statistics instead of its input's own."""
    norms = _norms(module)
    if set(norms) != set(statistics):
        raise ValueError(f"statistics recorded for {len(statistics)} of {len(norms)} GroupNorms")

    def apply(norm: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
        mean, var = statistics[norm]
        return _normalised(norm, inputs[0], mean, var).to(output.dtype)  # type: ignore[arg-type]

    handles = [norm.register_forward_hook(apply) for norm in norms]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@dataclass(frozen=True)
class Placed:
    """A tile's place in its image, in input pixels, (rows, columns) each."""

    offset: tuple[int, int]
    size: tuple[int, int]
    """The whole image's height and width, as its own forward pass would see them (padded)."""


class TileAware(nn.Module):
    """A model whose forward pass depends on where its input sits in the image: it reads `tile`."""

    def __init__(self) -> None:
        super().__init__()
        self.tile: Placed | None = None
        """Where the input sits in a larger image, while it runs as a tile of it; None for a whole image."""


@contextmanager
def as_tile(module: nn.Module, placed: Placed) -> Iterator[None]:
    """Inside, the TileAware modules in `module` take their inputs as a tile placed so."""
    aware = [m for m in module.modules() if isinstance(m, TileAware)]
    for part in aware:
        part.tile = placed
    try:
        yield
    finally:
        for part in aware:
            part.tile = None
