"""Which torch device a replica computes on, and an honest sentence saying why."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Placement:
    device: str
    gpu_assigned: bool
    note: str


def choose_device(gpu_assigned: bool) -> Placement:
    """CUDA when torch sees one; otherwise the CPU, saying so when the scheduler promised a GPU."""
    if torch.cuda.is_available():
        return Placement("cuda", gpu_assigned, f"cuda ({torch.cuda.get_device_name(0)})")
    if gpu_assigned:
        return Placement("cpu", True, "a GPU was assigned to this replica but torch sees none: serving on the CPU")
    return Placement("cpu", False, "cpu")
