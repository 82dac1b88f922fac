"""What the model deployments share: models loaded by name at start, and batches run in groups."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np
import torch
from torch import nn

from core.device import Placement, default_threads, use_threads
from core.errors import InvalidParameter, ToonError, WeightsMissing
from core.models import ModelState, weights_locations
from core.settings import Settings
from models.registry import Registry, WeightsEntry
from models.weights import LoadedModel, load_weights, random_weights

logger = logging.getLogger(__name__)

ModuleT = TypeVar("ModuleT", bound=nn.Module)
ItemT = TypeVar("ItemT")
KeyT = TypeVar("KeyT", bound=Hashable)

Outcome = tuple[np.ndarray, int] | ToonError
"""A batched item's result, (output, size of the group it ran in), or its own error."""


@dataclass(frozen=True)
class ModelBank(Generic[ModuleT]):
    """The registry's models that could be loaded, on the placement's device, and why the others could not."""

    registry: Registry
    placement: Placement
    loaded: dict[str, LoadedModel[ModuleT]]
    missing: dict[str, str]
    compiled: dict[str, Callable[..., torch.Tensor]] = field(default_factory=dict)
    """torch.compile'd forwards by name, where Settings.compile_models asks for them."""

    @classmethod
    def load(
        cls,
        settings: Settings,
        registry: Registry,
        names: list[str],
        build: Callable[[WeightsEntry], ModuleT],
        placement: Placement,
        dynamic: bool | None = None,
    ) -> ModelBank[ModuleT]:
        """`dynamic` goes to torch.compile: True where input shapes vary, so that a new shape does
        not recompile (about 30 s on 2 cores) while a request waits."""
        loaded: dict[str, LoadedModel[ModuleT]] = {}
        missing: dict[str, str] = {}
        locations = weights_locations(settings)
        for seed, name in enumerate(names):
            entry = registry.get(name)
            try:
                model = (
                    random_weights(build(entry), seed)
                    if settings.random_weights
                    else load_weights(build(entry), entry, locations)
                )
            except WeightsMissing as error:
                logger.warning("%s %s unavailable: %s", registry.kind, name, error)
                missing[name] = error.message
                continue
            # Module.to takes memory_format (documented, and done at runtime); torch's stubs omit it.
            model.module.to(torch.device(placement.device), memory_format=torch.channels_last)  # type: ignore[call-overload]
            loaded[name] = model
        compiled = {}
        if settings.compile_models:
            # Modules of one class share the compiled code: the second style compiles in a fraction of a second.
            compiled = {name: torch.compile(model.module, dynamic=dynamic) for name, model in loaded.items()}
        return cls(registry, placement, loaded, missing, compiled)

    def get(self, name: str) -> ModuleT:
        """The loaded module; InvalidParameter for an unknown name, WeightsMissing for an unloaded one."""
        if name not in self.registry:
            raise InvalidParameter(f"unknown {self.registry.kind} {name!r}; known: {', '.join(self.registry.names())}")
        if name not in self.loaded:
            raise WeightsMissing(self.missing.get(name, f"{self.registry.kind} {name!r} is not loaded on this replica"))
        return self.loaded[name].module

    def forward(self, name: str) -> Callable[..., torch.Tensor]:
        """What runs the named model: its compiled forward, or the module itself."""
        module = self.get(name)
        return self.compiled.get(name, module)

    def states(self) -> list[ModelState]:
        device = self.placement.note + ("; torch.compile" if self.compiled else "")
        states = [
            ModelState(n, True, m.source.origin, m.source.verified, m.source.detail, device) for n, m in self.loaded.items()
        ]
        return states + [ModelState(n, False, None, False, why, device) for n, why in self.missing.items()]


def run_grouped(
    items: Sequence[ItemT],
    key_of: Callable[[ItemT], KeyT],
    forward: Callable[[KeyT, list[ItemT]], Sequence[np.ndarray]],
    forward_batch: int,
) -> list[Outcome]:
    """Runs `forward` on the items sharing a key, `forward_batch` at a time, keeping the items' order.

    The size reported with each output is its group's. `key_of` validates an item and raises a
    ToonError for a bad one: that item fails alone, and so does a group whose forward pass fails.
    """
    outcomes: list[Outcome] = [ToonError("not processed")] * len(items)
    groups: dict[KeyT, list[int]] = defaultdict(list)
    for index, item in enumerate(items):
        try:
            groups[key_of(item)].append(index)
        except ToonError as error:
            outcomes[index] = error
    for key, indices in groups.items():
        try:
            outputs = [
                output
                for start in range(0, len(indices), forward_batch)
                for output in forward(key, [items[i] for i in indices[start : start + forward_batch]])
            ]
        except RuntimeError as error:
            logger.exception("forward pass failed for a group of %d", len(indices))
            for i in indices:
                outcomes[i] = ToonError(f"inference failed: {error}")
            continue
        for i, output in zip(indices, outputs, strict=True):
            outcomes[i] = (output, len(indices))
    return outcomes


class BankRunner(ABC, Generic[ModuleT, ItemT, KeyT]):
    """A model deployment's plain worker: a ModelBank, how it runs a batch, and the knobs for that."""

    def __init__(self, bank: ModelBank[ModuleT]) -> None:
        self.bank = bank
        self.forward_batch = bank.placement.forward_batch
        self.threads = default_threads(bank.placement.cpus)

    def tune(self, forward_batch: int, threads: int) -> None:
        """0 means automatic: the placement's forward batch and default_threads."""
        self.forward_batch = forward_batch or self.bank.placement.forward_batch
        self.threads = threads or default_threads(self.bank.placement.cpus)

    def states(self) -> list[ModelState]:
        return self.bank.states()

    def run(self, items: list[ItemT]) -> list[Outcome]:
        """One outcome per item, in order; a bad item or a failed group fails alone."""
        use_threads(self.threads)
        return run_grouped(items, self._key, self._forward, self.forward_batch)

    @abstractmethod
    def _key(self, item: ItemT) -> KeyT:
        """Validates one item (raising a ToonError) and names the group it can share a forward pass with."""

    @abstractmethod
    def _forward(self, key: KeyT, items: list[ItemT]) -> list[np.ndarray]:
        """One output per item of a group."""
