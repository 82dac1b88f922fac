"""`python -m bench`: raw, served and baseline, one after another on this machine, then the ratios.

Writes bench/results/<timestamp>.json and prints a table. Figures from different runs on a shared
machine are not comparable: compare the ratios inside one run.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import torch
from rich.console import Console
from rich.table import Table

from bench import raw, shapes
from bench.load import RATIO_CONCURRENCY, LoadResult, requests_at, run_load, workloads
from bench.photos import jpeg, photo
from bench.raw import RawReport
from bench.service import CORES, PORT, ROOT, grow, measured, replica_memory_mb, served
from core.settings import Settings
from deployments.batching import BatchConfig
from deployments.model import machine_sized
from models.weights import WeightsLocations

RESULTS = ROOT / "bench" / "results"


def levels(name: str, quick: bool) -> list[tuple[int, int]]:
    """(concurrency, requests) per load level."""
    concurrency = [1, 4] if quick else ([1, 4, 8, 16] if name == "anime" else [1, 4, 16])
    return [(c, max(4, 2 * c) if quick else max(8, requests_at(name, c))) for c in concurrency]


def ratio_level(workload: str, quick: bool) -> int:
    """The level a workload's ratios are read at: RATIO_CONCURRENCY's, or a quick run's highest below it."""
    return max(c for c, _ in levels(workload, quick) if c <= RATIO_CONCURRENCY[workload])


Runs = dict[str, list[LoadResult]]


def drive(base_url: str, quick: bool, scaled: bool = False) -> Runs:
    """Each workload at each level; where `scaled` (toonserve), each level is first driven until its
    replicas have started (bench.service.grow)."""
    results: Runs = {}
    for name, workload in workloads().items():
        url = base_url + workload.path
        run_load(url, workload.body, 1, 2)  # warm-up
        results[name] = []
        for concurrency, requests in levels(name, quick):
            if scaled and concurrency > 1:
                grow(url, workload.body, concurrency, workload.deployment)
            outcome = measured(url, workload.body, concurrency, requests)
            results[name].append(outcome)
            print(f"  {name} c={concurrency}: {outcome.images_per_s:.2f} img/s, p50 {outcome.p50_ms:.0f} ms, {outcome.statuses}")
    return results


ANIME_SIZES = [("full", 512), ("full", 1024), ("full", 2048), ("fast", 1024), ("fast", 2048)]


def anime_sizes(base_url: str, quick: bool) -> list[dict[str, Any]]:
    """Anime's cost per output size: p50 at concurrency 1 of a 2048x1536 photo drawn at each long side."""
    body = jpeg(photo(2048, 1536)[0])
    found = []
    for quality, side in ANIME_SIZES[:2] if quick else ANIME_SIZES:
        url = f"{base_url}/v1/anime?max_side={side}&quality={quality}"
        run_load(url, body, 1, 1)  # warm-up
        outcome = run_load(url, body, 1, 2 if quick else 3)
        found.append({"quality": quality, "max_side": side, "p50_ms": outcome.p50_ms, "statuses": outcome.statuses})
        print(f"  anime {quality} at {side}: p50 {outcome.p50_ms:.0f} ms, {outcome.statuses}", flush=True)
    return found


@contextmanager
def baseline(port: int) -> Iterator[str]:
    server = subprocess.Popen([sys.executable, "-m", "bench.baseline", "--port", str(port)], cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@dataclass
class Report:
    quick: bool
    machine: dict[str, str | int]
    raw: RawReport
    served: Runs = field(default_factory=dict)
    anime_sizes: list[dict[str, Any]] = field(default_factory=list)
    baseline: Runs = field(default_factory=dict)
    replica_memory_mb: dict[str, dict[str, float]] = field(default_factory=dict)
    shapes: dict[str, Any] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)

    def at(self, side: Runs, workload: str, concurrency: int) -> LoadResult:
        return next(r for r in side[workload] if r.concurrency == concurrency)

    def compute_ratios(self) -> None:
        variant = self.raw.served_variant
        anime_c = ratio_level("anime", self.quick)
        served_anime = self.at(self.served, "anime", anime_c).images_per_s
        shaped = {rate.model: rate for rate in self.raw.shaped}
        self.ratios = {
            f"anime c{anime_c}: served / baseline": served_anime / self.at(self.baseline, "anime", anime_c).images_per_s,
        }
        for model, workload in (("anime", "anime"), ("u2netp", "matte_u2netp"), ("u2net_human_seg", "matte_u2net_human_seg")):
            concurrency = ratio_level(workload, self.quick)
            if model in shaped:
                rate = shaped[model]
                self.ratios[
                    f"{workload} c{concurrency}: served / raw in the served shape "
                    f"({rate.processes} processes x {rate.threads} thread, {rate.variant}, {rate.width}x{rate.height}, batch 1)"
                ] = self.at(self.served, workload, concurrency).images_per_s / rate.images_per_s
        self.ratios |= {
            f"anime c{anime_c}: served / raw in one process on every core ({variant}, 512x384, batch 1)": served_anime
            / self.raw.rate("anime", (512, 384), variant),
            "art c4: served / baseline throughput": self.at(self.served, "art", 4).images_per_s
            / self.at(self.baseline, "art", 4).images_per_s,
            "art c1: baseline p50 / served p50 latency": self.at(self.baseline, "art", 1).p50_ms
            / self.at(self.served, "art", 1).p50_ms,
        }
        for model in ("u2netp", "u2net_human_seg"):
            matte_c = ratio_level(f"matte_{model}", self.quick)
            served_matte = self.at(self.served, f"matte_{model}", matte_c).images_per_s
            self.ratios[f"matte {model} c{matte_c}: served / raw in one process on every core ({variant}, batch 1)"] = (
                served_matte / self.raw.rate(model, (320, 320), variant)
            )


