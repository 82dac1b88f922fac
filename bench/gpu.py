"""`python -m bench.gpu`: the models on a CUDA GPU, by precision, batch and mode, as a replica runs them, then served.

Three sections, written to bench/results/gpu-<timestamp>.json and printed as tables:
1. kernels: each model's forward alone, its input already on the GPU: fp32 NCHW (the PSNR reference,
   the module as loaded), then fp32, bf16 and fp16 autocast on the folded module, channels_last;
   run eagerly and replayed from a CUDA graph captured per batch; batches 1 to 32.
2. replica: core.runner.ModelRunner as a GPU model replica runs it (the Settings' precision, the
   whole batch in one forward): uint8 photos on the host in, outputs on the host out. The smallest
   batch within 10% of the best images/s is what the GPU config's max_batch_size should allow.
3. served: the whole app over HTTP on a local Ray, every deployment with the options of the GPU
   cluster's Serve config (its GPU node and CPU workers on this one machine), anime and the mattes at
   concurrency 1, at the model deployment's max_batch_size and at its max_ongoing_requests.

Needs torch with CUDA and the project's packages. `--device cpu --quick` runs the same code on the
CPU (no graphs; the local Ray declares a GPU that torch does not see) to check it, not to measure.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import platform
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from rich.console import Console
from rich.table import Table
from torch import nn

from bench.load import LoadResult, run_load, workloads
from bench.photos import photo
from bench.raw import as_pixels, load_or_seed, prepared, psnr
from bench.service import CORES, INGRESS, PORT, measured, running_replicas, served
from core.device import choose_device
from core.runner import ModelRunner, bucket_shape, pad_to
from core.settings import Settings
from models.animegan import ANIME_WEIGHTS
from models.registry import Registry, WeightsEntry
from models.u2net import U2NET_WEIGHTS
from models.weights import WeightsLocations
from toonserve.serve_configs import CLUSTER_CONFIGS

RESULTS = Path(__file__).resolve().parent / "results"
BATCHES = [1, 2, 4, 8, 16, 32]
AUTOCAST: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
"""Precision -> the dtype autocast runs in (None: off)."""
CASES: list[tuple[Registry[WeightsEntry], str, tuple[int, int]]] = [
    (ANIME_WEIGHTS, ANIME_WEIGHTS.default, (512, 341)),
    (ANIME_WEIGHTS, ANIME_WEIGHTS.default, (1024, 683)),
    (U2NET_WEIGHTS, "u2netp", (320, 320)),
    (U2NET_WEIGHTS, "u2net_human_seg", (320, 320)),
]
"""(registry, model, photo width x height): anime at its fast path's side and at the default output's
side (a 3:2 photo), the mattes at their fixed size."""
ENOUGH = 0.9
"""A batch size is enough once its images/s is within this fraction of the best."""
SERVED_WORKLOADS = ("anime", "matte_u2netp", "matte_u2net_human_seg")
SERVED_ROUNDS = 8
"""Closed-loop rounds a served level runs, after half as many to let its deployments scale."""


@dataclass(frozen=True)
class KernelResult:
    model: str
    width: int
    height: int
    precision: str
    """fp32-nchw (the reference) or fp32, bf16, fp16 autocast on the folded channels_last module."""
    mode: str
    """eager, or graph: replayed from a CUDA graph captured for this batch."""
    batch: int
    ms_per_batch: float | None
    ms_per_image: float | None
    images_per_s: float | None
    peak_mib: float | None
    psnr_db: float | None
    """Against fp32 NCHW eager on the same weights and pixels; None for the reference itself."""
    error: str | None = None


@dataclass(frozen=True)
class ReplicaResult:
    model: str
    width: int
    height: int
    batch: int
    ms_per_batch: float
    images_per_s: float


@dataclass(frozen=True)
class ServedResult:
    workload: str
    load: LoadResult
    replicas: dict[str, int]
    """Deployment -> its replicas running at the end of the level: the model deployment's and the Ingress's."""


@dataclass
class GpuReport:
    machine: dict[str, str | int | bool]
    weights: dict[str, str]
    peak_tflops: dict[str, float]
    kernels: list[KernelResult] = field(default_factory=list)
    replica: list[ReplicaResult] = field(default_factory=list)
    replica_placement: str = ""
    enough_batch: dict[str, int] = field(default_factory=dict)
    """Model at its size -> the smallest replica batch within ENOUGH of the best images/s."""
    served: list[ServedResult] = field(default_factory=list)


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def seconds_per_call(call: Callable[[], object], device: str, least_s: float) -> float:
    """Wall seconds per call after warm-up, over at least 5 calls and `least_s` seconds."""
    for _ in range(3):
        call()
    synchronize(device)
    start = time.perf_counter()
    call()
    synchronize(device)
    repeats = max(5, int(least_s / max(time.perf_counter() - start, 1e-6)))
    start = time.perf_counter()
    for _ in range(repeats):
        call()
    synchronize(device)
    return (time.perf_counter() - start) / repeats


def autocast(device: str, precision: str) -> torch.autocast:
    # A CUDA graph cannot capture autocast's weight cache; without it eager runs the same casts.
    dtype = AUTOCAST[precision]
    return torch.autocast(device, dtype=dtype or torch.float32, enabled=dtype is not None, cache_enabled=False)


def eager(module: nn.Module, x: torch.Tensor, device: str, precision: str) -> Callable[[], torch.Tensor]:
    def forward() -> torch.Tensor:
        with torch.inference_mode(), autocast(device, precision):
            return module(x)

    return forward


def graphed(module: nn.Module, x: torch.Tensor, device: str, precision: str) -> Callable[[], torch.Tensor]:
    """The forward captured once into a CUDA graph; each call replays it on the same input memory."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side), torch.no_grad(), autocast(device, precision):
        for _ in range(3):  # kernels chosen and workspaces allocated before the capture
            module(x)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.no_grad(), torch.cuda.graph(graph), autocast(device, precision):
        out: torch.Tensor = module(x)

    def replay() -> torch.Tensor:
        graph.replay()
        return out

    return replay


