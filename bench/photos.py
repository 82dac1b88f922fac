"""The photos every benchmark section uses: ../shared/samples where present, generated ones otherwise."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

SAMPLES = Path(__file__).resolve().parent.parent.parent / "shared" / "samples"


def synthetic_photo(width: int, height: int, seed: int = 0) -> np.ndarray:
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


def jpeg(image: np.ndarray, quality: int = 92) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def photo(width: int, height: int) -> tuple[np.ndarray, str]:
    """A photo of exactly this size: the first sample resized (centre-cropped to the aspect), else generated."""
    candidates = sorted(SAMPLES.glob("*.jpg")) if SAMPLES.is_dir() else []
    if not candidates:
        return synthetic_photo(width, height), "generated"
    source = Image.open(candidates[0]).convert("RGB")
    scale = max(width / source.width, height / source.height)
    resized = source.resize(
        (max(width, round(source.width * scale)), max(height, round(source.height * scale))), Image.Resampling.LANCZOS
    )
    left, top = (resized.width - width) // 2, (resized.height - height) // 2
    return np.asarray(resized.crop((left, top, left + width, top + height))), candidates[0].name