def print_cpu(console: Console, served: Runs) -> None:
    """Where the CPU went at each model workload's busiest level: seconds per image by process."""
    busiest = {name: max(runs, key=lambda run: run.concurrency) for name, runs in served.items() if name != "art"}
    roles = sorted(
        {role for run in busiest.values() for role in run.cpu_s_per_image},
        key=lambda role: -sum(run.cpu_s_per_image.get(role, 0.0) for run in busiest.values()),
    )
    table = Table(title="served: CPU seconds per image, by process")
    table.add_column("process")
    for name, run in busiest.items():
        table.add_column(f"{name} c{run.concurrency}", justify="right")
    for role in roles:
        table.add_row(role, *(f"{run.cpu_s_per_image.get(role, 0.0):.3f}" for run in busiest.values()))
    table.add_row("all", *(f"{sum(run.cpu_s_per_image.values()):.3f}" for run in busiest.values()))
    console.print(table)


def print_report(report: Report) -> None:
    console = Console(width=170)
    peaks = report.raw.peak_gflops
    table = Table(title=f"raw (peak GEMM: {', '.join(f'{name} {gflops:.0f}' for name, gflops in peaks.items())} GFLOP/s)")
    for column in ("model", "size", "batch", "variant", "ms/img", "img/s", "GFLOP/s", "÷ peak", "PSNR dB"):
        table.add_column(column, justify="right")
    for m in report.raw.models:
        peak = peaks["bf16" if m.variant.startswith("bf16") else "fp32"]
        achieved = m.achieved_gflops or 0.0
        table.add_row(
            m.model, f"{m.width}x{m.height}", str(m.batch), m.variant, f"{m.ms_per_image:.0f}", f"{m.images_per_s:.2f}",
            f"{achieved:.0f}", f"{achieved / peak:.2f}", "ref" if m.psnr_db is None else f"{m.psnr_db:.1f}",
        )  # fmt: skip
    console.print(table)
    console.print(f"models ran under {report.raw.allocator or 'the default allocator'}")
    filters = report.raw.filters_1920x1080_ms
    console.print(
        f"filters on 1920x1080, ms: {', '.join(f'{k} {v:.0f}' for k, v in filters.items())}; serial {sum(filters.values()):.0f}"
    )
    load = Table(title="served vs baseline over HTTP")
    for column in (
        "workload",
        "conc.",
        "served img/s",
        "baseline img/s",
        "served p50/p95/p99 ms",
        "baseline p50/p95/p99 ms",
        "non-200",
    ):
        load.add_column(column, justify="right")
    for name, runs in report.served.items():
        for run in runs:
            base = report.at(report.baseline, name, run.concurrency)
            errors = {f"served {k}": v for k, v in run.statuses.items() if k != "200"}
            errors |= {f"baseline {k}": v for k, v in base.statuses.items() if k != "200"}
            load.add_row(
                name, str(run.concurrency), f"{run.images_per_s:.2f}", f"{base.images_per_s:.2f}",
                f"{run.p50_ms:.0f}/{run.p95_ms:.0f}/{run.p99_ms:.0f}", f"{base.p50_ms:.0f}/{base.p95_ms:.0f}/{base.p99_ms:.0f}",
                str(errors or "-"),
            )  # fmt: skip
    console.print(load)
    summary = Table(title="ratios")
    summary.add_column("ratio")
    summary.add_column("value", justify="right")
    for name, value in report.ratios.items():
        summary.add_row(name, f"{value:.2f}")
    console.print(summary)
    print_cpu(console, report.served)
    sizes = Table(title="anime per output size (a 2048x1536 photo), concurrency 1")
    for column in ("quality", "max_side", "p50 ms"):
        sizes.add_column(column, justify="right")
    for row in report.anime_sizes:
        sizes.add_row(row["quality"], str(row["max_side"]), f"{row['p50_ms']:.0f}")
    console.print(sizes)
    if report.shapes:
        shapes.print_shapes(report.shapes)
    memory = ", ".join(f"{name}: RSS {m['rss']:.0f} / USS {m['uss']:.0f}" for name, m in report.replica_memory_mb.items())
    console.print(f"replica memory after the served run, MB: {memory}")


