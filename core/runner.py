"""A model stage's plain worker: every model of a registry loaded at start, batches run grouped by model and shape."""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

from core import imaging, tiles
from core.device import Placement, default_threads, use_threads
from core.errors import WEIGHTS_INSTALL_HINT, InvalidImage, InvalidParameter, ToonError, WeightsMissing
from core.imaging import DEFAULT_MAX_SIDE
from core.memory import DeferredRelease
from core.settings import Settings
from core.tiles import MAX_WORKING_SIDE
from models import tiling
from models.names import UnknownName
from models.registry import Registry, WeightsEntry
from models.transforms import fit_within
from models.weights import LoadedModel, WeightsNotFound, for_inference, load_weights, random_weights

logger = logging.getLogger(__name__)

BUCKET = 32
"""Working sizes that keep their aspect round up to multiples of this, so photos of similar aspect share a forward pass."""

ModelItem = tuple[np.ndarray, str]
"""(RGB uint8 HWC at the model's working size, model name)."""
Outcome = tuple[np.ndarray, int] | ToonError
"""A batched item's result, (output, size of the group it ran in), or its own error."""
GroupKey = tuple[str, tuple[int, int]]
ItemT = TypeVar("ItemT")
KeyT = TypeVar("KeyT", bound=Hashable)


@dataclass(frozen=True)
class ModelState:
    """What a model stage reports about each model: for /readyz and /v1/effects."""

    name: str
    loaded: bool
    origin: str | None  # weights_dir, cache, download, random; None when missing
    verified: bool
    detail: str
    device: str


def bucket_shape(height: int, width: int) -> tuple[int, int]:
    return max(BUCKET, math.ceil(height / BUCKET) * BUCKET), max(BUCKET, math.ceil(width / BUCKET) * BUCKET)


