"""Where and how a replica computes: its torch device, its precision, and an honest sentence saying why."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from core.settings import Precision


@dataclass(frozen=True)
class Placement:
    device: str
    gpu_assigned: bool
    note: str
    bf16: bool
    """Autocast to bfloat16; weights stay fp32, the outputs are compared with fp32 in the tests."""
    cpus: float = 0.0
    """The CPUs the scheduler gave this replica (0: unknown)."""

    @contextlib.contextmanager
    def inference(self) -> Iterator[None]:
        with torch.inference_mode(), torch.autocast(self.device, dtype=torch.bfloat16, enabled=self.bf16):
            yield

    @property
    def forward_batch(self) -> int:
        """Images per forward pass by default: on a CPU, larger forwards save a one-thread replica nothing
        (docs/performance.md, levers)."""
        return 1 if self.device == "cpu" else 64


def available_cores() -> int:
    return len(os.sched_getaffinity(0))


def default_threads(cpus: float) -> int:
    """Torch threads when none are configured. A replica given whole CPUs uses that many: on a
    cluster node it shares the cores with replicas sized the same way, and more threads than its
    share only oversubscribe them. A replica given a fraction of a CPU (a laptop's local config)
    uses every core it may run on: one thread would leave the laptop's other cores idle."""
    return min(int(cpus), available_cores()) if cpus >= 1 else available_cores()


def use_threads(count: int) -> None:
    """Sets torch's intra-op threads for the calling thread.

    OpenMP keeps the count per thread: a thread that has already run torch ignores a
    set_num_threads made on another one, and Ray starts a fractional-CPU replica with
    OMP_NUM_THREADS=1. So the thread that runs the forward pass sets it, every batch.
    """
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)


def _bf16_supported(device: str) -> bool:
    if device == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def choose_device(gpu_assigned: bool, precision: Precision = "auto", cpus: float = 0.0) -> Placement:
    """CUDA when torch sees one; otherwise the CPU, saying so when the scheduler promised a GPU."""
    if torch.cuda.is_available():
        device, where = "cuda", f"cuda ({torch.cuda.get_device_name(0)})"
    elif gpu_assigned:
        device, where = "cpu", "a GPU was assigned to this replica but torch sees none: serving on the CPU"
    else:
        device, where = "cpu", "cpu"
    bf16 = precision == "bf16" or (precision == "auto" and _bf16_supported(device))
    return Placement(device, gpu_assigned, f"{where}; {'bf16 autocast' if bf16 else 'fp32'}, channels_last", bf16, cpus)
