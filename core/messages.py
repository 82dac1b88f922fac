"""What travels between deployments: plain dataclasses of numpy arrays (RGB uint8 HWC)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

OutputFormat = Literal["png", "jpeg", "webp"]
MatteOutput = Literal["cutout", "mask", "composite"]
MEDIA_TYPES: dict[str, str] = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


@dataclass(frozen=True)
class StageTiming:
    name: str
    ms: float
    batch: int | None = None

    def header_entry(self) -> str:
        """One W3C Server-Timing entry, e.g. `anime;dur=640.2;desc="batch=4"`."""
        entry = f"{self.name};dur={self.ms:.1f}"
        return entry + (f';desc="batch={self.batch}"' if self.batch is not None else "")


@dataclass(frozen=True)
class WorkingSize:
    """The model's input size: `side` on the long side (aspect kept) or a `side` x `side` square."""

    side: int
    square: bool = False


@dataclass(frozen=True)
class Prepared:
    """A decoded photo. `image` is at the output size; `working` at the effect's working size."""

    output_size: tuple[int, int]  # (width, height)
    image: np.ndarray | None
    working: np.ndarray | None
    alpha: np.ndarray | None  # uint8 HW at the output size, where the input had transparency
    timings: tuple[StageTiming, ...] = ()


@dataclass(frozen=True)
class MatteOptions:
    output: MatteOutput = "cutout"
    background: tuple[int, int, int] = (255, 255, 255)
    threshold: float | None = None
    """Alpha at or above it becomes opaque, below it transparent; None keeps the soft matte."""
    erode: int = 0
    """Pixels shaved off the foreground's edge."""
    feather: float = 0.0
    """Gaussian sigma in pixels that softens the matte's edge."""


@dataclass(frozen=True)
class Rendered:
    """A model stage's result, resized and encoded by the preprocessor's `finish`."""

    image: np.ndarray  # RGB uint8 HWC at any size
    output_size: tuple[int, int]
    alpha: np.ndarray | None = None  # uint8 HW at the output size (the input's transparency)
    matte: np.ndarray | None = None  # float32 HW in [0, 1] at any size (matting's prediction)
    timings: tuple[StageTiming, ...] = field(default=())

    def with_timing(self, timing: StageTiming) -> Rendered:
        return replace(self, timings=(*self.timings, timing))


@dataclass(frozen=True)
class Encoded:
    data: bytes
    media_type: str
    size: tuple[int, int]
    timings: tuple[StageTiming, ...]
