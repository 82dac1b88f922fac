"""The toonserve application graph: wiring only. `serve run serve_app:app` or `serve run serve_config.yaml`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from ray.serve import Application, Deployment

from core.settings import Settings
from deployments.anime import AnimeGAN
from deployments.filters import ArtFilters
from deployments.ingress import Ingress
from deployments.matting import Matting
from deployments.preprocessor import Preprocessor


class AppArgs(BaseModel):
    settings: Settings = Field(default_factory=Settings.from_env)
    options: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Deployment name -> .options() overrides, for tests and experiments; "
        "per-environment numbers belong in the Serve config YAML.",
    )


def build_app(args: AppArgs) -> Application:
    settings = args.settings

    def configured(deployment: Deployment) -> Deployment:
        return deployment.options(**args.options.get(deployment.name, {}))

    return configured(Ingress).bind(
        settings,
        configured(Preprocessor).bind(settings),
        configured(AnimeGAN).bind(settings),
        configured(ArtFilters).bind(settings),
        configured(Matting).bind(settings),
    )


app = build_app(AppArgs())