def pad_to(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Mirror-pads bottom and right; 'symmetric' works even where the pad exceeds the image."""
    height, width = image.shape[:2]
    return np.pad(image, ((0, shape[0] - height), (0, shape[1] - width), (0, 0)), mode="symmetric")


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


class ModelRunner:
    """The registry's models that could be loaded, on the placement's device; `run` takes mixed batches."""

    def __init__(
        self, settings: Settings, registry: Registry[WeightsEntry], placement: Placement, names: Sequence[str] | None = None
    ) -> None:
        """Loads `names` (every model of the registry by default); the others answer WeightsMissing."""
        self.registry = registry
        self.placement = placement
        self.loaded: dict[str, LoadedModel] = {}
        self.missing: dict[str, str] = {}
        for seed, entry in enumerate(registry.get(name) for name in (registry.names() if names is None else names)):
            try:
                model = (
                    random_weights(entry, seed) if settings.random_weights else load_weights(entry, settings.weights_locations)
                )
            except WeightsNotFound as error:
                logger.warning("%s %s unavailable: %s", registry.kind, entry.name, error)
                self.missing[entry.name] = f"{error}; install it with: {WEIGHTS_INSTALL_HINT}"
                continue
            for_inference(model.module)
            # Module.to takes memory_format (documented, and done at runtime); torch's stubs omit it.
            model.module.to(torch.device(placement.device), memory_format=torch.channels_last)  # type: ignore[call-overload]
            self.loaded[entry.name] = model
        self.compiled: dict[str, Callable[..., torch.Tensor]] = {}
        if settings.compile_models:
            # Dynamic shapes where inputs vary, so that a photo of a new shape does not wait for a
            # recompile; modules of one class share the compiled code.
            self.compiled = {
                name: torch.compile(model.module, dynamic=registry.get(name).transforms.fixed_size is None)
                for name, model in self.loaded.items()
            }
        self.forward_batch = placement.forward_batch
        self.threads = default_threads(placement.cpus)
        self.tile_side = settings.tile_side
        self.large_memory = DeferredRelease()

    def tune(self, forward_batch: int, threads: int) -> None:
        """0 means automatic: the placement's forward batch and default_threads."""
        self.forward_batch = forward_batch or self.placement.forward_batch
        self.threads = threads or default_threads(self.placement.cpus)

    def warm_up(self) -> None:
        """One pass per loaded model. Where sizes vary, height and width differ from each other and from
        every channel count: torch.compile gives equal dimensions one symbol, so a square warm-up would
        leave the first non-square photo a recompile."""
        self.run([(np.zeros((*self._example_shape(name), 3), np.uint8), name) for name in self.loaded])

    def _example_shape(self, name: str) -> tuple[int, int]:
        fixed = self.registry.get(name).transforms.fixed_size
        return (fixed[1], fixed[0]) if fixed is not None else (3 * BUCKET, 5 * BUCKET)

    def states(self) -> list[ModelState]:
        device = self.placement.note + ("; torch.compile" if self.compiled else "")
        states = [
            ModelState(n, True, m.source.origin, m.source.verified, m.source.detail, device) for n, m in self.loaded.items()
        ]
        return states + [ModelState(n, False, None, False, why, device) for n, why in self.missing.items()]

    def run(self, items: list[ModelItem]) -> list[Outcome]:
        """One outcome per item, in order; a bad item or a failed group fails alone."""
        use_threads(self.threads)
        with self.large_memory.lock:
            outcomes = run_grouped(items, self._key, self._forward, self.forward_batch)
        # A forward's freed memory stays for the next one (core.memory.MODEL_ALLOCATOR); past the
        # default output's size that is gigabytes, kept only while large forwards keep coming.
        if any(max(getattr(image, "shape", ())[:2], default=0) > DEFAULT_MAX_SIDE for image, _ in items):
            self.large_memory.arm()
        return outcomes

    def _entry(self, name: str) -> WeightsEntry:
        """The loaded model's entry; InvalidParameter for an unknown name, WeightsMissing for an unloaded one."""
        try:
            entry = self.registry.get(name)
        except UnknownName as error:
            raise InvalidParameter(error.message) from None
        if name not in self.loaded:
            raise WeightsMissing(self.missing.get(name, f"{self.registry.kind} {name!r} is not loaded on this replica"))
        return entry

    def _key(self, item: ModelItem) -> GroupKey:
        image, name = item
        fixed = self._entry(name).transforms.fixed_size
        if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3):
            raise InvalidImage(f"{self.registry.kind} input must be RGB uint8 HWC")
        height, width = image.shape[:2]
        if fixed is not None:
            if (width, height) != fixed:
                raise InvalidImage(f"{self.registry.kind} input must be {fixed[0]}x{fixed[1]}, not {width}x{height}")
            return name, (height, width)
        if min(height, width) < 1 or max(height, width) > MAX_WORKING_SIDE:
            raise InvalidImage(f"{self.registry.kind} input {width}x{height} is outside 1..{MAX_WORKING_SIDE} px")
        return name, bucket_shape(height, width)

    def _forward(self, key: GroupKey, items: list[ModelItem]) -> list[np.ndarray]:
        name, shape = key
        images = [image for image, _ in items]
        if max(shape) > self.tile_side:
            return [self._tiled(name, image) for image in images]
        return self._batch(name, self.compiled.get(name, self.loaded[name].module), images, shape)

    def _batch(
        self, name: str, forward: Callable[..., torch.Tensor], images: list[np.ndarray], shape: tuple[int, int]
    ) -> list[np.ndarray]:
        """The images padded to `shape` and run as one batch; each output cropped back to its image's size."""
        transforms = self.registry.get(name).transforms
        batch = torch.from_numpy(np.stack([pad_to(image, shape) for image in images])).to(torch.device(self.placement.device))
        with self.placement.inference():
            outputs = transforms.to_output(forward(transforms.to_input(batch))).cpu().numpy()
        return [np.ascontiguousarray(out[: image.shape[0], : image.shape[1]]) for out, image in zip(outputs, images, strict=True)]

    def _tiled(self, name: str, image: np.ndarray) -> np.ndarray:
        """One image past the tile side, in overlapping tiles one after another (core/tiles.py), each
        normalised by the statistics of the whole image at about the tile side, and told its place
        in the image (models/tiling.py)."""
        module = self.loaded[name].module
        height, width = image.shape[:2]
        small = imaging.resize(image, fit_within((width, height), self.tile_side + tiles.OVERLAP))
        with tiling.recording(module) as statistics:
            self._batch(name, module, [small], bucket_shape(*small.shape[:2]))
        layout = tiles.plan(height, width, self.tile_side, self.registry.get(name).transforms.stride)
        whole = bucket_shape(height, width)
        outputs = []
        with tiling.applying(module, statistics):
            for tile in layout:
                part = tile.crop(image)
                with tiling.as_tile(module, tiling.Placed((tile.rows.start, tile.columns.start), whole)):
                    outputs.append(self._batch(name, module, [part], bucket_shape(*part.shape[:2]))[0])
        return tiles.blend(layout, outputs)
