"""How a photo becomes a model's input and its output a picture: the preprocessing that travels with the weights.

The service, the raw benchmark and the baseline server all call these, so that each weights
entry's input size, value range, normalisation and layout are stated once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch


def fit_within(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """(width, height) scaled down so that its long side is at most `max_side`; never up."""
    width, height = size
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


@dataclass(frozen=True)
class ImageTransforms(ABC):
    side: int
    """The long side the weights work at; with `square`, every input is side x side."""
    square: bool = False
    """Inputs are resized to side x side, the aspect not kept; otherwise any size up to `side` works."""
    stride: int = 1
    """How much the model downsamples: a tile of a larger image starts at a multiple of it (core/tiles.py)."""

    @property
    def fixed_size(self) -> tuple[int, int] | None:
        return (self.side, self.side) if self.square else None

    def working_size(self, size: tuple[int, int], long_side: int | None = None) -> tuple[int, int]:
        """(width, height) of the input for a photo of `size` (width, height); `long_side` caps it where the aspect is kept."""
        if self.fixed_size is not None:
            return self.fixed_size
        return fit_within(size, long_side or self.side)

    @abstractmethod
    def to_input(self, batch: torch.Tensor) -> torch.Tensor:
        """RGB uint8 NHWC, at the working size -> the model's input, float NCHW (channels_last in memory)."""

    @abstractmethod
    def to_output(self, output: torch.Tensor) -> torch.Tensor:
        """The model's output -> RGB uint8 NHWC, or a float NHW map in [0, 1]."""
