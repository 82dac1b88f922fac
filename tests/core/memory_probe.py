"""`python -m tests.core.memory_probe WEIGHTS_DIR`: the anime runner's USS in MB, as JSON: once loaded,
after a forward at the default output's size, after one just past it, and once its memory's keep
time (shortened to KEEP_S) has passed. Run under core.memory.MODEL_ALLOCATOR, which glibc reads at
start: hence a process of its own."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import psutil

from core.device import choose_device
from core.imaging import DEFAULT_MAX_SIDE
from core.runner import BUCKET, ModelRunner
from core.settings import Settings
from models.animegan import ANIME_WEIGHTS

KEEP_S = 1.0


def main() -> None:
    folder = Path(sys.argv[1])
    settings = Settings(weights_dir=folder, cache_dir=folder / "cache", download_weights=False)
    runner = ModelRunner(settings, ANIME_WEIGHTS, choose_device(gpu_assigned=False), ["paprika"])
    runner.large_memory.after_s = KEEP_S
    process = psutil.Process()
    uss = {"loaded": process.memory_full_info().uss / 2**20}
    height = DEFAULT_MAX_SIDE // 2
    for name, width in (("default", DEFAULT_MAX_SIDE), ("larger", DEFAULT_MAX_SIDE + BUCKET)):
        image = np.random.default_rng(0).integers(0, 256, (height, width, 3), np.uint8)
        (outcome,) = runner.run([(image, "paprika")])
        if not isinstance(outcome, tuple):
            raise SystemExit(f"the forward failed: {outcome}")
        uss[name] = process.memory_full_info().uss / 2**20
    time.sleep(3 * KEEP_S)
    uss["later"] = process.memory_full_info().uss / 2**20
    print(json.dumps(uss))


if __name__ == "__main__":
    main()
