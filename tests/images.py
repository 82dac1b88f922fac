"""Synthetic photos for tests: deterministic, with edges, gradients and colour, in any format."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from bench.photos import synthetic_photo


def photo(width: int, height: int, seed: int = 0) -> np.ndarray:
    """RGB uint8 HWC: smooth gradients plus a few filled discs (the benchmarks' generator)."""
    return synthetic_photo(width, height, seed)


def encode(image: np.ndarray | Image.Image, fmt: str, **save_args: object) -> bytes:
    picture = image if isinstance(image, Image.Image) else Image.fromarray(image)
    buffer = io.BytesIO()
    picture.save(buffer, fmt, **save_args)
    return buffer.getvalue()


def decode(data: bytes) -> Image.Image:
    picture = Image.open(io.BytesIO(data))
    picture.load()
    return picture
