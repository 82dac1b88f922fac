"""Every environment variable toonserve reads, in one place, each with its default."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ValidationError

Precision = Literal["auto", "fp32", "bf16"]

ENV_PREFIX = "TOONSERVE_"
WEIGHTS_INSTALL_HINT = "make weights (or put the official files in $TOONSERVE_WEIGHTS_DIR)"


class Settings(BaseModel, frozen=True):
    weights_dir: Path | None = None
    """Files under their official names, used as given (a user's own weights go here too)."""
    cache_dir: Path = Path.home() / ".cache" / "toonserve" / "weights"
    download_weights: bool = True
    random_weights: bool = False
    """Seeded random weights for load tests where none can be had. Never the default."""
    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
    stage_timeout_s: float = 60.0
    precision: Precision = "auto"
    """auto: bf16 autocast where the CPU has AVX512-BF16 or the GPU supports it, else fp32."""
    compile_models: bool = False
    """torch.compile the models at start (inductor). On 2 cores: about 40 s to compile AnimeGAN and
    130 s for both U²-Nets, then forwards 8-18% faster; the compiled code is cached on disk for the
    next start."""
    anime_side: int = 512
    """The long side AnimeGAN works at; its output is resized to the requested size."""

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values = {
            name: env[ENV_PREFIX + name.upper()]
            for name in cls.model_fields
            if ENV_PREFIX + name.upper() in env and env[ENV_PREFIX + name.upper()] != ""
        }
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            problems = "; ".join(
                f"{ENV_PREFIX}{str(e['loc'][0]).upper()}={values.get(str(e['loc'][0]))!r}: {e['msg']}" for e in error.errors()
            )
            raise ValueError(f"malformed environment: {problems}") from None