def soak(settings: Settings, port: int, seconds: float) -> Path:
    """A steady mixed load for `seconds`; each replica's memory at the start and at the end."""
    with served(settings, port) as url:
        for workload in workloads().values():
            run_load(url + workload.path, workload.body, 1, 2)
        start_memory = replica_memory_mb()
        statuses: dict[str, int] = {}
        series: list[dict[str, float]] = []
        deadline = time.monotonic() + seconds
        rounds = 0
        while time.monotonic() < deadline:
            for workload in workloads().values():
                outcome = run_load(url + workload.path, workload.body, 4, 8)
                for status, count in outcome.statuses.items():
                    statuses[status] = statuses.get(status, 0) + count
            rounds += 1
            elapsed = time.monotonic() - deadline + seconds
            # USS per replica after every round: a plateau and a slow climb look alike at two points.
            series.append({"t_s": elapsed} | {name: m["uss"] for name, m in replica_memory_mb().items()})
            print(f"  {elapsed:.0f} s: {statuses}", flush=True)
        end_memory = replica_memory_mb()
    result = {
        "seconds": seconds,
        "rounds": rounds,
        "statuses": statuses,
        "start_mb": start_memory,
        "end_mb": end_memory,
        "uss_mb_by_round": series,
    }
    output = RESULTS / f"soak-{time.strftime('%Y%m%dT%H%M%S')}.json"
    output.write_text(json.dumps(result, indent=2))
    table = Table(title=f"replica memory over a {seconds:.0f} s steady run (MB)")
    for column in ("replica", "RSS start", "RSS end", "USS start", "USS end"):
        table.add_column(column, justify="right")
    for name, start in start_memory.items():
        end = end_memory.get(name, {"rss": float("nan"), "uss": float("nan")})
        table.add_row(name, f"{start['rss']:.0f}", f"{end['rss']:.0f}", f"{start['uss']:.0f}", f"{end['uss']:.0f}")
    Console(width=170).print(table)
    return output


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes, batches, levels and requests (a smoke run)")
    parser.add_argument("--port", type=int, default=PORT)
    parser.add_argument(
        "--soak", type=float, metavar="SECONDS", help="only a steady mixed load this long, reporting replica memory"
    )
    parser.add_argument("--skip-shapes", action="store_true", help="leave out the replica shapes (python -m bench.shapes)")
    args = parser.parse_args()
    settings = Settings()
    if settings.weights_dir is None:
        settings = settings.model_copy(update={"random_weights": True, "download_weights": False})
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.soak:
        print(f"wrote {soak(settings, args.port, args.soak)}")
        return
    print(f"raw: in-process inference ({'seeded random' if settings.random_weights else 'real'} weights)")
    machine: dict[str, str | int] = {
        "cpu": platform.processor() or platform.machine(),
        "cores": CORES,
        "torch": torch.__version__,
        "compile_models": int(settings.compile_models),
    }
    report = Report(
        args.quick,
        machine,
        raw.measure(
            WeightsLocations(weights_dir=settings.weights_dir),
            quick=args.quick,
            threads=CORES,
            served=raw.served_variant(settings),
            shape=(CORES, BatchConfig().threads),
        ),
    )
    print("served: toonserve on a local Ray, its model deployments sized to this machine as `toonserve serve` does")
    with served(settings, args.port, machine_sized(CORES)) as url:
        report.served = drive(url, args.quick, scaled=True)
        report.anime_sizes = anime_sizes(url, args.quick)
        report.replica_memory_mb = replica_memory_mb()
    print("baseline: Flask + multiprocessing.Pool")
    with baseline(args.port + 1) as url:
        report.baseline = drive(url, args.quick)
    if not (args.quick or args.skip_shapes):
        print("replica shapes: toonserve again, once per shape")
        report.shapes = shapes.compare(settings, args.port)
    report.compute_ratios()
    path = RESULTS / f"{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(asdict(report), indent=2))
    print_report(report)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
