"""What a model needs so that a tile of an image comes out as that part of the whole image would.

- GroupNorm statistics: a GroupNorm normalises by the mean and variance of all it sees; run on a
  tile, each tile is normalised by its own and the tiles disagree. Recorded on the whole image at a
  size that fits in memory and applied to every tile, the statistics are the image's again.
  Each GroupNorm's forward is replaced while recording or applying, so that the model's own code
  is untouched; on eager modules, not compiled ones.
- Where the tile sits: a model whose layers depend on the image's size (AnimeGAN's corner-aligned
  upsampling) is a TileAware, told its tile's place by `as_tile`.
docs/performance.md has what each buys.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

Statistics = dict[nn.Module, tuple[torch.Tensor, torch.Tensor]]
"""GroupNorm -> (mean, variance) per group, in float32."""

NormForward = Callable[[torch.Tensor], torch.Tensor]


def _norms(module: nn.Module) -> list[nn.GroupNorm]:
    return [m for m in module.modules() if isinstance(m, nn.GroupNorm)]


@contextmanager
def _forwards_replaced(norms: list[nn.GroupNorm], forward_of: Callable[[nn.GroupNorm], NormForward]) -> Iterator[None]:
    """Inside, each norm runs forward_of(norm) instead of its own forward."""
    for norm in norms:
        norm.forward = forward_of(norm)  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        for norm in norms:
            del norm.forward


@contextmanager
def recording(module: nn.Module) -> Iterator[Statistics]:
    """Inside, a forward pass of one image fills the dict yielded with every GroupNorm's statistics.

    Each norm runs torch's own kernel, which returns the statistics it normalised by alongside its
    output: nothing is computed twice, and channels_last bf16 stays as it is."""
    found: Statistics = {}

    def record(norm: nn.GroupNorm) -> NormForward:
        def forward(x: torch.Tensor) -> torch.Tensor:
            out, mean, rstd = torch.native_group_norm(
                x, norm.weight, norm.bias, x.shape[0], x.shape[1], x[0, 0].numel(), norm.num_groups, norm.eps
            )
            # Per image and group; pooled over the batch as one sample, as GroupNorm's own would be.
            mean = mean.float()
            square = rstd.float() ** -2 - norm.eps + mean**2
            pooled = mean.mean(dim=0)
            found[norm] = (pooled, square.mean(dim=0) - pooled**2)
            return out

        return forward

    with _forwards_replaced(_norms(module), record):
        yield found


@contextmanager
def applying(module: nn.Module, statistics: Statistics) -> Iterator[None]:
    """Inside, every GroupNorm normalises by the recorded statistics instead of its input's own.

    With its statistics fixed, a GroupNorm is batch normalisation by them, each group's repeated
    for its channels: torch's batch_norm kernel, which keeps the input's dtype and memory format."""
    norms = _norms(module)
    if set(norms) != set(statistics):
        raise ValueError(f"statistics recorded for {len(statistics)} of {len(norms)} GroupNorms")

    def apply(norm: nn.GroupNorm) -> NormForward:
        mean, var = (v.repeat_interleave(norm.num_channels // norm.num_groups) for v in statistics[norm])
        return functools.partial(
            F.batch_norm, running_mean=mean, running_var=var, weight=norm.weight, bias=norm.bias, eps=norm.eps
        )

    with _forwards_replaced(norms, apply):
        yield


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
