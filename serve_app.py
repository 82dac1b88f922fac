"""The toonserve application graph: wiring only. `serve run serve_app:app` or `serve run serve_config.yaml`."""

from __future__ import annotations

from pydantic import BaseModel, Field
from ray.serve import Application

from deployments.anime import AnimeGAN
from deployments.filters import ArtFilters
from deployments.ingress import Ingress
from deployments.matting import Matting
from deployments.preprocessor import Preprocessor
from toonserve.settings import Settings


class AppArgs(BaseModel):
    settings: Settings = Field(default_factory=Settings.from_env)


def build_app(args: AppArgs) -> Application:
    settings = args.settings
    # mypy ignores what a class decorator returns: these classes are Serve Deployments, with .bind().
    return Ingress.bind(settings, Preprocessor.bind(settings), AnimeGAN.bind(settings), ArtFilters.bind(), Matting.bind(settings))  # type: ignore[attr-defined]


app = build_app(AppArgs())
