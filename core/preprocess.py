"""The CPU work on either side of a model: decode and resize before, compose and encode after."""

from __future__ import annotations

import time

import numpy as np

from core import imaging, matte
from core.errors import InvalidParameter
from core.messages import (
    MEDIA_TYPES,
    Encoded,
    MatteOptions,
    OutputFormat,
    Prepared,
    Rendered,
    StageTiming,
    WorkingSize,
)
from core.settings import Settings


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


class ImageProcessor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def prepare(self, data: bytes, *, max_side: int, working: WorkingSize | None, keep_image: bool) -> Prepared:
        """Decodes once, at the smallest JPEG draft scale that still covers every size needed."""
        start = time.perf_counter()
        header = imaging.open_image(data, self.settings.max_pixels)
        source = imaging.oriented_size(header)
        output_size = imaging.fit_within(source, max_side)
        working_size = None
        if working is not None:
            working_size = (
                (working.side, working.side) if working.square else imaging.fit_within(source, min(working.side, max_side))
            )
        needed = (
            output_size if working_size is None else (max(output_size[0], working_size[0]), max(output_size[1], working_size[1]))
        )
        rgb, alpha = imaging.decode(header, hint_size=needed)
        return Prepared(
            output_size=output_size,
            image=imaging.resize(rgb, output_size) if keep_image else None,
            working=imaging.resize(rgb, working_size) if working_size is not None else None,
            alpha=imaging.resize(alpha, output_size) if alpha is not None else None,
            timings=(StageTiming("decode", _ms_since(start)),),
        )

    def finish(self, rendered: Rendered, output_format: OutputFormat, options: MatteOptions | None = None) -> Encoded:
        """Resizes to the output size, applies the matte (if any) and encodes."""
        start = time.perf_counter()
        size = rendered.output_size
        image = imaging.resize(rendered.image, size)
        alpha = rendered.alpha
        if rendered.matte is not None:
            options = options or MatteOptions()
            refined = matte.refine(imaging.resize(rendered.matte, size), options)
            if alpha is not None:
                refined = refined * (alpha.astype(np.float32) / 255.0)
            if options.output == "mask":
                image, alpha = matte.to_uint8(refined), None
            elif options.output == "composite":
                image, alpha = matte.composite(image, refined, options.background), None
            else:
                if output_format == "jpeg":
                    raise InvalidParameter("a cutout keeps its transparency: ask for png or webp, not jpeg")
                alpha = matte.to_uint8(refined)
        data = imaging.encode(image, alpha, output_format)
        timings = (*rendered.timings, StageTiming("encode", _ms_since(start)))
        return Encoded(data, MEDIA_TYPES[output_format], size, timings)
