"""Where weights come from: a user's directory, a cache of verified downloads, or the registry url.

Resolution order, first hit wins:
1. `weights_dir` (TOONSERVE_WEIGHTS_DIR): files under their official names, used as given and
   logged as unverified (a user's own trained weights go here too);
2. `cache_dir`: downloads whose git blob SHA-1 matched the registry (checked again on each load);
3. a download from the registry url into `cache_dir`: progress shown, hash checked before use, written atomically.

A file found nowhere raises WeightsNotFound; the service answers that with 503 and the command that installs it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

import httpx
import torch
from torch import nn
from tqdm import tqdm

from models.registry import WeightsEntry

logger = logging.getLogger(__name__)

Origin = Literal["weights_dir", "cache", "download", "random"]
_CHUNK = 1 << 20
ModuleT = TypeVar("ModuleT", bound=nn.Module)


class WeightsNotFound(Exception):
    """No usable file for a weights entry: missing, failing its hash, or not loading into its architecture."""


@dataclass(frozen=True)
class WeightsLocations:
    weights_dir: Path | None = None
    cache_dir: Path | None = None
    """Verified downloads; None: no cache, and nothing is downloaded."""
    download: bool = False


@dataclass(frozen=True)
class WeightsSource:
    origin: Origin
    path: Path | None
    verified: bool
    detail: str


@dataclass(frozen=True)
class LoadedModel:
    module: nn.Module
    source: WeightsSource


def git_blob_sha1(path: Path) -> str:
    """The hash git gives a file: sha1(b"blob <size>\\0" + bytes)."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def resolve(entry: WeightsEntry, locations: WeightsLocations) -> WeightsSource:
    """Finds the file for `entry`, downloading it if allowed; raises WeightsNotFound otherwise."""
    if locations.weights_dir is not None:
        given = locations.weights_dir / entry.filename
        if given.is_file():
            logger.warning("%s: using %s as given (unverified)", entry.name, given)
            return WeightsSource("weights_dir", given, False, "TOONSERVE_WEIGHTS_DIR, unverified")
    if locations.cache_dir is None:
        raise WeightsNotFound(f"weights {entry.filename!r} for {entry.name!r} not found")
    cached = locations.cache_dir / entry.filename
    if cached.is_file():
        if entry.git_blob_sha1 is None:
            return WeightsSource("cache", cached, False, "cached; upstream publishes no hash")
        if git_blob_sha1(cached) == entry.git_blob_sha1:
            return WeightsSource("cache", cached, True, "cached, git blob SHA-1 matches")
        logger.error("%s: cached file %s fails its hash; ignoring it", entry.name, cached)
    if locations.download:
        try:
            path = download(entry, locations.cache_dir)
        except (httpx.HTTPError, OSError, ValueError) as error:
            logger.error("%s: download from %s failed: %s", entry.name, entry.url, error)
        else:
            verified = entry.git_blob_sha1 is not None
            detail = "downloaded, hash checked" if verified else "downloaded; upstream publishes no hash"
            return WeightsSource("download", path, verified, detail)
    raise WeightsNotFound(f"weights {entry.filename!r} for {entry.name!r} not found")


def download(entry: WeightsEntry, cache_dir: Path, *, progress: bool = True) -> Path:
    """Downloads into `cache_dir` atomically; a file failing its hash never lands there."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / entry.filename
    fd, tmp_name = tempfile.mkstemp(dir=cache_dir, prefix=f".{entry.filename}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, httpx.stream("GET", entry.url, follow_redirects=True, timeout=30.0) as response:
            response.raise_for_status()
            total = int(response.headers.get("content-length", 0)) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=entry.filename, disable=not progress) as bar:
                for chunk in response.iter_bytes(_CHUNK):
                    out.write(chunk)
                    bar.update(len(chunk))
        if entry.git_blob_sha1 is not None:
            actual = git_blob_sha1(tmp)
            if actual != entry.git_blob_sha1:
                raise ValueError(f"{entry.filename}: git blob SHA-1 {actual} != expected {entry.git_blob_sha1}")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Reads a checkpoint saved as a bare state_dict; tensors only (weights_only), on the CPU."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsNotFound(f"{path} is not a state_dict of tensors")
    return state


def load_weights(entry: WeightsEntry, locations: WeightsLocations) -> LoadedModel:
    """Builds the entry's module, resolves its file and loads it strictly: every key present, every shape equal."""
    source = resolve(entry, locations)
    checkpoint = source.path
    if checkpoint is None:
        raise WeightsNotFound(f"{entry.name}: resolved without a file")
    module = entry.build()
    try:
        module.load_state_dict(read_state_dict(checkpoint), strict=True)
    except (RuntimeError, OSError, EOFError) as error:
        raise WeightsNotFound(f"{checkpoint} does not load into {entry.architecture}: {error}") from error
    return LoadedModel(module.eval(), source)


def for_inference(module: ModuleT) -> ModuleT:
    """Folds, in place, what a module can fold once its weights are fixed (its layers' `fold_batch_norm`):
    after loading, before any forward pass; its state_dict no longer has the checkpoint's keys."""
    for layer in list(module.modules()):
        fold = getattr(layer, "fold_batch_norm", None)
        if callable(fold):
            fold()
    return module


def seeded_init(module: ModuleT, seed: int) -> ModuleT:
    """Deterministic random weights, with norm statistics perturbed so that a strict load is observable."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if not tensor.is_floating_point():
                continue
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            elif name.endswith("running_mean"):
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.1)
            elif tensor.dim() == 1 and name.endswith("weight"):
                tensor.copy_(1.0 + torch.randn(tensor.shape, generator=generator) * 0.1)
            else:
                fan_in = max(1, tensor[0].numel()) if tensor.dim() > 1 else 1
                scale = 1.0 if tensor.dim() > 1 else 0.1
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * scale / fan_in**0.5)
    return module.eval()


def random_weights(entry: WeightsEntry, seed: int) -> LoadedModel:
    source = WeightsSource("random", None, False, "SEEDED RANDOM WEIGHTS (TOONSERVE_RANDOM_WEIGHTS=1): load tests only")
    logger.warning("%s: serving %s", entry.name, source.detail)
    return LoadedModel(seeded_init(entry.build(), seed), source)
