"""U²-Net inference over batches of 320x320 inputs, grouped by model, prepared as the official test script does."""

from __future__ import annotations

import numpy as np
import torch

from core.device import Placement
from core.errors import InvalidImage
from core.model_bank import BankRunner, ModelBank
from core.settings import Settings
from models.u2net import ARCHITECTURES, U2NET_INPUT, U2NET_WEIGHTS, U2Net

MatteItem = tuple[np.ndarray, str]
"""(RGB uint8 320x320x3, model name)."""


class Matter(BankRunner[U2Net, MatteItem, str]):
    """The requested U²-Net models, loaded at construction; `run` gives (float32 HW matte in [0, 1], batch size)."""

    side = U2NET_INPUT.size

    def __init__(self, settings: Settings, model_names: list[str], placement: Placement) -> None:
        bank: ModelBank[U2Net] = ModelBank.load(
            settings, U2NET_WEIGHTS, model_names, lambda entry: ARCHITECTURES[entry.architecture](), placement
        )
        super().__init__(bank)
        device = torch.device(placement.device)
        self.mean = torch.tensor(U2NET_INPUT.mean or (0.0, 0.0, 0.0)).view(1, 3, 1, 1).to(device)
        self.std = torch.tensor(U2NET_INPUT.std or (1.0, 1.0, 1.0)).view(1, 3, 1, 1).to(device)

    def warm_up(self) -> None:
        self.run([(np.zeros((self.side, self.side, 3), np.uint8), name) for name in self.bank.loaded])

    def _key(self, item: MatteItem) -> str:
        image, model = item
        self.bank.get(model)
        if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.shape == (self.side, self.side, 3)):
            raise InvalidImage(f"matting input must be RGB uint8 {self.side}x{self.side}")
        return model

    def _forward(self, model: str, items: list[MatteItem]) -> list[np.ndarray]:
        batch = torch.from_numpy(np.stack([image for image, _ in items])).to(self.mean.device).permute(0, 3, 1, 2).float()
        # Official test script: each image divided by its own maximum, then ImageNet mean/std.
        peak = batch.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1.0)
        with self.bank.placement.inference():
            prediction = self.bank.forward(model)((batch / peak - self.mean) / self.std)[:, 0].float()
            low = prediction.amin(dim=(1, 2), keepdim=True)
            high = prediction.amax(dim=(1, 2), keepdim=True)
            normalised = (prediction - low) / (high - low).clamp_min(1e-8)
        return list(normalised.float().cpu().numpy())
