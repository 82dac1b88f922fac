"""A matte made usable: refined at the output size, and the blends built on it."""

from __future__ import annotations

import cv2
import numpy as np

from core import imaging


def refine(
    matte: np.ndarray,
    size: tuple[int, int],
    *,
    threshold: float | None = None,
    erode: int = 0,
    feather: float = 0.0,
    alpha: np.ndarray | None = None,
) -> np.ndarray:
    """float32 HW in [0, 1] at any size -> float32 HW in [0, 1] at `size` (width, height).

    In order: resized, binarised at `threshold`, `erode` pixels shaved off the edge, feathered
    with a Gaussian of sigma `feather`, then multiplied by the photo's own `alpha` (uint8 HW).
    """
    refined: np.ndarray = imaging.resize(matte, size).astype(np.float32, copy=True)
    if threshold is not None:
        refined = (refined >= threshold).astype(np.float32)
    if erode > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * erode + 1, 2 * erode + 1))
        refined = cv2.erode(refined, kernel)
    if feather > 0:
        refined = cv2.GaussianBlur(refined, (0, 0), feather)
    refined = np.clip(refined, 0.0, 1.0)
    if alpha is not None:
        refined = refined * (alpha.astype(np.float32) / 255.0)
    return refined


def to_uint8(weight: np.ndarray) -> np.ndarray:
    return np.rint(weight * 255.0).astype(np.uint8)


def composite(image: np.ndarray, weight: np.ndarray, background: np.ndarray | tuple[int, int, int]) -> np.ndarray:
    """weight x image + (1 - weight) x background: RGB uint8 HWC over an RGB image of its size or a colour."""
    w = weight[:, :, None]
    mixed = image.astype(np.float32) * w + np.asarray(background, np.float32) * (1.0 - w)
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
