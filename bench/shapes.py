"""Model replica shapes on this machine: one replica on every core against one-thread replicas.

Each shape serves toonserve afresh and measures over HTTP, per model workload: p50 at concurrency 1,
then images/s at its high concurrency. An autoscaled shape is first driven at that concurrency
until every replica it may have is running, so that the figure is the shape's, not its scale-up's.
`python -m bench.shapes` runs it alone; `make bench` runs it as a section.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.load import RATIO_CONCURRENCY, LoadResult, requests_at, run_load, workloads
from bench.service import CORES, PORT, ROOT, grow, replica_memory_mb, running_replicas, served
from core.settings import Settings
from core.stages import model_stages
from deployments.batching import BatchConfig
from deployments.model import model_scaling


@dataclass(frozen=True)
class Shape:
    name: str
    threads: int
    """Torch threads per model replica; 0: every core."""
    replicas: tuple[int, int]
    """(min, max) model replicas per model deployment."""

    def options(self) -> dict[str, dict[str, Any]]:
        config = {
            "autoscaling_config": model_scaling(*self.replicas),
            "user_config": BatchConfig(threads=self.threads).model_dump(),
        }
        return {stage.deployment: config for stage in model_stages()}


def shapes(cores: int = CORES) -> list[Shape]:
    return [
        Shape("one replica, every core", 0, (1, 1)),
        Shape(f"one-thread replicas, 1..{cores}", 1, (1, cores)),
        Shape(f"{cores} one-thread replicas", 1, (cores, cores)),
    ]


@dataclass(frozen=True)
class ShapeResult:
    shape: str
    workload: str
    single: LoadResult
    busy: LoadResult
    replicas: int
    """Replicas of the workload's deployment running when `busy` was measured."""
    grow_s: float
    """Seconds of load it took to get there."""


def measure(shape: Shape, settings: Settings, port: int) -> tuple[list[ShapeResult], float]:
    """Each case in this shape, and the model replicas' USS in MB at the end."""
    results = []
    every = workloads()
    with served(settings, port, shape.options()) as url:
        for name, high in RATIO_CONCURRENCY.items():
            workload = every[name]
            target = url + workload.path
            run_load(target, workload.body, 1, 2)  # warm-up
            single = run_load(target, workload.body, 1, 6)
            grown = grow(target, workload.body, high, workload.deployment)
            busy = run_load(target, workload.body, high, requests_at(name, high))
            results.append(ShapeResult(shape.name, name, single, busy, running_replicas(workload.deployment), grown))
            print(
                f"  {shape.name}, {name}: c1 p50 {single.p50_ms:.0f} ms; c{high} {busy.images_per_s:.2f} img/s "
                f"on {results[-1].replicas} replicas {busy.statuses}",
                flush=True,
            )
        models = tuple(stage.deployment for stage in model_stages())
        uss = sum(m["uss"] for name, m in replica_memory_mb().items() if name.startswith(models))
    return results, uss


def compare(settings: Settings, port: int) -> dict[str, Any]:
    results: list[ShapeResult] = []
    memory: dict[str, float] = {}
    for shape in shapes():
        found, memory[shape.name] = measure(shape, settings, port)
        results += found
    return {"results": [asdict(r) for r in results], "model_replicas_uss_mb": memory}


def print_shapes(report: dict[str, Any]) -> None:
    table = Table(title="model replica shapes, one run each (ratios against the first shape)")
    for column in ("shape", "workload", "c1 p50 ms", "busy img/s", "replicas", "p50 ratio", "img/s ratio"):
        table.add_column(column, justify="right")
    first: dict[str, dict[str, Any]] = {}
    for r in report["results"]:
        base = first.setdefault(r["workload"], r)
        table.add_row(
            r["shape"], f"{r['workload']} c{r['busy']['concurrency']}", f"{r['single']['p50_ms']:.0f}",
            f"{r['busy']['images_per_s']:.2f}", str(r["replicas"]), f"{r['single']['p50_ms'] / base['single']['p50_ms']:.2f}",
            f"{r['busy']['images_per_s'] / base['busy']['images_per_s']:.2f}",
        )  # fmt: skip
    console = Console(width=170)
    console.print(table)
    console.print(
        "model replicas' USS at the end, MB: " + ", ".join(f"{k} {v:.0f}" for k, v in report["model_replicas_uss_mb"].items())
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.shapes", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=PORT)
    args = parser.parse_args()
    settings = Settings()
    if settings.weights_dir is None:
        settings = settings.model_copy(update={"random_weights": True, "download_weights": False})
    report = compare(settings, args.port)
    path = ROOT / "bench" / "results" / f"shapes-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2))
    print_shapes(report)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
