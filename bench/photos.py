"""The photos every benchmark section uses: ../shared/samples where present, the tests' generated ones otherwise."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from tests.images import photo as generated_photo

SAMPLES = Path(__file__).resolve().parent.parent.parent / "shared" / "samples"


def jpeg(image: np.ndarray, quality: int = 92) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def photo(width: int, height: int) -> tuple[np.ndarray, str]:
    """A photo of exactly this size: the first sample resized (centre-cropped to the aspect), else generated."""
    candidates = sorted(SAMPLES.glob("*.jpg")) if SAMPLES.is_dir() else []
    if not candidates:
        return generated_photo(width, height), "generated"
    source = Image.open(candidates[0]).convert("RGB")
    scale = max(width / source.width, height / source.height)
    resized = source.resize(
        (max(width, round(source.width * scale)), max(height, round(source.height * scale))), Image.Resampling.LANCZOS
    )
    left, top = (resized.width - width) // 2, (resized.height - height) // 2
    return np.asarray(resized.crop((left, top, left + width, top + height))), candidates[0].name


def photo_files(folder: Path, count: int, width: int, height: int, step: int) -> list[Path]:
    """`count` distinct JPEG files in `folder`, each `step` pixels wider than the last."""
    paths = []
    for index in range(count):
        path = folder / f"photo-{index + 1:02d}.jpg"
        path.write_bytes(jpeg(photo(width + step * index, height)[0]))
        paths.append(path)
    return paths
