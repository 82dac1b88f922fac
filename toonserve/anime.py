"""AnimeGANv2 inference over mixed batches: grouped by style and bucketed shape, padded, cropped back."""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import torch

from models.animegan import ANIME_WEIGHTS, AnimeGenerator
from models.weights import LoadedModel, load_weights, random_weights
from toonserve.device import Placement
from toonserve.errors import InvalidImage, InvalidParameter, ToonError, WeightsMissing
from toonserve.models import ModelState, weights_locations
from toonserve.settings import Settings

logger = logging.getLogger(__name__)

BUCKET = 32
"""Working sizes round up to multiples of this, so photos of similar aspect share a batch."""
MAX_WORKING_SIDE = 2048


@dataclass(frozen=True)
class AnimeResult:
    image: np.ndarray  # RGB uint8 HWC, the input's size
    batch: int


def bucket_shape(height: int, width: int) -> tuple[int, int]:
    return max(BUCKET, math.ceil(height / BUCKET) * BUCKET), max(BUCKET, math.ceil(width / BUCKET) * BUCKET)


def pad_to(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Mirror-pads bottom and right; 'symmetric' works even where the pad exceeds the image."""
    height, width = image.shape[:2]
    return np.pad(image, ((0, shape[0] - height), (0, shape[1] - width), (0, 0)), mode="symmetric")


class AnimeStylizer:
    """Holds one generator per style, all loaded at construction; runs batches of (image, style)."""

    def __init__(self, settings: Settings, styles: list[str], placement: Placement) -> None:
        self.placement = placement
        self.device = torch.device(placement.device)
        self.generators: dict[str, LoadedModel[AnimeGenerator]] = {}
        self.missing: dict[str, str] = {}
        locations = weights_locations(settings)
        for seed, style in enumerate(styles):
            entry = ANIME_WEIGHTS.get(style)
            try:
                loaded = (
                    random_weights(AnimeGenerator(), seed)
                    if settings.random_weights
                    else load_weights(AnimeGenerator(), entry, locations)
                )
            except WeightsMissing as error:
                logger.warning("anime style %s unavailable: %s", style, error)
                self.missing[style] = error.message
                continue
            loaded.module.to(self.device)
            self.generators[style] = loaded

    def warm_up(self) -> None:
        for style in self.generators:
            self.run([(np.zeros((BUCKET, BUCKET, 3), np.uint8), style)])

    def states(self) -> list[ModelState]:
        states = [
            ModelState(name, True, m.source.origin, m.source.verified, m.source.detail, self.placement.note)
            for name, m in self.generators.items()
        ]
        return states + [ModelState(name, False, None, False, why, self.placement.note) for name, why in self.missing.items()]

    def check(self, image: object, style: str) -> None:
        if style not in ANIME_WEIGHTS:
            raise InvalidParameter(f"unknown style {style!r}; known: {', '.join(ANIME_WEIGHTS.names())}")
        if style not in self.generators:
            raise WeightsMissing(self.missing.get(style, f"style {style!r} is not loaded on this replica"))
        if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3):
            raise InvalidImage("anime input must be RGB uint8 HWC")
        if min(image.shape[:2]) < 1 or max(image.shape[:2]) > MAX_WORKING_SIDE:
            raise InvalidImage(f"anime input {image.shape[1]}x{image.shape[0]} is outside 1..{MAX_WORKING_SIDE} px")

    def run(self, items: list[tuple[np.ndarray, str]]) -> list[AnimeResult | ToonError]:
        """One result per item, in order; a bad item or a failed group fails alone."""
        results: list[AnimeResult | ToonError] = [ToonError("not processed")] * len(items)
        groups: dict[tuple[str, tuple[int, int]], list[int]] = defaultdict(list)
        for index, (image, style) in enumerate(items):
            try:
                self.check(image, style)
            except ToonError as error:
                results[index] = error
                continue
            groups[(style, bucket_shape(*image.shape[:2]))].append(index)
        for (style, shape), indices in groups.items():
            try:
                images = self._forward(style, [pad_to(items[i][0], shape) for i in indices])
            except RuntimeError as error:
                logger.exception("anime forward failed for a group of %d", len(indices))
                for i in indices:
                    results[i] = ToonError(f"anime inference failed: {error}")
                continue
            for i, styled in zip(indices, images, strict=True):
                height, width = items[i][0].shape[:2]
                results[i] = AnimeResult(np.ascontiguousarray(styled[:height, :width]), len(indices))
        return results

    def _forward(self, style: str, images: list[np.ndarray]) -> np.ndarray:
        batch = torch.from_numpy(np.stack(images)).to(self.device).permute(0, 3, 1, 2).float()
        with torch.inference_mode():
            out = self.generators[style].module(batch / 127.5 - 1.0)
            out = ((out.clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
        return out.permute(0, 2, 3, 1).cpu().numpy()
