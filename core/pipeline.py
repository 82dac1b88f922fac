"""One effect on one photo: decode once, the effect's renderer with its stages, then encode, in this one place."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Executor

from pydantic import BaseModel

from core.catalogue import Catalogue, Context, OutputParams
from core.imaging import MEDIA_TYPES, encode
from core.messages import Encoded, Rendered
from core.photo import Picture, decode_photo
from core.settings import Settings
from core.stages import ModelStage, Stages
from core.timing import Timings


class Pipeline:
    def __init__(self, settings: Settings, catalogue: Catalogue, stages: Stages, executor: Executor) -> None:
        self.settings = settings
        self.catalogue = catalogue
        self.stages = stages
        self.executor = executor
        fixed = [
            entry.transforms.fixed_size
            for stage in catalogue.stages
            if isinstance(stage, ModelStage)
            for entry in stage.registry
            if entry.transforms.fixed_size is not None
        ]
        self.decode_floor = (max((w for w, _ in fixed), default=1), max((h for _, h in fixed), default=1))
        """Every photo is decoded at least this large (where it is): the largest fixed working size of the catalogue's models."""

    async def render(self, data: bytes, effect_name: str, params: BaseModel, output: OutputParams) -> Rendered:
        """The effect's pictures, encoded in `output.format`, with a Server-Timing entry per stage."""
        effect = self.catalogue.get(effect_name)
        timings = Timings()
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        photo = await loop.run_in_executor(
            self.executor,
            lambda: decode_photo(data, max_side=output.max_side, floor=self.decode_floor, max_pixels=self.settings.max_pixels),
        )
        timings.add("decode", start)
        made = await effect.render(Context(photo, params, self.stages, self.settings, timings, self.executor))
        pictures = made if isinstance(made, dict) else {effect.name: made}
        single = effect.returns == "image"

        def encoded(name: str, picture: Picture) -> tuple[str, Encoded]:
            began = time.perf_counter()
            data = encode(picture.image, picture.alpha, output.format)
            timings.add("encode" if single else f"encode_{name}", began)
            return name, Encoded(data, MEDIA_TYPES[output.format])

        results = await asyncio.gather(*(loop.run_in_executor(self.executor, encoded, n, p) for n, p in pictures.items()))
        return Rendered(dict(results), tuple(timings.entries))
