"""`python -m bench.chaos`: SIGKILL the proxy and model replicas of a local `toonserve serve` under load.

Starts `toonserve serve serve_config.yaml` (seeded random weights where TOONSERVE_WEIGHTS_DIR names
none), sends a steady open-loop load through `toonserve.client` (anime and watercolour in turn), and
kills one process of each kind in turn. Reports how many requests came back 200, and, per fault,
how long until a process of its kind ran again (its actor started, not yet RUNNING in Serve's eyes); writes
bench/results/chaos-<timestamp>.json and a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import httpx
import psutil
from rich.console import Console
from rich.table import Table

from bench.photos import jpeg, photo
from core.settings import Settings
from tests.serving import in_background
from toonserve.client import async_toonserve_client

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
URL = "http://127.0.0.1:8000"
VICTIMS = ["ProxyActor", "ServeReplica:toonserve:ArtFilters", "ServeReplica:toonserve:AnimeGAN", "ProxyActor"]


def of_kind(root: psutil.Process, kind: str) -> list[psutil.Process]:
    found = []
    for process in root.children(recursive=True):
        try:
            if process.name() == f"ray::{kind}":
                found.append(process)
        except psutil.NoSuchProcess:
            continue
    return found


async def answering(client: httpx.AsyncClient) -> bool:
    try:
        return (await client.get("/healthz", timeout=1)).status_code == 200
    except httpx.HTTPError:
        return False


async def load(rate: float, seconds: float, outcomes: list[tuple[float, str, int | str]]) -> None:
    data = jpeg(photo(640, 480)[0])
    paths = ["/v1/anime", "/v1/filters/watercolor"]
    start = time.perf_counter()

    async def one(client: httpx.AsyncClient, path: str, sent: float) -> None:
        try:
            status: int | str = (await client.post(path, content=data)).status_code
        except httpx.HTTPError as error:
            status = type(error).__name__
        outcomes.append((sent, path, status))

    async with async_toonserve_client(URL, limits=httpx.Limits(max_connections=64)) as client:
        tasks = []
        for n in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one(client, paths[n % 2], time.perf_counter() - start)))
        await asyncio.gather(*tasks)


async def faults(root: psutil.Process, every_s: float) -> list[dict[str, float | str]]:
    found: list[dict[str, float | str]] = []
    start = time.perf_counter()
    async with httpx.AsyncClient(base_url=URL) as probe:
        for index, kind in enumerate(VICTIMS, start=1):
            await asyncio.sleep(max(0.0, start + index * every_s - time.perf_counter()))
            victim = of_kind(root, kind)[0]
            victim.kill()
            killed = time.perf_counter()
            await asyncio.sleep(0.2)
            while not (await answering(probe) and [p for p in of_kind(root, kind) if p.pid != victim.pid]):
                await asyncio.sleep(0.1)
            found.append({"killed": kind, "at_s": killed - start, "replaced_after_s": time.perf_counter() - killed})
    return found


async def run(rate: float, every_s: float, root: psutil.Process) -> tuple[list[dict[str, float | str]], list]:
    outcomes: list[tuple[float, str, int | str]] = []
    seconds = every_s * (len(VICTIMS) + 1)
    killed, _ = await asyncio.gather(faults(root, every_s), load(rate, seconds, outcomes))
    return killed, outcomes


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=2.0, help="requests per second")
    parser.add_argument("--every", type=float, default=20.0, help="seconds between faults")
    args = parser.parse_args()
    env = {"TOONSERVE_RANDOM_WEIGHTS": "1"} if Settings().weights_dir is None else {}
    with in_background([str(Path(sys.executable).parent / "toonserve"), "serve", "serve_config.yaml"], URL, env) as server:
        killed, outcomes = asyncio.run(run(args.rate, args.every, server))
    ok = sum(1 for *_, status in outcomes if status == 200)
    failed = [o for o in outcomes if o[2] != 200]
    result = {"rate": args.rate, "requests": len(outcomes), "ok": ok, "failed": failed, "faults": killed}
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"chaos-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    table = Table(title=f"SIGKILL under {args.rate} requests/s through toonserve.client: {ok} of {len(outcomes)} answered 200")
    for column in ("killed", "at s", "a new one, and /healthz answers, after s"):
        table.add_column(column, justify="right")
    for fault in killed:
        table.add_row(str(fault["killed"]), f"{fault['at_s']:.0f}", f"{fault['replaced_after_s']:.1f}")
    Console().print(table)
    print(f"failed: {failed}\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
