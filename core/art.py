"""The OpenCV art filters: deterministic functions of an RGB uint8 HWC image and typed parameters."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from models.registry import Registry


class FilterParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SketchParams(FilterParams):
    sigma_s: float = Field(60.0, ge=1.0, le=200.0, description="smoothing extent in pixels")
    sigma_r: float = Field(0.07, gt=0.0, le=1.0, description="edge sensitivity")
    shade: float = Field(0.05, ge=0.0, le=0.1, description="paper shading")


class OilParams(FilterParams):
    size: int = Field(7, ge=1, le=15, description="brush neighbourhood in pixels")
    dyn_ratio: int = Field(1, ge=1, le=32, description="colour quantisation divisor")


class WatercolorParams(FilterParams):
    sigma_s: float = Field(60.0, ge=1.0, le=200.0, description="smoothing extent in pixels")
    sigma_r: float = Field(0.45, gt=0.0, le=1.0, description="colour range kept distinct")


def _bgr(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2BGR)


def _rgb(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def sketches(image: np.ndarray, params: SketchParams) -> tuple[np.ndarray, np.ndarray]:
    """(pencil sketch, colour pencil): one cv2.pencilSketch call yields both. The pencil sketch
    stays gray (HW), which a PNG stores in a third of the bytes and time."""
    gray, color = cv2.pencilSketch(_bgr(image), sigma_s=params.sigma_s, sigma_r=params.sigma_r, shade_factor=params.shade)
    return gray, _rgb(color)


def pencil_sketch(image: np.ndarray, params: SketchParams) -> np.ndarray:
    return sketches(image, params)[0]


def color_pencil(image: np.ndarray, params: SketchParams) -> np.ndarray:
    return sketches(image, params)[1]


def oil_painting(image: np.ndarray, params: OilParams) -> np.ndarray:
    return _rgb(cv2.xphoto.oilPainting(_bgr(image), params.size, params.dyn_ratio))


def watercolor(image: np.ndarray, params: WatercolorParams) -> np.ndarray:
    return _rgb(cv2.stylization(_bgr(image), sigma_s=params.sigma_s, sigma_r=params.sigma_r))


@dataclass(frozen=True)
class ArtFilter:
    name: str
    summary: str
    params: type[FilterParams]
    apply: Callable[[np.ndarray, FilterParams], np.ndarray]
    context_rows: Callable[[FilterParams], int] | None = None
    """Rows of context above and below that a horizontal strip needs for the filter to give, up to
    rounding, the whole image's result; None where strips are not worth it."""
    tiers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """The parameters of each quality tier (see core/effects.py) that differ from the defaults."""


def _filter(
    name: str,
    summary: str,
    params: type[FilterParams],
    apply: Callable[..., np.ndarray],
    context_rows: Callable[..., int] | None = None,
    tiers: Mapping[str, Mapping[str, Any]] | None = None,
) -> ArtFilter:
    return ArtFilter(name, summary, params, apply, context_rows, tiers or {})


def _stylization_context(params: WatercolorParams) -> int:
    # The domain-transform filter's support is a few sigma_s at most (docs/performance.md, strips).
    return math.ceil(2 * params.sigma_s)


# Smoothing is measured in pixels: smaller tiers smooth less, so that each tier looks alike.
_SMOOTHING_TIERS = {"balanced": {"sigma_s": 40.0}, "fast": {"sigma_s": 25.0}}

FILTERS: Registry[ArtFilter] = Registry(
    "filter",
    (
        _filter("pencil_sketch", "Graphite pencil sketch, in gray", SketchParams, pencil_sketch, tiers=_SMOOTHING_TIERS),
        _filter("color_pencil", "Coloured pencil sketch", SketchParams, color_pencil, tiers=_SMOOTHING_TIERS),
        _filter(
            "oil_painting",
            "Oil painting brush strokes",
            OilParams,
            oil_painting,
            tiers={"balanced": {"size": 5}, "fast": {"size": 3, "dyn_ratio": 4}},
        ),
        _filter(
            "watercolor",
            "Watercolour wash (edge-aware stylisation)",
            WatercolorParams,
            watercolor,
            _stylization_context,
            tiers=_SMOOTHING_TIERS,
        ),
    ),
)


SKETCHES = ("pencil_sketch", "color_pencil")


def in_strips(art_filter: ArtFilter, image: np.ndarray, params: FilterParams, strips: int, pool: Executor) -> np.ndarray:
    """The filter over `strips` horizontal bands run side by side on `pool`, each with its context
    rows, then stitched: the whole image's result up to rounding, in a fraction of the wall time.
    A strip keeps at least twice its context in rows of its own, so that the overlap costs at most
    double; where that leaves one strip, or the filter has no context, it is one ordinary call."""
    if art_filter.context_rows is None:
        return art_filter.apply(image, params)
    context = art_filter.context_rows(params)
    height = image.shape[0]
    strips = min(strips, height // (2 * context))
    if strips < 2:
        return art_filter.apply(image, params)
    bounds = np.linspace(0, height, strips + 1).round().astype(int)

    def band(top: int, bottom: int) -> np.ndarray:
        start = max(0, top - context)
        out = art_filter.apply(image[start : min(height, bottom + context)], params)
        return out[top - start : bottom - start]

    return np.concatenate(list(pool.map(band, bounds[:-1], bounds[1:])))


def render(
    image: np.ndarray, wanted: list[tuple[str, FilterParams]], pool: Executor | None = None, strips: int = 1
) -> list[np.ndarray]:
    """Applies several filters to one image; the two sketches with equal parameters share one
    pencilSketch, and with a `pool` the filters that have context rows run in `strips` bands."""
    shared: dict[FilterParams, tuple[np.ndarray, np.ndarray]] = {}
    outputs = []
    for name, params in wanted:
        if name in SKETCHES and isinstance(params, SketchParams):
            if params not in shared:
                shared[params] = sketches(image, params)
            outputs.append(shared[params][SKETCHES.index(name)])
        elif pool is not None:
            outputs.append(in_strips(FILTERS.get(name), image, params, strips, pool))
        else:
            outputs.append(FILTERS.get(name).apply(image, params))
    return outputs


def parallel_groups(names: list[str]) -> list[list[str]]:
    """The filters to compute together: both sketches in one group, every other filter alone."""
    together = [name for name in names if name in SKETCHES]
    return ([together] if together else []) + [[name] for name in names if name not in SKETCHES]
