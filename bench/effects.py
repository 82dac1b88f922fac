"""`python -m bench.effects`: each effect and preset on one photo: its cost, and the bytes each deployment hop carries.

Runs the service's own pipeline in this process (core.stages.LocalStages: the same renderers,
stages and models, without Ray), so the figures are the work itself, not Serve's overhead. Each
message that would cross a deployment handle is pickled as Serve pickles handle arguments and
results; its length is what that hop carries. Writes bench/results/effects-<timestamp>.json
and prints a table.

    python -m bench.effects [--photo PATH] [--repeats N]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pydantic import BaseModel
from ray import cloudpickle
from rich.console import Console
from rich.table import Table

from bench.photos import jpeg, photo
from core.art import FilterParams
from core.catalogue import Effect
from core.effects import CATALOGUE
from core.pipeline import Pipeline
from core.settings import Settings
from core.stages import STAGES, LocalStages, ModelOutput, Stages, StageStates

RESULTS = Path(__file__).resolve().parent / "results"


def pickled(*message: Any) -> int:
    return len(cloudpickle.dumps(message))


class RecordingStages:
    """The stages in this process, noting the bytes of each call and each result."""

    def __init__(self, inner: Stages) -> None:
        self.inner = inner
        self.hops: list[tuple[str, int]] = []

    async def model(self, stage: str, image: np.ndarray, model: str) -> ModelOutput:
        deployment = STAGES.get(stage).deployment
        self.hops.append((f"Ingress -> {deployment}", pickled(image, model)))
        output = await self.inner.model(stage, image, model)
        self.hops.append((f"{deployment} -> Ingress", pickled(output)))
        return output

    async def filters(self, image: np.ndarray, wanted: list[tuple[str, FilterParams]]) -> list[np.ndarray]:
        self.hops.append(("Ingress -> ArtFilters", pickled(image, wanted)))
        images = await self.inner.filters(image, wanted)
        self.hops.append(("ArtFilters -> Ingress", pickled(images)))
        return images

    async def states(self) -> StageStates:
        return await self.inner.states()


@dataclass(frozen=True)
class Run:
    effect: str
    preset: str | None
    output: list[int]
    ms: float
    """Wall time of the render in this process, the last of `repeats`."""
    hops: list[tuple[str, int]]
    """Every message across a deployment handle, in order, and its pickled bytes."""

    @property
    def total_bytes(self) -> int:
        return sum(size for _, size in self.hops)


async def run_once(pipeline: Pipeline, stages: RecordingStages, effect: Effect[Any], query: BaseModel, data: bytes) -> Run:
    params, output = effect.resolve(query)
    stages.hops = []
    start = time.perf_counter()
    rendered = await pipeline.render(data, effect.name, params, output)
    ms = (time.perf_counter() - start) * 1000.0
    first = next(iter(rendered.pictures.values()))
    size = list(Image.open(io.BytesIO(first.data)).size)
    return Run(effect.name, getattr(query, "preset", None), size, ms, list(stages.hops))


def measure(data: bytes, repeats: int) -> list[Run]:
    settings = Settings(random_weights=True, download_weights=False)
    stages = RecordingStages(LocalStages(settings))
    runs: list[Run] = []
    with ThreadPoolExecutor(2) as executor:
        pipeline = Pipeline(settings, CATALOGUE, stages, executor)
        for effect in CATALOGUE:
            model = effect.query_model()
            for query in [model(), *(model(preset=p.name) for p in effect.presets)]:
                for _ in range(repeats):
                    run = asyncio.run(run_once(pipeline, stages, effect, query, data))
                runs.append(run)
                print(f"  {run.effect} {run.preset or '-'}: {run.ms:.0f} ms, {run.total_bytes:,} B across handles", flush=True)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.effects", description=__doc__.splitlines()[0])
    parser.add_argument("--photo", type=Path, help="the photo (default: the first sample, else a generated 1280x853)")
    parser.add_argument("--repeats", type=int, default=2, help="renders per row; the last one is reported")
    args = parser.parse_args()
    if args.photo:
        data, source = args.photo.read_bytes(), args.photo.name
    else:
        image, source = photo(1280, 853)
        data = jpeg(image)
    runs = measure(data, args.repeats)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"effects-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps({"photo": source, "photo_bytes": len(data), "runs": [asdict(r) for r in runs]}, indent=2))
    table = Table(title=f"each effect and preset, in one process ({source}, seeded weights)")
    for column in ("effect", "preset", "output", "ms", "handle hops", "bytes across handles"):
        table.add_column(column, justify="right")
    for run in runs:
        table.add_row(
            run.effect,
            run.preset or "-",
            "x".join(map(str, run.output)),
            f"{run.ms:.0f}",
            str(len(run.hops)),
            f"{run.total_bytes:,}",
        )
    Console(width=170).print(table)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
