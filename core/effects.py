"""toonserve's effects, each declared once. Routes, /v1/effects, the docs, the deployments and `make weights` derive from here.

A new filter is one entry in core/art.py's FILTERS, a new AnimeGAN style one entry in
models/animegan.py's registry: both appear here by themselves.
"""

from __future__ import annotations

import asyncio
import time
from functools import partial
from typing import Annotated, Any, Literal

import cv2
import numpy as np
from pydantic import AfterValidator, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from core import alpha, imaging
from core.art import FILTERS, ArtFilter, FilterParams, parallel_groups
from core.catalogue import (
    COLOUR_PATTERN,
    MAX_SIDE_LIMIT,
    Catalogue,
    Choice,
    Colour,
    Context,
    Effect,
    Family,
    Params,
    Preset,
    is_colour,
    rgb,
)
from core.photo import Picture
from core.stages import ANIME_STAGE, FILTER_STAGE, MATTING_STAGE
from models.animegan import ANIME_WEIGHTS
from models.names import UnknownName
from models.u2net import U2NET_WEIGHTS

AnimeStyle = Annotated[str, Choice(ANIME_WEIGHTS)]
MattingModel = Annotated[str, Choice(U2NET_WEIGHTS)]
STYLE_FIELD = Field(ANIME_WEIGHTS.default, description="AnimeGANv2 weights; non-commercial licence")
MODEL_FIELD = Field(
    U2NET_WEIGHTS.default, description="U²-Net weights: u2net_human_seg for people, u2net for objects, u2netp light"
)


# anime


ANIME_MAX_SIDE = 2048
"""The longest side anime draws; the effects that draw it make nothing longer, so that none is upscaled."""

Quality = Literal["full", "fast"]
QUALITY_FIELD: Any = Field(
    "full",
    description="full: drawn at the output's size (past the tile side, in tiles); fast: drawn at long side 512 "
    "and resized to the output, softer and quicker",
)


class AnimeParams(Params):
    style: AnimeStyle = STYLE_FIELD
    quality: Quality = QUALITY_FIELD


ANIME_PRESETS = (
    Preset("fast", "drawn at long side 512 and resized to the output: softer, several times quicker", {"quality": "fast"}),
    Preset("poster", "long side 2048, drawn at that size in tiles, as JPEG", {"max_side": ANIME_MAX_SIDE, "format": "jpeg"}),
)


async def anime_at_output(ctx: Context[Any], style: str, quality: Quality, stage_name: str) -> np.ndarray:
    """The photo in `style`, at the output size; Server-Timing names it `stage_name`."""
    transforms = ANIME_WEIGHTS.get(style).transforms
    if quality == "fast" and max(ctx.photo.size) > transforms.side:
        working = await ctx.cpu(ctx.photo.at, transforms.working_size(ctx.photo.source_size))
    else:
        working = await ctx.cpu(lambda: ctx.photo.image)
    start = time.perf_counter()
    styled = await ctx.stages.model(ANIME_STAGE.name, working, style)
    ctx.timings.add(stage_name, start, f"batch={styled.batch}")
    if (working.shape[1], working.shape[0]) == ctx.photo.size:
        return styled.output
    return await ctx.cpu(imaging.resize, styled.output, ctx.photo.size)


async def render_anime(ctx: Context[AnimeParams]) -> Picture:
    return Picture(await anime_at_output(ctx, ctx.params.style, ctx.params.quality, "anime"), ctx.photo.alpha)


# filters

QUALITY_TIERS = {
    "high": ("the photo's own size (up to the limit), full strength", MAX_SIDE_LIMIT),
    "balanced": ("long side 1200, lighter settings", 1200),
    "fast": ("long side 800, the cheapest settings", 800),
}
"""The quality tiers of the OpenCV art studio toonserve replaces: (summary, max_side); each filter
sets its own parameters per tier (core/art.py). Costs: docs/api.md."""


def quality_presets(art_filter: ArtFilter) -> tuple[Preset, ...]:
    return tuple(
        Preset(tier, summary, {"max_side": side, **art_filter.tiers.get(tier, {})})
        for tier, (summary, side) in QUALITY_TIERS.items()
    )


