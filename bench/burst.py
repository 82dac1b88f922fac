"""`python -m bench.burst`: an open-loop burst against a running service, its replicas over time, and a plot.

Writes bench/results/burst-<timestamp>.json and a PNG of load, latency and replicas over time,
and prints the summary (toonserve/burst.py describes the profiles).

    python -m bench.burst --url http://127.0.0.1:8000 --profile burst --rate 1 --peak 10 \\
        --path "/v1/filters/pencil_sketch?max_side=512"
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from bench.photos import jpeg, photo
from toonserve.burst import BurstReport, LoadShape, run_burst
from toonserve.client import KEY_ENV
from toonserve.serve_admin import DEFAULT_DASHBOARD

RESULTS = Path(__file__).resolve().parent / "results"


def plot(report: BurstReport, path: Path) -> Path:
    """Three panels against time: offered, served and refused requests/s; p50 and p99 latency; replicas."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seconds = [s["t_s"] for s in report.per_second]
    figure, (load, latency, replicas) = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    load.plot(seconds, [s["offered_rps"] for s in report.per_second], label="offered")
    load.plot(seconds, [s["ok_rps"] for s in report.per_second], label="200")
    load.plot(seconds, [s["rejected_rps"] for s in report.per_second], label="503")
    load.set_ylabel("requests/s")
    load.legend()
    load.set_title(f"{report.shape.profile}: {report.url}")
    for key in ("p50_ms", "p99_ms"):
        latency.plot(seconds, [s[key] if s[key] is not None else np.nan for s in report.per_second], label=key[:3])
    latency.set_ylabel("latency of 200s (ms)")
    latency.legend()
    names = sorted({n for s in report.samples for n in s.replicas})
    for name in names:
        replicas.step(
            [s.t_s for s in report.samples], [s.replicas.get(name, 0) for s in report.samples], where="post", label=name
        )
    replicas.set_ylabel("RUNNING replicas")
    replicas.set_xlabel("seconds")
    if names:
        replicas.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.burst", description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--path", default="/v1/filters/pencil_sketch?max_side=512", help="endpoint and query")
    parser.add_argument("--photo", type=Path, help="the image to send (default: a 1024x768 photo)")
    parser.add_argument("--dashboard", default=DEFAULT_DASHBOARD, help="Ray dashboard, for Serve's REST API ('' for none)")
    parser.add_argument("--app", default="toonserve")
    parser.add_argument("--watch", default="ArtFilters", help="the deployment whose scale-up and scale-down times to report")
    parser.add_argument("--profile", choices=["steady", "burst", "ramp"], default="burst")
    parser.add_argument("--rate", type=float, default=1.0, help="base requests/s")
    parser.add_argument("--peak", type=float, default=10.0, help="burst or ramp-top multiple of --rate")
    parser.add_argument("--duration", type=float, default=120.0, help="seconds")
    parser.add_argument("--burst-at", type=float, default=20.0, help="seconds from the start")
    parser.add_argument("--burst-for", type=float, default=30.0, help="seconds")
    parser.add_argument("--retry", action="store_true", help="send through toonserve.client (retries 503 and 408)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--probe", default="/healthz", help="a liveness path to probe 4 times a second ('' for none)")
    parser.add_argument("--key", default=os.environ.get(KEY_ENV), help=f"the API key, where needed (default ${KEY_ENV})")
    args = parser.parse_args()
    body = args.photo.read_bytes() if args.photo else jpeg(photo(1024, 768)[0])
    shape = LoadShape(args.profile, args.rate, args.peak, args.duration, args.burst_at, args.burst_for, args.seed)
    report = run_burst(
        args.url + args.path,
        body,
        shape,
        dashboard=args.dashboard or None,
        app=args.app,
        watched=args.watch,
        retry=args.retry,
        progress=True,
        key=args.key,
        probe=args.url + args.probe if args.probe else None,
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"burst-{time.strftime('%Y%m%dT%H%M%S')}"
    stem.with_suffix(".json").write_text(json.dumps(asdict(report), indent=2))
    plot(report, stem.with_suffix(".png"))
    print(json.dumps(report.summary, indent=2))
    if report.sampler_errors:
        print(f"warning: replica counts are incomplete; Serve's REST API at {args.dashboard} failed: {report.sampler_errors}")
    print(f"wrote {stem}.json and {stem}.png")


if __name__ == "__main__":
    main()
