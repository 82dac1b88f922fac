"""The toonserve application graph: wiring only. `serve run serve_app:app` or `serve run serve_config.yaml`.

HTTP -> Ingress (its Compositor decodes, composes, encodes) -> the stages the catalogue's effects use
(AnimeGAN, ArtFilters, Matting)
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from ray.serve import Application, Deployment

from core.catalogue import DEFAULT_CATALOGUE, load_catalogue
from core.settings import Settings
from core.stages import ModelStage, Stage
from deployments.filters import ArtFilters
from deployments.ingress import Ingress
from deployments.model import model_deployment


class AppArgs(BaseModel):
    settings: Settings = Field(default_factory=Settings)
    catalogue: str = Field(DEFAULT_CATALOGUE, description="the effect catalogue to serve, as module:attribute")
    options: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Deployment name -> .options() overrides, for tests and experiments; "
        "per-environment numbers belong in the Serve config YAML.",
    )


def build_app(args: AppArgs) -> Application:
    catalogue = load_catalogue(args.catalogue)

    def configured(deployment: Deployment) -> Deployment:
        return deployment.options(**args.options.get(deployment.name, {}))

    def stage(stage: Stage) -> Application:
        if isinstance(stage, ModelStage):
            return configured(model_deployment(stage)).bind(args.settings, stage.name)
        return configured(ArtFilters).bind()

    stages = {s.name: stage(s) for s in catalogue.stages}
    return configured(Ingress).bind(args.settings, catalogue, stages)


app = build_app(AppArgs())
