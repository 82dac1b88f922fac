"""Synthetic photos for tests: deterministic, with edges, gradients and colour, in any format."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def photo(width: int, height: int, seed: int = 0) -> np.ndarray:
    """RGB uint8 HWC: smooth gradients plus a few filled discs, so filters have edges to find."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack(
        [
            128 + 100 * np.sin(xs / max(width, 1) * 6.0 + seed),
            128 + 100 * np.cos(ys / max(height, 1) * 5.0 + seed),
            128 + 80 * np.sin((xs + ys) / max(width + height, 1) * 8.0),
        ],
        axis=2,
    )
    for _ in range(6):
        cx, cy = rng.integers(0, width), rng.integers(0, height)
        radius = max(2, min(width, height) // int(rng.integers(4, 9)))
        image[(xs - cx) ** 2 + (ys - cy) ** 2 < radius**2] = rng.integers(0, 256, 3)
    return np.clip(image, 0, 255).astype(np.uint8)


def encode(image: np.ndarray | Image.Image, fmt: str, **save_args: object) -> bytes:
    picture = image if isinstance(image, Image.Image) else Image.fromarray(image)
    buffer = io.BytesIO()
    picture.save(buffer, fmt, **save_args)
    return buffer.getvalue()


def decode(data: bytes) -> Image.Image:
    picture = Image.open(io.BytesIO(data))
    picture.load()
    return picture


def pixels(data: bytes) -> np.ndarray:
    """An encoded picture as RGB uint8 HWC (gray expanded to three channels, alpha dropped)."""
    return np.asarray(decode(data).convert("RGB"))


def assert_blend(portrait: np.ndarray, mask: np.ndarray, person: np.ndarray, background: np.ndarray) -> None:
    """portrait = alpha x person + (1 - alpha) x background, alpha the mask in [0, 1], up to rounding."""
    alpha = np.asarray(decode_mask(mask), np.float64)[:, :, None] / 255.0
    expected = np.rint(person.astype(np.float64) * alpha + background.astype(np.float64) * (1.0 - alpha))
    assert portrait.shape == expected.shape
    assert np.abs(portrait.astype(np.float64) - expected).max() <= 1.0


def decode_mask(mask: np.ndarray) -> np.ndarray:
    """A mask decoded as RGB (three equal channels) or gray, as gray HW."""
    return mask[:, :, 0] if mask.ndim == 3 else mask


def psnr(reference: np.ndarray, other: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 images, in dB (inf where they are equal)."""
    mse = float(np.mean((reference.astype(np.float64) - other.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * float(np.log10(255.0**2 / mse))
