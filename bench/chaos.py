"""`python -m bench.chaos`: SIGKILL the proxy and replicas of a local `toonserve serve` under load.

Starts `toonserve serve serve_config.yaml` (seeded random weights where TOONSERVE_WEIGHTS_DIR names
none), sends a steady open-loop load through `toonserve.client` (anime, watercolour and matte in
turn), and kills a process of each kind in turn, each `--every` seconds after the one before was
ridden out (tests/chaos.py). Reports how many requests came back 200 and, per fault, how long until
Serve reported its kind healthy again. With `--soak SECONDS` it keeps cycling through the victims for that long and records each
replica's memory (USS) every `--sample` seconds. Writes bench/results/chaos-<timestamp>.json and a table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from dataclasses import asdict
from itertools import cycle, islice
from pathlib import Path

import httpx
import psutil
from ray.serve.schema import ServeInstanceDetails, ServeStatus
from rich.console import Console
from rich.table import Table

from bench.photos import jpeg, photo
from core.settings import Settings
from tests.chaos import PROXY, chaos, healthy_in, process_name, processes
from tests.serving import in_background

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
URL = "http://127.0.0.1:8000"
APP = "toonserve"
DASHBOARD = "http://127.0.0.1:8265"
TOKEN = Path.home() / ".ray" / "auth_token"


async def serve_status(dashboard: httpx.AsyncClient) -> ServeStatus:
    """Serve's status from the dashboard's REST API, as `serve status` reads it (the token in ~/.ray)."""
    answer = await dashboard.get("/api/serve/applications/", timeout=10)
    answer.raise_for_status()
    return ServeInstanceDetails(**answer.json())._get_status()


async def sample_memory(root: psutil.Process, kinds: list[str], every_s: float, until: asyncio.Event) -> list[dict]:
    """USS in MB of each process of each kind, every `every_s` seconds until `until` is set."""
    series: list[dict] = []
    start = time.perf_counter()
    while not until.is_set():
        row: dict = {"t_s": round(time.perf_counter() - start, 1)}
        for kind in kinds:
            try:
                row[kind] = [round(p.memory_full_info().uss / 2**20) for p in processes(root, APP, kind)]
            except psutil.NoSuchProcess:
                row[kind] = []
        series.append(row)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(until.wait(), every_s)
    return series


async def run(args: argparse.Namespace, root: psutil.Process) -> tuple[list, list, list[dict]]:
    headers = {"Authorization": f"Bearer {TOKEN.read_text().strip()}"} if TOKEN.exists() else {}
    async with httpx.AsyncClient(base_url=DASHBOARD, headers=headers) as dashboard:
        return await _run(args, root, dashboard)


async def _run(args: argparse.Namespace, root: psutil.Process, dashboard: httpx.AsyncClient) -> tuple[list, list, list[dict]]:
    async def healthy(kind: str) -> bool:
        return healthy_in(await serve_status(dashboard), APP, kind)

    deployments = list((await serve_status(dashboard)).applications[APP].deployments)
    kinds = [kind for kind in deployments if kind != "Ingress" or args.ingress] + [PROXY]
    count = int(args.soak // args.every) - 1 if args.soak else len(kinds)
    victims = list(islice(cycle(kinds), count))
    data = jpeg(photo(640, 480)[0])
    requests = [(f"/v1/{path}", data) for path in ("anime", "filters/watercolor", "matte")]
    done = asyncio.Event()
    sampler = asyncio.create_task(sample_memory(root, [*deployments, PROXY], args.sample, done))
    found, outcomes = await chaos(URL, root, APP, victims, healthy, args.every, args.rate, requests)
    done.set()
    return found, outcomes, await sampler


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=2.0, help="requests per second")
    parser.add_argument("--every", type=float, default=20.0, help="seconds from a fault ridden out to the next")
    parser.add_argument("--soak", type=float, metavar="SECONDS", help="cycle through the victims for this long")
    parser.add_argument("--sample", type=float, default=30.0, help="seconds between memory samples")
    parser.add_argument("--ingress", action=argparse.BooleanOptionalAction, default=True, help="kill the Ingress too")
    args = parser.parse_args()
    env = {"TOONSERVE_RANDOM_WEIGHTS": "1"} if Settings().weights_dir is None else {}
    with in_background([str(Path(sys.executable).parent / "toonserve"), "serve", "serve_config.yaml"], URL, env) as server:
        found, outcomes, memory = asyncio.run(run(args, server))
        report(args, found, outcomes, memory)  # before the service stops: a stop that goes wrong loses nothing


def report(args: argparse.Namespace, found: list, outcomes: list, memory: list[dict]) -> None:
    ok = sum(1 for o in outcomes if o.status == 200)
    failed = [asdict(o) for o in outcomes if o.status != 200]
    result = {
        "rate": args.rate,
        "every_s": args.every,
        "requests": len(outcomes),
        "ok": ok,
        "failed": failed,
        "faults": [asdict(f) for f in found],
        "uss_mb": memory,
        "processes": {kind: process_name(APP, kind) for kind in memory[0] if kind != "t_s"} if memory else {},
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"chaos-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    console = Console()
    table = Table(title=f"SIGKILL under {args.rate} requests/s through toonserve.client: {ok} of {len(outcomes)} answered 200")
    for column in ("killed", "at s", "healthy again after s"):
        table.add_column(column, justify="right")
    for fault in found:
        table.add_row(fault.killed, f"{fault.at_s:.0f}", f"{fault.replaced_after_s:.1f}")
    console.print(table)
    if memory:
        uss = Table(title="USS per process, MB: first sample, highest, last sample")
        for column in ("kind", "first", "highest", "last"):
            uss.add_column(column, justify="right")
        for kind in memory[0]:
            if kind != "t_s":
                values = [sum(row[kind]) for row in memory if row[kind]]
                uss.add_row(kind, str(values[0]), str(max(values)), str(values[-1]))
        console.print(uss)
    print(f"failed: {failed}\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
