"""A photo decoded once, for every stage of an effect, and the pictures effects make of it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from core import imaging


@dataclass(frozen=True)
class Photo:
    pixels: np.ndarray
    """RGB uint8 HWC as decoded: at least every size asked of it, where the photo is that large."""
    source_size: tuple[int, int]
    """(width, height) of the photo as shown, after its EXIF orientation."""
    size: tuple[int, int]
    """(width, height) of the output."""
    alpha: np.ndarray | None
    """uint8 HW at the output size, where the photo has transparency."""

    def at(self, size: tuple[int, int]) -> np.ndarray:
        """The photo resized to (width, height), from the decoded pixels."""
        return imaging.resize(self.pixels, size)

    @cached_property
    def image(self) -> np.ndarray:
        """RGB uint8 HWC at the output size."""
        return self.at(self.size)


@dataclass(frozen=True)
class Picture:
    """What an effect makes: at the output size, encoded by the pipeline."""

    image: np.ndarray
    """RGB uint8 HWC, or gray HW."""
    alpha: np.ndarray | None = None
    """uint8 HW, kept where the format can hold it."""


def decode_photo(data: bytes, *, max_side: int, floor: tuple[int, int], max_pixels: int) -> Photo:
    """Decodes once, at the smallest JPEG draft scale that covers the output size and `floor`.

    The draft depends on the photo and `max_side` only, never on the effect, so that every effect
    sees the same pixels of the same photo (portrait composes what the single effects return).
    """
    header = imaging.open_image(data, max_pixels)
    source = imaging.oriented_size(header)
    size = imaging.fit_within(source, max_side)
    rgb, alpha = imaging.decode(header, hint_size=(max(size[0], floor[0]), max(size[1], floor[1])))
    return Photo(rgb, source, size, imaging.resize(alpha, size) if alpha is not None else None)