def kernels(
    entry: WeightsEntry, module: nn.Module, size: tuple[int, int], device: str, batches: list[int], least_s: float
) -> list[KernelResult]:
    image, _ = photo(*size)
    padded = pad_to(image, bucket_shape(*image.shape[:2]))  # as the replica pads it
    one = entry.transforms.to_input(torch.from_numpy(padded)[None]).contiguous().to(device)
    reference = prepared(module, "fp32-nchw").to(device)
    folded = prepared(module, "fp32-cl").to(device)
    with torch.inference_mode():
        expected = as_pixels(entry, reference(one)[:1].float().cpu())
    modes = {"eager": eager, **({"graph": graphed} if device == "cuda" else {})}
    cases = [("fp32-nchw", reference, "eager")] + [(p, folded, m) for p in AUTOCAST for m in modes]
    results = []
    for precision, net, mode in cases:
        for batch in batches:
            x = one.repeat(batch, 1, 1, 1)
            if net is folded:
                x = x.contiguous(memory_format=torch.channels_last)
            case = (entry.name, size[0], size[1], precision, mode, batch)
            try:
                if device == "cuda":
                    torch.cuda.empty_cache()
                    torch.cuda.reset_peak_memory_stats()
                call = modes[mode](net, x, device, precision.removesuffix("-nchw"))
                seconds = seconds_per_call(call, device, least_s)
                quality = None if net is reference else psnr(expected, as_pixels(entry, call()[:1].float().cpu()))
                peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None
                results.append(KernelResult(*case, seconds * 1e3, seconds * 1e3 / batch, batch / seconds, peak, quality))
            except RuntimeError as error:  # out of memory, or a capture that fails: the row says why
                why = traceback.format_exception_only(error)[-1].strip()
                results.append(KernelResult(*case, None, None, None, None, None, why))
            print(f"  {entry.name} {size[0]}x{size[1]} {precision} {mode} b{batch}: {results[-1].images_per_s or 0:.1f} img/s"
                  f"{' ' + results[-1].error if results[-1].error else ''}", flush=True)  # fmt: skip
    return results


