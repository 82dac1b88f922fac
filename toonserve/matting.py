"""U²-Net inference over batches of 320x320 inputs, grouped by model, prepared as the official test script does."""

from __future__ import annotations

import logging
from collections import defaultdict

import numpy as np
import torch

from models.u2net import ARCHITECTURES, U2NET_INPUT, U2NET_WEIGHTS, U2Net
from models.weights import LoadedModel, load_weights, random_weights
from toonserve.device import Placement
from toonserve.errors import InvalidImage, InvalidParameter, ToonError, WeightsMissing
from toonserve.models import ModelState, weights_locations
from toonserve.settings import Settings

logger = logging.getLogger(__name__)


class Matter:
    """Holds the requested U²-Net models, loaded at construction; returns float32 HW mattes in [0, 1]."""

    def __init__(self, settings: Settings, model_names: list[str], placement: Placement) -> None:
        self.placement = placement
        self.device = torch.device(placement.device)
        self.nets: dict[str, LoadedModel[U2Net]] = {}
        self.missing: dict[str, str] = {}
        locations = weights_locations(settings)
        mean = torch.tensor(U2NET_INPUT.mean or (0.0, 0.0, 0.0)).view(1, 3, 1, 1)
        std = torch.tensor(U2NET_INPUT.std or (1.0, 1.0, 1.0)).view(1, 3, 1, 1)
        self.mean, self.std = mean.to(self.device), std.to(self.device)
        for seed, name in enumerate(model_names):
            entry = U2NET_WEIGHTS.get(name)
            net = ARCHITECTURES[entry.architecture]()
            try:
                loaded = random_weights(net, seed) if settings.random_weights else load_weights(net, entry, locations)
            except WeightsMissing as error:
                logger.warning("matting model %s unavailable: %s", name, error)
                self.missing[name] = error.message
                continue
            loaded.module.to(self.device)
            self.nets[name] = loaded

    @property
    def side(self) -> int:
        return U2NET_INPUT.size

    def warm_up(self) -> None:
        for name in self.nets:
            self.run([(np.zeros((self.side, self.side, 3), np.uint8), name)])

    def states(self) -> list[ModelState]:
        states = [
            ModelState(name, True, m.source.origin, m.source.verified, m.source.detail, self.placement.note)
            for name, m in self.nets.items()
        ]
        return states + [ModelState(name, False, None, False, why, self.placement.note) for name, why in self.missing.items()]

    def check(self, image: object, model: str) -> None:
        if model not in U2NET_WEIGHTS:
            raise InvalidParameter(f"unknown matting model {model!r}; known: {', '.join(U2NET_WEIGHTS.names())}")
        if model not in self.nets:
            raise WeightsMissing(self.missing.get(model, f"matting model {model!r} is not loaded on this replica"))
        expected = (self.side, self.side, 3)
        if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.shape == expected):
            raise InvalidImage(f"matting input must be RGB uint8 {self.side}x{self.side}")

    def run(self, items: list[tuple[np.ndarray, str]]) -> list[tuple[np.ndarray, int] | ToonError]:
        """(matte, batch size) per item, in order; a bad item or a failed group fails alone."""
        results: list[tuple[np.ndarray, int] | ToonError] = [ToonError("not processed")] * len(items)
        groups: dict[str, list[int]] = defaultdict(list)
        for index, (image, model) in enumerate(items):
            try:
                self.check(image, model)
            except ToonError as error:
                results[index] = error
                continue
            groups[model].append(index)
        for model, indices in groups.items():
            try:
                mattes = self._forward(model, np.stack([items[i][0] for i in indices]))
            except RuntimeError as error:
                logger.exception("matting forward failed for a group of %d", len(indices))
                for i in indices:
                    results[i] = ToonError(f"matting inference failed: {error}")
                continue
            for i, matte in zip(indices, mattes, strict=True):
                results[i] = (matte, len(indices))
        return results

    def _forward(self, model: str, images: np.ndarray) -> np.ndarray:
        batch = torch.from_numpy(images).to(self.device).permute(0, 3, 1, 2).float()
        # Official test script: each image divided by its own maximum, then ImageNet mean/std.
        peak = batch.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1.0)
        with torch.inference_mode():
            prediction = self.nets[model].module((batch / peak - self.mean) / self.std)[:, 0]
            low = prediction.amin(dim=(1, 2), keepdim=True)
            high = prediction.amax(dim=(1, 2), keepdim=True)
            normalised = (prediction - low) / (high - low).clamp_min(1e-8)
        return normalised.float().cpu().numpy()
