"""Batch settings that may change while running: a deployment's `user_config`."""

from __future__ import annotations

from typing import Protocol

import ray
from pydantic import BaseModel, ConfigDict, Field


class BatchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_batch_size: int = Field(4, ge=1, le=64)
    batch_wait_timeout_s: float = Field(0.01, ge=0.0, le=5.0)
    threads: int = Field(
        1,
        ge=0,
        le=256,
        description="torch threads of the forward thread; 1 runs no OpenMP parallel regions, and more replicas "
        "use more cores; 0: the replica's whole CPUs, or every core for a fraction",
    )
    forward_batch: int = Field(0, ge=0, le=256, description="images per forward pass; 0: 1 on CPU, the whole batch on GPU")


class BatchTunable(Protocol):
    """A method decorated with `@serve.batch`: Serve attaches these setters to it."""

    def set_max_batch_size(self, new_max_batch_size: int) -> None: ...

    def set_batch_wait_timeout_s(self, new_batch_wait_timeout_s: float) -> None: ...


def apply_batch_config(batched: BatchTunable, user_config: dict[str, object]) -> BatchConfig:
    config = BatchConfig.model_validate(user_config)
    batched.set_max_batch_size(config.max_batch_size)
    batched.set_batch_wait_timeout_s(config.batch_wait_timeout_s)
    return config


def replica_cpus() -> float:
    """The CPUs Ray assigned to the calling replica."""
    return float(ray.get_runtime_context().get_assigned_resources().get("CPU", 0.0))