async def filtered(ctx: Context[Any], wanted: list[tuple[str, FilterParams]]) -> list[np.ndarray]:
    """The filters on the photo at the output size; Server-Timing names each filter."""
    start = time.perf_counter()
    images = await ctx.stages.filters(ctx.photo.image, wanted)
    for name, _ in wanted:
        ctx.timings.add(name, start)
    return images


async def render_filter(name: str, ctx: Context[FilterParams]) -> Picture:
    (image,) = await filtered(ctx, [(name, ctx.params)])
    return Picture(image, ctx.photo.alpha)


async def render_art(ctx: Context[Params]) -> dict[str, Picture]:
    groups = parallel_groups(FILTERS.names())
    found = await asyncio.gather(*(filtered(ctx, [(name, FILTERS.get(name).params()) for name in group]) for group in groups))
    images = {
        name: image for group, outputs in zip(groups, found, strict=True) for name, image in zip(group, outputs, strict=True)
    }
    return {name: Picture(images[name], ctx.photo.alpha) for name in FILTERS.names()}


# matte


class MatteParams(Params):
    output: Literal["cutout", "mask", "composite"] = Field(
        "cutout", description="RGBA cutout, the alpha mask, or over `background`"
    )
    background: Colour = Field("ffffff", description="RRGGBB, for output=composite")
    threshold: float | None = Field(None, ge=0.0, le=1.0, description="binarise the matte at this alpha")
    feather: float = Field(0.0, ge=0.0, le=50.0, description="edge softening, Gaussian sigma in pixels")
    erode: int = Field(0, ge=0, le=50, description="pixels shaved off the edge")
    model: MattingModel = MODEL_FIELD


async def matte_weight(
    ctx: Context[Any], model: str, *, threshold: float | None = None, erode: int = 0, feather: float = 0.0
) -> np.ndarray:
    """The matte as float32 HW in [0, 1] at the output size, the photo's own transparency multiplied in."""
    transforms = U2NET_WEIGHTS.get(model).transforms
    working = await ctx.cpu(ctx.photo.at, transforms.working_size(ctx.photo.source_size))
    start = time.perf_counter()
    matte = await ctx.stages.model(MATTING_STAGE.name, working, model)
    refine = partial(alpha.refine, threshold=threshold, erode=erode, feather=feather, alpha=ctx.photo.alpha)
    weight = await ctx.cpu(refine, matte.output, ctx.photo.size)
    ctx.timings.add("matte", start, f"batch={matte.batch}")
    return weight


async def render_matte(ctx: Context[MatteParams]) -> Picture:
    p = ctx.params
    weight = await matte_weight(ctx, p.model, threshold=p.threshold, erode=p.erode, feather=p.feather)
    if p.output == "mask":
        return Picture(alpha.to_uint8(weight))
    if p.output == "composite":
        return Picture(await ctx.cpu(alpha.composite, ctx.photo.image, weight, rgb(p.background)))
    return Picture(ctx.photo.image, alpha.to_uint8(weight))


def cutout(params: MatteParams) -> bool:
    return params.output == "cutout"


MATTE_PRESETS = (
    Preset("preview", "a quick look: the light model, long side 512", {"model": "u2netp", "max_side": 512}),
    Preset(
        "product",
        "clean product shots: the general-object model over white, a pixel shaved off the edge, as JPEG",
        {"model": "u2net", "output": "composite", "background": "ffffff", "erode": 1, "feather": 1.0, "format": "jpeg"},
    ),
    Preset(
        "avatar",
        "soft-edged avatars: the people model, a feathered cutout, long side 512, as WebP",
        {"model": "u2net_human_seg", "output": "cutout", "feather": 4.0, "max_side": 512, "format": "webp"},
    ),
    Preset(
        "bulk",
        "bulk export: the light model, a hard edge at alpha 0.5, PNG cutouts",
        {"model": "u2netp", "output": "cutout", "threshold": 0.5},
    ),
)


# portrait

BACKDROPS = ("original", "blur", *FILTERS.names(), *ANIME_WEIGHTS.names())
"""What portrait can put behind the person, besides a colour: the photo, blurred, a filter, or anime in a style."""
BLUR_FRACTION = 0.01
"""The backdrop blur's sigma, as a fraction of the output's long side: the same look at every size."""


