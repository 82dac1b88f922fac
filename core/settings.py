"""Every environment variable toonserve reads, in one place: TOONSERVE_<FIELD>, each with its default.

docs/configuration.md is written from these fields (`make docs`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.tiles import MAX_WORKING_SIDE, OVERLAP
from models.weights import WeightsLocations

Precision = Literal["auto", "fp32", "bf16"]
ENV_PREFIX = "TOONSERVE_"


def env_name(field: str) -> str:
    """The environment variable a setting is read from."""
    return f"{ENV_PREFIX}{field.upper()}"


class Settings(BaseSettings):
    """Read from the environment when built without arguments; a malformed value stops start-up, naming the field."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_ignore_empty=True, frozen=True)

    weights_dir: Path | None = Field(
        None, description="your weights under their official file names, used as given (your own trained ones too)"
    )
    cache_dir: Path = Field(Path.home() / ".cache" / "toonserve" / "weights", description="verified downloads")
    download_weights: bool = Field(True, description="replicas download missing weights at start")
    random_weights: bool = Field(
        False, description="seeded random weights, for load tests where none can be had; never the default"
    )
    max_bytes: int = Field(20 * 1024 * 1024, gt=0, description="the largest request body, in bytes")
    max_pixels: int = Field(40_000_000, gt=0, description="the largest photo, in pixels, checked before it is decoded")
    stage_timeout_s: float = Field(60.0, gt=0, description="how long a request may take before it is answered 504")
    precision: Precision = Field(
        "auto",
        description="`auto`: bf16 autocast where the CPU has AVX512-BF16 or the GPU supports it, else fp32; `fp32`; `bf16`",
    )
    compile_models: bool = Field(
        False,
        description="`torch.compile` the models at replica start, a compile of minutes on a laptop, cached on disk "
        "for later starts; faster or slower forwards by model and CPU: measure first (docs/performance.md, levers)",
    )
    require_api_key: bool = Field(
        False,
        description="every /v1 request needs a key (`Authorization: Bearer <key>`); without a valid one, 401. "
        "Off locally, on in the cluster configs; with no keys configured every /v1 request is refused",
    )
    api_keys: str | None = Field(
        None, description="stored keys, comma-separated `name:sha256hex` entries (`toonserve keys new NAME` prints one)"
    )
    api_keys_file: Path | None = Field(None, description="a file of stored keys, one `name:sha256hex` a line; read at start")
    rate_limit_per_minute: int = Field(
        120, gt=0, description="requests a key may make a minute, per ingress replica; past it, 429 with Retry-After"
    )
    cors_origins: list[str] = Field(
        [],
        description='origins whose pages may call the API from a browser, as JSON (`["https://app.example"]`); none by default',
    )
    tile_side: int = Field(
        MAX_WORKING_SIDE,
        ge=2 * OVERLAP,
        le=MAX_WORKING_SIDE,
        description="a model's working image longer than this runs in overlapping tiles of about this side, blended "
        "without seams, to bound one forward pass's memory where it is short, for about twice the time "
        "(docs/performance.md); by default nothing tiles",
    )

    @property
    def weights_locations(self) -> WeightsLocations:
        return WeightsLocations(self.weights_dir, self.cache_dir, self.download_weights)
