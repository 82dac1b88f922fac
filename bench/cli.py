"""`python -m bench.cli`: `toonserve convert` against the HTTP API driven directly, same photos, same concurrency.

Needs a running service (--url). Posts N distinct photos straight to the effect's path with httpx, then converts them with the
CLI (its whole run timed, start-up included) at the same concurrency, alternating for some rounds;
median images/s for both, in bench/results/cli-<timestamp>.json and a table.

    python -m bench.cli --url http://127.0.0.1:8000 --effect watercolor --photos 20 --concurrency 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from bench.photos import photo_files
from toonserve.convert import effect_of, read_effects

RESULTS = Path(__file__).resolve().parent / "results"


def run_cli(url: str, effect: str, folder: Path, out: Path, concurrency: int) -> float:
    start = time.perf_counter()
    command = [str(Path(sys.executable).parent / "toonserve"), "convert", str(folder), "--effect", effect]
    command += ["--out", str(out), "--url", url, "--concurrency", str(concurrency)]
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


async def run_api(url: str, path: str, photos: list[Path], concurrency: int) -> float:
    queue = list(photos)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=300.0, limits=limits) as client:

        async def worker() -> None:
            while queue:
                response = await client.post(path, content=queue.pop().read_bytes())
                response.raise_for_status()

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cli", description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--effect", default="watercolor")
    parser.add_argument("--photos", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3, help="API and CLI alternate this many times; medians reported")
    args = parser.parse_args()
    path = effect_of(read_effects(args.url), args.effect)["path"]
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "photos"
        folder.mkdir()
        photos = photo_files(folder, args.photos, 1024, 768, step=8)  # distinct: no cache can help
        asyncio.run(run_api(args.url, path, photos[: args.concurrency], args.concurrency))  # warm: nothing loads in a timed run
        api_runs, cli_runs = [], []
        for round_ in range(args.rounds):
            api_runs.append(asyncio.run(run_api(args.url, path, photos, args.concurrency)))
            cli_runs.append(run_cli(args.url, args.effect, folder, Path(scratch) / f"out-{round_}", args.concurrency))
    api_s, cli_s = statistics.median(api_runs), statistics.median(cli_runs)
    result = {
        "effect": args.effect,
        "photos": args.photos,
        "concurrency": args.concurrency,
        "api_s_each_round": api_runs,
        "cli_s_each_round": cli_runs,
        "cli_s": cli_s,
        "api_s": api_s,
        "cli_images_per_s": args.photos / cli_s,
        "api_images_per_s": args.photos / api_s,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    output = RESULTS / f"cli-{time.strftime('%Y%m%dT%H%M%S')}.json"
    output.write_text(json.dumps(result, indent=2) + "\n")
    table = Table(title=f"{args.photos} photos, {args.effect}, concurrency {args.concurrency}, median of {args.rounds}")
    for column in ("client", "seconds", "images/s"):
        table.add_column(column, justify="right")
    table.add_row("toonserve convert (whole run)", f"{cli_s:.1f}", f"{result['cli_images_per_s']:.2f}")
    table.add_row("httpx straight to the API", f"{api_s:.1f}", f"{result['api_images_per_s']:.2f}")
    Console().print(table)
    print(f"CLI / API: {result['cli_images_per_s'] / result['api_images_per_s']:.2f}; wrote {output}")


if __name__ == "__main__":
    main()