def _backdrop(value: str) -> str:
    if value in BACKDROPS or is_colour(value):
        return value
    raise PydanticCustomError("unknown_name", str(UnknownName("background", value, [*BACKDROPS, "or a colour RRGGBB"])))


Backdrop = Annotated[
    str,
    AfterValidator(_backdrop),
    WithJsonSchema({"anyOf": [{"type": "string", "enum": list(BACKDROPS)}, {"type": "string", "pattern": COLOUR_PATTERN}]}),
]


class PortraitParams(Params):
    style: AnimeStyle = STYLE_FIELD
    quality: Quality = QUALITY_FIELD
    background: Backdrop = Field(
        "paprika", description="behind the person: original, blur, a filter, an anime style, or a colour RRGGBB"
    )
    feather: float = Field(0.0, ge=0.0, le=50.0, description="softening of the matte's edge, Gaussian sigma in pixels")
    model: MattingModel = MODEL_FIELD


def blurred(image: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), max(1.0, BLUR_FRACTION * max(image.shape[:2])))


def as_rgb(image: np.ndarray) -> np.ndarray:
    return np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else image


async def backdrop(ctx: Context[Any], choice: str, quality: Quality) -> np.ndarray:
    """RGB uint8 HWC at the output size: what that choice's own endpoint returns, or the photo, blurred or a colour."""
    if choice == "original":
        return ctx.photo.image
    if choice == "blur":
        start = time.perf_counter()
        image = await ctx.cpu(blurred, ctx.photo.image)
        ctx.timings.add("background", start, "blur")
        return image
    if choice in FILTERS:
        start = time.perf_counter()
        (image,) = await ctx.stages.filters(ctx.photo.image, [(choice, FILTERS.get(choice).params())])
        ctx.timings.add("background", start, choice)
        return as_rgb(image)
    if choice in ANIME_WEIGHTS:
        return await anime_at_output(ctx, choice, quality, "background")
    width, height = ctx.photo.size
    return np.broadcast_to(np.asarray(rgb(choice), np.uint8), (height, width, 3))


async def render_portrait(ctx: Context[PortraitParams]) -> Picture:
    """The person in anime over the chosen background, composed over the matte: three branches side by side."""
    p = ctx.params
    weight, person, background = await asyncio.gather(
        matte_weight(ctx, p.model, feather=p.feather),
        anime_at_output(ctx, p.style, p.quality, "person"),
        backdrop(ctx, p.background, p.quality),
    )
    start = time.perf_counter()
    # The mask as /v1/matte?output=mask returns it, so that the blend can be checked against the single effects.
    mask = alpha.to_uint8(weight).astype(np.float32) / 255.0
    composed = await ctx.cpu(alpha.composite, person, mask, background)
    ctx.timings.add("compose", start)
    return Picture(composed)


FILTER_FAMILY = Family("filters", "filter")

CATALOGUE = Catalogue(
    [
        Effect(
            "anime",
            "Photo to anime (AnimeGANv2)",
            AnimeParams,
            (ANIME_STAGE,),
            render_anime,
            presets=ANIME_PRESETS,
            max_side=ANIME_MAX_SIDE,
        ),
        *(
            Effect(
                f.name,
                f.summary,
                f.params,
                (FILTER_STAGE,),
                partial(render_filter, f.name),
                presets=quality_presets(f),
                family=FILTER_FAMILY,
            )
            for f in FILTERS
        ),
        Effect(
            "art", "Every art filter of one photo, computed in parallel", Params, (FILTER_STAGE,), render_art, returns="images"
        ),
        Effect(
            "matte",
            "Portrait matting (U²-Net): cutout, mask or composite",
            MatteParams,
            (MATTING_STAGE,),
            render_matte,
            presets=MATTE_PRESETS,
            transparent=cutout,
        ),
        Effect(
            "portrait",
            "The person in anime over a background of your choice, composed over the matte",
            PortraitParams,
            (MATTING_STAGE, ANIME_STAGE, FILTER_STAGE),
            render_portrait,
            max_side=ANIME_MAX_SIDE,
        ),
    ]
)
