"""Section 1, raw: each model's inference in one process, by variant and batch, and the machine's GEMM peak.

`measure` runs it in a child process started with the model replicas' allocator settings
(core.memory.MODEL_ALLOCATOR), so that served / raw compares the same kernels under the same
malloc; the OpenCV filters are timed in the calling process, as ArtFilters runs them.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from bench.photos import photo
from core.art import FILTERS
from core.device import choose_device
from core.memory import MODEL_ALLOCATOR
from core.settings import Settings
from models.animegan import ANIME_WEIGHTS
from models.registry import WeightsEntry
from models.u2net import U2NET_WEIGHTS
from models.weights import WeightsLocations, WeightsNotFound, for_inference, load_weights, seeded_init

Variant = Literal["fp32-nchw", "fp32-cl", "bf16-cl", "fp32-cl-compiled", "bf16-cl-compiled"]
VARIANTS: tuple[Variant, ...] = get_args(Variant)


def served_variant(settings: Settings) -> Variant:
    """The variant a CPU model replica runs on this machine with `settings`: its precision as the
    replica chooses it (bf16 autocast only where the CPU has bf16 kernels), compiled or not."""
    precision = "bf16" if choose_device(gpu_assigned=False, precision=settings.precision).bf16 else "fp32"
    variant = f"{precision}-cl" + ("-compiled" if settings.compile_models else "")
    return next(v for v in VARIANTS if v == variant)


@dataclass(frozen=True)
class RawResult:
    model: str
    width: int
    height: int
    batch: int
    variant: str
    ms_per_image: float
    images_per_s: float
    gflop_per_image: float | None
    achieved_gflops: float | None
    psnr_db: float | None
    """Against fp32 NCHW on the same weights and pixels; None for the reference itself."""


@dataclass(frozen=True)
class ShapedRate:
    """A model run the way the served replicas run it: `processes` processes at once, each with `threads` threads."""

    model: str
    width: int
    height: int
    processes: int
    threads: int
    images_per_s: float
    """Summed over the processes."""
    variant: str = "bf16-cl"


@dataclass(frozen=True)
class RawReport:
    peak_gflops: dict[str, float]
    weights: dict[str, str]
    models: list[RawResult]
    filters_1920x1080_ms: dict[str, float]
    allocator: dict[str, str]
    """The environment the models ran under."""
    shaped: list[ShapedRate] = field(default_factory=list)
    served_variant: str = "bf16-cl"
    """The variant the served models run on this machine (served_variant); runs before it had no other."""

    def rate(self, model: str, size: tuple[int, int], variant: str) -> float:
        """images/s at batch 1."""
        return next(
            m.images_per_s for m in self.models if (m.model, (m.width, m.height), m.variant, m.batch) == (model, size, variant, 1)
        )


def peak_gflops(dtype: torch.dtype, size: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    torch.mm(a, b)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def forward_flops(module: nn.Module, x: torch.Tensor) -> float:
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        module(x)
    return float(counter.get_total_flops())


def psnr(reference: np.ndarray, other: np.ndarray, peak: float = 255.0) -> float:
    mse = float(np.mean((reference.astype(np.float64) - other.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)


def prepared(module: nn.Module, variant: Variant) -> nn.Module:
    """fp32 NCHW is the module as loaded, the reference; the others run as the service runs them (a
    copy folded for inference, channels_last)."""
    if variant == "fp32-nchw":
        return module.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
    module = for_inference(copy.deepcopy(module)).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    # As the service compiles (core.model_bank); the warm-up pass in `timed` pays the compile.
    return torch.compile(module, dynamic=True) if variant.endswith("-compiled") else module  # type: ignore[return-value]


def timed(module: nn.Module, x: torch.Tensor, variant: Variant, repeats: int) -> tuple[float, torch.Tensor]:
    """Seconds per forward pass (after one warm-up), and the last output in fp32."""
    if variant != "fp32-nchw":
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=variant.startswith("bf16")):
        out = module(x)
        start = time.perf_counter()
        for _ in range(repeats):
            out = module(x)
        elapsed = (time.perf_counter() - start) / repeats
    return elapsed, out.float()


def load_or_seed(entry: WeightsEntry, locations: WeightsLocations) -> tuple[nn.Module, str]:
    try:
        loaded = load_weights(entry, locations)
    except WeightsNotFound:
        return seeded_init(entry.build(), 0), "seeded random"
    return loaded.module, f"{entry.name} ({loaded.source.origin})"


def as_pixels(entry: WeightsEntry, out: torch.Tensor) -> np.ndarray:
    """The first output as the service would have it, in 0..255 for PSNR (a matte's [0, 1] scaled up)."""
    first = entry.transforms.to_output(out)[0]
    return (first * 255.0 if first.is_floating_point() else first).float().numpy()


def _run_model(
    name: str,
    entry: WeightsEntry,
    module: nn.Module,
    sizes: list[tuple[int, int]],
    variants: list[Variant],
    batches: list[int],
    repeats: int,
) -> list[RawResult]:
    results = []
    for width, height in sizes:
        image, _ = photo(width, height)
        x1 = entry.transforms.to_input(torch.from_numpy(image.copy())[None]).contiguous()
        flops = forward_flops(module, x1) / 1e9
        reference: np.ndarray | None = None
        for variant in variants:
            model = prepared(module, variant)
            for batch in batches:
                seconds, out = timed(model, x1.repeat(batch, 1, 1, 1), variant, repeats)
                pixels = as_pixels(entry, out[:1])
                if variant == "fp32-nchw" and batch == 1:
                    reference = pixels
                quality = None if reference is None or variant == "fp32-nchw" else psnr(reference, pixels)
                per_image = seconds / batch
                results.append(
                    RawResult(
                        name, width, height, batch, variant, per_image * 1e3, 1 / per_image, flops, flops / per_image, quality
                    )
                )
    return results


def measured_variants(served: Variant, layouts: tuple[Variant, ...]) -> list[Variant]:
    """The reference, `layouts`, bf16 where this CPU has its kernels (emulated, it is about 10x
    slower than fp32, and no replica runs it), and the variant the service runs."""
    bf16: tuple[Variant, ...] = ("bf16-cl",) if choose_device(gpu_assigned=False).bf16 else ()
    return list(dict.fromkeys(("fp32-nchw", *layouts, *bf16, served)))


def run_models(locations: WeightsLocations, *, quick: bool, threads: int, served: Variant) -> RawReport:
    """Models in this process; the filters and allocator are filled in by `measure`. `served` is the
    variant the service runs here (served_variant)."""
    torch.set_num_threads(threads)
    variants = measured_variants(served, ("fp32-cl",))
    # An emulated bf16 GEMM peak takes minutes and measures nothing a variant here runs.
    precisions = {"fp32": torch.float32} | ({"bf16": torch.bfloat16} if "bf16-cl" in variants else {})
    peaks = {name: peak_gflops(dtype) for name, dtype in precisions.items()}
    repeats = 1 if quick else 3
    batches = [1] if quick else [1, 4]
    results: list[RawResult] = []
    sources: dict[str, str] = {}

    anime = ANIME_WEIGHTS.get(ANIME_WEIGHTS.default)
    generator, sources["anime"] = load_or_seed(anime, locations)
    sources["photo"] = photo(1, 1)[1]
    results += _run_model("anime", anime, generator, [(512, 512), (512, 384)], variants, batches, repeats)
    for name in ("u2netp", "u2net_human_seg"):
        entry = U2NET_WEIGHTS.get(name)
        net, sources[name] = load_or_seed(entry, locations)
        matte_variants = measured_variants(served, ())
        size = entry.transforms.working_size((1, 1))
        results += _run_model(name, entry, net, [size], matte_variants, batches, repeats)
    return RawReport(peaks, sources, results, {}, {}, served_variant=served)


def filters_ms(repeats: int) -> dict[str, float]:
    hd, _ = photo(1920, 1080)
    filters = {}
    for art_filter in FILTERS:
        start = time.perf_counter()
        for _ in range(repeats):
            art_filter.apply(hd, art_filter.params())
        filters[art_filter.name] = (time.perf_counter() - start) / repeats * 1e3
    return filters


SHAPED_MODELS = {
    "anime": (ANIME_WEIGHTS.default, (512, 384)),
    "u2netp": ("u2netp", None),
    "u2net_human_seg": ("u2net_human_seg", None),
}
"""The models the served ratios use: name -> (weights, size; None for the weights' own working size)."""


def _shaped(model: str) -> tuple[WeightsEntry, tuple[int, int]]:
    """A SHAPED_MODELS entry's weights and (width, height)."""
    weights, size = SHAPED_MODELS[model]
    entry = ANIME_WEIGHTS.get(weights) if weights in ANIME_WEIGHTS else U2NET_WEIGHTS.get(weights)
    return entry, size or entry.transforms.working_size((1, 1))


def shaped_rate(
    locations: WeightsLocations, model: str, variant: Variant, processes: int, threads: int, seconds: float
) -> ShapedRate:
    """`processes` children at once, each timing `variant`'s batch-1 forwards for `seconds` after a
    common start, under MODEL_ALLOCATOR: the served replicas' shape without the serving."""
    _, (width, height) = _shaped(model)
    start_at = time.time() + 30.0  # every child loaded and warmed up by then
    with tempfile.TemporaryDirectory() as scratch:
        outputs = [Path(scratch) / f"{i}.json" for i in range(processes)]
        command = [sys.executable, "-m", "bench.raw", "--threads", str(threads), "--shaped", model, "--served", variant]
        command += ["--start-at", str(start_at), "--seconds", str(seconds)]
        if locations.weights_dir is not None:
            command += ["--weights-dir", str(locations.weights_dir)]
        children = [subprocess.Popen([*command, "--out", str(out)], env={**os.environ, **MODEL_ALLOCATOR}) for out in outputs]
        for child in children:
            if child.wait() != 0:
                raise RuntimeError(f"bench.raw --shaped {model} failed")
        rate = sum(json.loads(out.read_text())["images_per_s"] for out in outputs)
    return ShapedRate(model, width, height, processes, threads, rate, variant)


def _shaped_child(
    locations: WeightsLocations, model: str, variant: Variant, threads: int, start_at: float, seconds: float
) -> float:
    torch.set_num_threads(threads)
    entry, (width, height) = _shaped(model)
    module, _ = load_or_seed(entry, locations)
    image, _ = photo(width, height)
    x = entry.transforms.to_input(torch.from_numpy(image.copy())[None]).contiguous(memory_format=torch.channels_last)
    module = prepared(module, variant)
    done = 0
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=variant.startswith("bf16")):
        module(x)
        time.sleep(max(0.0, start_at - time.time()))
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            module(x)
            done += 1
    return done / (time.perf_counter() - start)


