"""AnimeGANv2 inference over mixed batches: grouped by style and bucketed shape, padded, cropped back."""

from __future__ import annotations

import math

import numpy as np
import torch

from core.device import Placement
from core.errors import InvalidImage
from core.model_bank import BankRunner, ModelBank
from core.settings import Settings
from models.animegan import ANIME_WEIGHTS, AnimeGenerator

BUCKET = 32
"""Working sizes round up to multiples of this, so photos of similar aspect share a batch."""
MAX_WORKING_SIDE = 2048

AnimeItem = tuple[np.ndarray, str]
"""(RGB uint8 HWC at the working size, style name)."""
GroupKey = tuple[str, tuple[int, int]]


def bucket_shape(height: int, width: int) -> tuple[int, int]:
    return max(BUCKET, math.ceil(height / BUCKET) * BUCKET), max(BUCKET, math.ceil(width / BUCKET) * BUCKET)


def pad_to(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Mirror-pads bottom and right; 'symmetric' works even where the pad exceeds the image."""
    height, width = image.shape[:2]
    return np.pad(image, ((0, shape[0] - height), (0, shape[1] - width), (0, 0)), mode="symmetric")


class AnimeStylizer(BankRunner[AnimeGenerator, AnimeItem, GroupKey]):
    """One generator per style, all loaded at construction; `run` gives (styled image, batch size) per item."""

    def __init__(self, settings: Settings, styles: list[str], placement: Placement) -> None:
        super().__init__(ModelBank.load(settings, ANIME_WEIGHTS, styles, lambda _: AnimeGenerator(), placement, dynamic=True))

    def warm_up(self) -> None:
        # Height and width differ from each other and from every channel count: torch.compile gives
        # dimensions of equal size one symbol, and a square warm-up compiled a graph that the first
        # 512x384 photo then had to recompile (33 s).
        self.run([(np.zeros((3 * BUCKET, 5 * BUCKET, 3), np.uint8), style) for style in self.bank.loaded])

    def _key(self, item: AnimeItem) -> GroupKey:
        image, style = item
        self.bank.get(style)
        if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3):
            raise InvalidImage("anime input must be RGB uint8 HWC")
        if min(image.shape[:2]) < 1 or max(image.shape[:2]) > MAX_WORKING_SIDE:
            raise InvalidImage(f"anime input {image.shape[1]}x{image.shape[0]} is outside 1..{MAX_WORKING_SIDE} px")
        return style, bucket_shape(*image.shape[:2])

    def _forward(self, key: GroupKey, items: list[AnimeItem]) -> list[np.ndarray]:
        style, shape = key
        placement = self.bank.placement
        batch = torch.from_numpy(np.stack([pad_to(image, shape) for image, _ in items])).to(torch.device(placement.device))
        # NHWC uint8 permuted to NCHW is already channels_last in memory: no copy.
        with placement.inference():
            out = self.bank.forward(style)(batch.permute(0, 3, 1, 2).float() / 127.5 - 1.0)
            out = ((out.float().clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
        styled = out.permute(0, 2, 3, 1).cpu().numpy()
        return [np.ascontiguousarray(s[: image.shape[0], : image.shape[1]]) for s, (image, _) in zip(styled, items, strict=True)]
