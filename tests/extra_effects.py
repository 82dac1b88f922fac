"""toonserve's catalogue with one effect more, declared here and nowhere else.

The tests serve it and find the new effect routed, validated, listed and documented like the others.
"""

from __future__ import annotations

import time

from pydantic import Field

from core.art import SketchParams
from core.catalogue import Catalogue, Context, Effect, Params, Preset
from core.effects import CATALOGUE as TOONSERVE
from core.effects import STYLE_FIELD, AnimeStyle, anime_at_output
from core.photo import Picture
from core.stages import ANIME_STAGE, FILTER_STAGE


class SketchedAnimeParams(Params):
    style: AnimeStyle = STYLE_FIELD
    sigma_s: float = Field(30.0, ge=1.0, le=200.0, description="the sketch's smoothing extent in pixels")


async def render_sketched_anime(ctx: Context[SketchedAnimeParams]) -> Picture:
    """The photo in anime, then drawn in pencil: two stages, one after the other."""
    styled = await anime_at_output(ctx, ctx.params.style, "full", "anime")
    start = time.perf_counter()
    (sketch,) = await ctx.stages.filters(styled, [("pencil_sketch", SketchParams(sigma_s=ctx.params.sigma_s))])
    ctx.timings.add("pencil_sketch", start)
    return Picture(sketch, ctx.photo.alpha)


SKETCHED_ANIME = Effect(
    "sketched_anime",
    "A pencil sketch of the photo in anime",
    SketchedAnimeParams,
    (ANIME_STAGE, FILTER_STAGE),
    render_sketched_anime,
    presets=(Preset("soft", "wide smoothing", {"sigma_s": 90.0}),),
)

CATALOGUE = TOONSERVE.extended(SKETCHED_ANIME)
FILTERS = Catalogue(effect for effect in TOONSERVE if not effect.model_stages())
"""The filters alone: an app with no model replicas, quick to start beside another."""
