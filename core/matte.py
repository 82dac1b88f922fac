"""Matte post-processing: the knobs applied to U²-Net's prediction, and the three outputs."""

from __future__ import annotations

import cv2
import numpy as np

from core.messages import MatteOptions


def refine(matte: np.ndarray, options: MatteOptions) -> np.ndarray:
    """float32 HW in [0, 1] -> float32 HW in [0, 1]: threshold, then erode, then feather."""
    refined: np.ndarray = matte.astype(np.float32, copy=True)
    if options.threshold is not None:
        refined = (refined >= options.threshold).astype(np.float32)
    if options.erode > 0:
        size = 2 * options.erode + 1
        refined = cv2.erode(refined, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))
    if options.feather > 0:
        refined = cv2.GaussianBlur(refined, (0, 0), options.feather)
    return np.clip(refined, 0.0, 1.0)


def to_uint8(matte: np.ndarray) -> np.ndarray:
    return np.rint(matte * 255.0).astype(np.uint8)


def composite(image: np.ndarray, matte: np.ndarray, background: tuple[int, int, int]) -> np.ndarray:
    """RGB uint8 HWC over a flat background colour, weighted by a float matte."""
    weight = matte[:, :, None]
    mixed = image.astype(np.float32) * weight + np.asarray(background, np.float32) * (1.0 - weight)
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