def replica(settings: Settings, device: str, batches: list[int], least_s: float) -> tuple[list[ReplicaResult], str]:
    """ModelRunner.run on `batch` photos at once, as a model replica's forward thread runs a batch."""
    placement = choose_device(device == "cuda", settings.precision)
    results = []
    for registry, name, size in CASES:
        runner = ModelRunner(settings, registry, placement, [name])
        runner.tune(0, 0)
        image, _ = photo(*size)
        for batch in batches:
            seconds = seconds_per_call(functools.partial(runner.run, [(image, name)] * batch), device, least_s)
            results.append(ReplicaResult(name, size[0], size[1], batch, seconds * 1e3, batch / seconds))
            print(f"  replica {name} {size[0]}x{size[1]} b{batch}: {batch / seconds:.1f} img/s", flush=True)
    return results, placement.note


def enough_batch(results: list[ReplicaResult]) -> dict[str, int]:
    found = {}
    for key in dict.fromkeys(f"{r.model} {r.width}x{r.height}" for r in results):
        rows = [r for r in results if f"{r.model} {r.width}x{r.height}" == key]
        best = max(r.images_per_s for r in rows)
        found[key] = min(r.batch for r in rows if r.images_per_s >= ENOUGH * best)
    return found


def cluster_gpu_options() -> dict[str, dict[str, Any]]:
    """Each deployment's options in the GPU cluster's Serve config, less the custom resources that only
    a cluster's worker nodes declare: that cluster's GPU node and CPU workers on one machine."""
    (application,) = yaml.safe_load(CLUSTER_CONFIGS[True].read_text())["applications"]
    options = {}
    for deployment in application["deployments"]:
        found = {option: value for option, value in deployment.items() if option != "name"}
        found["ray_actor_options"] = {k: v for k, v in found["ray_actor_options"].items() if k != "resources"}
        options[deployment["name"]] = found
    return options


def least_cpus(options: dict[str, dict[str, Any]]) -> int:
    """The CPUs every deployment's min_replicas ask for: what the local Ray declares at least, so that
    the app starts on a machine with fewer cores (the CPU check)."""
    asked = sum(o["ray_actor_options"].get("num_cpus", 1) * o["autoscaling_config"]["min_replicas"] for o in options.values())
    return math.ceil(asked)


