"""AnimeGAN run in the test process, as a model replica runs it: what served and tiled anime are held to."""

from __future__ import annotations

import numpy as np

from core.device import choose_device
from core.runner import ModelRunner
from core.settings import Settings
from models.animegan import ANIME_WEIGHTS

STYLE = "paprika"


def anime_runner(settings: Settings) -> ModelRunner:
    """The STYLE weights that `settings` finds, on the CPU."""
    return ModelRunner(settings, ANIME_WEIGHTS, choose_device(gpu_assigned=False), [STYLE])


def styled(runner: ModelRunner, image: np.ndarray) -> np.ndarray:
    """`image` (RGB uint8 HWC at the working size) in the STYLE."""
    (outcome,) = runner.run([(image, STYLE)])
    assert isinstance(outcome, tuple)
    return outcome[0]
