"""A large image through a fully convolutional model in overlapping tiles, blended without seams.

A forward pass's memory grows with its pixels (docs/performance.md), so where the tile side is set
below an image's (Settings.tile_side), it runs as tiles that overlap their neighbours by OVERLAP
pixels (core/runner.py). Across each overlap the two tiles' weights ramp linearly, one down as the
other comes up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MAX_WORKING_SIDE = 2048
"""The longest side one forward pass takes."""
OVERLAP = 384
"""Pixels neighbouring tiles share: what a tile's edge changes (its padding, what its convolutions
cannot see beyond it) fades out across them instead of meeting at a seam."""


@dataclass(frozen=True)
class Span:
    """One tile's extent along one axis, and how much of it it shares with the tile before and after."""

    start: int
    length: int
    shared_before: int
    shared_after: int

    def weights(self) -> np.ndarray:
        """1 where the tile is alone; across a stretch it shares, a linear ramp that sums to 1 with its neighbour's."""
        weight = np.ones(self.length, np.float32)
        if self.shared_before:
            weight[: self.shared_before] = (np.arange(self.shared_before, dtype=np.float32) + 0.5) / self.shared_before
        if self.shared_after:
            weight[self.length - self.shared_after :] = (
                np.arange(self.shared_after, 0, -1, dtype=np.float32) - 0.5
            ) / self.shared_after
        return weight


def spans(length: int, tile_side: int, stride: int = 1, overlap: int = OVERLAP) -> list[Span]:
    """The fewest spans whose parts outside the overlaps are at most `tile_side`, evenly spread,
    each sharing `overlap` pixels (give or take `stride`) with its neighbours. Each starts at a
    multiple of `stride`, the model's downsampling: a tile shifted against the whole image's grid
    would be sampled differently by its strided convolutions."""
    count = math.ceil(length / tile_side)
    if count == 1:
        return [Span(0, length, 0, 0)]
    span = min(length, math.ceil((length + (count - 1) * overlap) / count))
    starts = [round(i * (length - span) / (count - 1) / stride) * stride for i in range(count)]
    ends = [start + span for start in starts[:-1]] + [length]
    return [
        Span(start, end - start, ends[i - 1] - start if i else 0, end - starts[i + 1] if i + 1 < count else 0)
        for i, (start, end) in enumerate(zip(starts, ends, strict=True))
    ]


@dataclass(frozen=True)
class Tile:
    rows: Span
    columns: Span

    @property
    def region(self) -> tuple[slice, slice]:
        """Its rows and columns in the image, for indexing."""
        rows, columns = self.rows, self.columns
        return slice(rows.start, rows.start + rows.length), slice(columns.start, columns.start + columns.length)

    def crop(self, image: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(image[self.region])

    def weights(self) -> np.ndarray:
        """HW float32: this tile's share of each of its pixels."""
        return self.rows.weights()[:, None] * self.columns.weights()[None, :]


def plan(height: int, width: int, tile_side: int, stride: int = 1) -> list[Tile]:
    """The tiles that cover an image of that size, row by row; a single tile where it fits in one."""
    return [Tile(rows, columns) for rows in spans(height, tile_side, stride) for columns in spans(width, tile_side, stride)]


def blend(tiles: Sequence[Tile], outputs: Sequence[np.ndarray]) -> np.ndarray:
    """The tiles' outputs (HWC or HW, each its tile's size) as one image, of their dtype."""
    last = tiles[-1]
    height, width = last.rows.start + last.rows.length, last.columns.start + last.columns.length
    total = np.zeros((height, width, *outputs[0].shape[2:]), np.float32)
    weights = np.zeros((height, width), np.float32)
    for tile, output in zip(tiles, outputs, strict=True):
        weight = tile.weights()
        total[tile.region] += output * (weight[:, :, None] if output.ndim == 3 else weight)
        weights[tile.region] += weight
    total /= weights[:, :, None] if total.ndim == 3 else weights
    if np.issubdtype(outputs[0].dtype, np.integer):
        limits = np.iinfo(outputs[0].dtype)
        return np.clip(np.rint(total), limits.min, limits.max).astype(outputs[0].dtype)
    return total.astype(outputs[0].dtype)