def serve_on_gpu(settings: Settings, device: str, quick: bool, port: int) -> list[ServedResult]:
    """The app with the GPU cluster config's options; each workload at 1, its model deployment's
    max_batch_size and its max_ongoing_requests requests in flight."""
    options = cluster_gpu_options()
    gpus = torch.cuda.device_count() if device == "cuda" else 1
    results = []
    every = workloads()
    with served(settings, port, options, cpus=max(CORES, least_cpus(options)), gpus=gpus) as url:
        for name in SERVED_WORKLOADS:
            workload = every[name]
            target = url + workload.path
            model = options[workload.deployment]
            levels = [1, model["user_config"]["max_batch_size"], model["max_ongoing_requests"]]
            run_load(target, workload.body, 1, 2)  # warm-up
            for concurrency in [1, 2] if quick else levels:
                run_load(target, workload.body, concurrency, concurrency * SERVED_ROUNDS // 2)
                load = measured(target, workload.body, concurrency, concurrency * SERVED_ROUNDS)
                replicas = {d: running_replicas(d) for d in (workload.deployment, INGRESS)}
                results.append(ServedResult(name, load, replicas))
                print(f"  served {name} c{concurrency}: {load.images_per_s:.1f} img/s, p50 {load.p50_ms:.0f} ms, "
                      f"{load.statuses}, replicas {replicas}", flush=True)  # fmt: skip
    return results


def peak_tflops(device: str, dtype: torch.dtype, side: int = 8192) -> float:
    a, b = (torch.randn(side, side, device=device).to(dtype) for _ in range(2))
    seconds = seconds_per_call(lambda: a @ b, device, 0.5)
    return 2 * side**3 / seconds / 1e12


def print_report(report: GpuReport) -> None:
    console = Console(width=160)
    console.print(f"{report.machine}; peak matmul TFLOP/s: {report.peak_tflops}")
    table = Table(title="kernels: forward alone, input on the device")
    for column in ("model", "size", "precision", "mode", "batch", "ms/batch", "ms/img", "img/s", "peak MiB", "PSNR dB"):
        table.add_column(column, justify="right")
    for k in report.kernels:
        if k.error:
            table.add_row(k.model, f"{k.width}x{k.height}", k.precision, k.mode, str(k.batch), k.error[:60], "", "", "", "")
            continue
        table.add_row(
            k.model, f"{k.width}x{k.height}", k.precision, k.mode, str(k.batch), f"{k.ms_per_batch:.2f}",
            f"{k.ms_per_image:.3f}", f"{k.images_per_s:.0f}", "-" if k.peak_mib is None else f"{k.peak_mib:.0f}",
            "ref" if k.psnr_db is None else f"{k.psnr_db:.1f}",
        )  # fmt: skip
    console.print(table)
    replicas = Table(title=f"replica: ModelRunner.run, uint8 on the host in and out ({report.replica_placement})")
    for column in ("model", "size", "batch", "ms/batch", "img/s"):
        replicas.add_column(column, justify="right")
    for r in report.replica:
        replicas.add_row(r.model, f"{r.width}x{r.height}", str(r.batch), f"{r.ms_per_batch:.1f}", f"{r.images_per_s:.1f}")
    console.print(replicas)
    console.print(f"smallest batch within {ENOUGH:.0%} of the best images/s: {report.enough_batch}")
    if not report.served:
        return
    served_table = Table(title="served: over HTTP, the GPU cluster config's options on this machine")
    for column in ("workload", "conc.", "img/s", "p50 ms", "p95 ms", "statuses", "replicas", "CPU ms/img", "Ingress CPU ms/img"):
        served_table.add_column(column, justify="right")
    for level in report.served:
        load = level.load
        served_table.add_row(
            level.workload, str(load.concurrency), f"{load.images_per_s:.1f}", f"{load.p50_ms:.0f}", f"{load.p95_ms:.0f}",
            str(load.statuses), str(level.replicas), f"{1e3 * sum(load.cpu_s_per_image.values()):.1f}",
            f"{1e3 * load.cpu_s_per_image.get(INGRESS, 0.0):.1f}",
        )  # fmt: skip
    console.print(served_table)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu", description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda", help="cpu: check the code, not measure it")
    parser.add_argument("--quick", action="store_true", help="batches 1 and 2, a short time per row")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the folder the JSON goes to")
    parser.add_argument("--skip-served", action="store_true", help="the kernels and the replica only, without Ray")
    parser.add_argument("--port", type=int, default=PORT)
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("torch sees no CUDA device here; `--device cpu --quick` checks the code on the CPU")
    batches, least_s = ([1, 2], 0.05) if args.quick else (BATCHES, 0.5)
    settings = Settings(random_weights=True)
    machine: dict[str, str | int | bool] = {
        "device": torch.cuda.get_device_name(0) if args.device == "cuda" else platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "cuda": str(torch.version.cuda),
        "cudnn_tf32": bool(torch.backends.cudnn.allow_tf32),
        "quick": bool(args.quick),
    }
    peaks = {"fp32": peak_tflops(args.device, torch.float32), "bf16": peak_tflops(args.device, torch.bfloat16)}
    report = GpuReport(machine, {}, peaks)
    print("kernels: each model's forward alone")
    locations = WeightsLocations(weights_dir=settings.weights_dir)
    for registry, name, size in CASES:
        entry = registry.get(name)
        module, report.weights[name] = load_or_seed(entry, locations)
        report.kernels += kernels(entry, module, size, args.device, batches, least_s)
    print("replica: ModelRunner.run, as a model replica's forward thread runs a batch")
    report.replica, report.replica_placement = replica(settings, args.device, batches, least_s)
    report.enough_batch = enough_batch(report.replica)
    if not args.skip_served:
        print("served: the GPU cluster config's options, over HTTP")
        report.served = serve_on_gpu(settings, args.device, args.quick, args.port)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"gpu-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(asdict(report), indent=2))
    print_report(report)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