def measure(
    locations: WeightsLocations, *, quick: bool, threads: int, served: Variant, shape: tuple[int, int] | None = None
) -> RawReport:
    """The models in a child process under MODEL_ALLOCATOR, then the filters here; with `shape`
    (processes, threads), each served model run that way too in the `served` variant (shaped_rate)."""
    with tempfile.TemporaryDirectory() as scratch:
        output = Path(scratch) / "raw.json"
        command = [sys.executable, "-m", "bench.raw", "--out", str(output), "--threads", str(threads)]
        if locations.weights_dir is not None:
            command += ["--weights-dir", str(locations.weights_dir)]
        options = ["--served", served] + (["--quick"] if quick else [])
        subprocess.run([*command, *options], env={**os.environ, **MODEL_ALLOCATOR}, check=True)
        found = json.loads(output.read_text())
    models = [RawResult(**m) for m in found["models"]]
    seconds = 8.0 if quick else 20.0
    shaped = [shaped_rate(locations, model, served, *shape, seconds) for model in SHAPED_MODELS] if shape else []
    filters = filters_ms(1 if quick else 3)
    return RawReport(found["peak_gflops"], found["weights"], models, filters, MODEL_ALLOCATOR, shaped, served)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.raw", description="the models' raw section, as JSON")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--weights-dir", type=Path)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--served", choices=VARIANTS, required=True, help="the variant the service runs here")
    parser.add_argument("--shaped", choices=list(SHAPED_MODELS), help="one child of shaped_rate")
    parser.add_argument("--start-at", type=float, default=0.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    locations = WeightsLocations(weights_dir=args.weights_dir)
    if args.shaped:
        rate = _shaped_child(locations, args.shaped, args.served, args.threads, args.start_at, args.seconds)
        args.out.write_text(json.dumps({"images_per_s": rate}))
        return
    report = run_models(locations, quick=args.quick, threads=args.threads, served=args.served)
    args.out.write_text(json.dumps(asdict(report)))


if __name__ == "__main__":
    main()
