"""The maintenance commands of `toonserve`: fetch and report weights, regenerate the configs and docs."""

from __future__ import annotations

from pathlib import Path

from core.catalogue import DEFAULT_CATALOGUE, load_catalogue
from core.errors import WEIGHTS_INSTALL_HINT
from core.settings import Settings
from core.stages import ModelStage
from models.registry import WeightsEntry
from models.weights import WeightsLocations, WeightsNotFound, load_weights
from toonserve.docs import generated_docs
from toonserve.serve_configs import ROOT, generated_files

__all__ = ["generated_docs", "generated_files", "weights", "write"]


def weighted_entries(catalogue_path: str) -> list[WeightsEntry]:
    """Every weights entry of every model stage the catalogue's effects use."""
    catalogue = load_catalogue(catalogue_path)
    return [entry for stage in catalogue.stages if isinstance(stage, ModelStage) for entry in stage.registry]


def weights_report(entries: list[WeightsEntry], locations: WeightsLocations) -> list[tuple[str, str]]:
    """(name, state) for each entry; downloads where `locations.download` allows.

    Each file is loaded strictly, so that a file without a published hash is checked too;
    a download that fails that check is removed from the cache.
    """
    rows = []
    for entry in entries:
        try:
            loaded = load_weights(entry, locations)
        except WeightsNotFound as error:
            cached = locations.cache_dir / entry.filename if locations.cache_dir is not None else None
            if locations.download and cached is not None and cached.is_file() and entry.git_blob_sha1 is None:
                cached.unlink()
            rows.append((entry.name, f"MISSING: {error}"))
            continue
        source = loaded.source
        rows.append((entry.name, f"{source.origin}{'' if source.verified else ' (unverified)'}: {source.path}"))
    return rows


def write(files: dict[Path, str]) -> int:
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


def weights(*, check: bool) -> int:
    settings = Settings()
    if settings.random_weights:
        print("TOONSERVE_RANDOM_WEIGHTS=1: every model serves SEEDED RANDOM WEIGHTS, for load tests only; no weights are read.")
        return 0
    locations = settings.weights_locations
    if check:
        locations = WeightsLocations(locations.weights_dir, locations.cache_dir, download=False)
    rows = weights_report(weighted_entries(DEFAULT_CATALOGUE), locations)
    width = max(len(name) for name, _ in rows)
    for name, state in rows:
        print(f"  {name:<{width}}  {state}")
    missing = [name for name, state in rows if state.startswith("MISSING")]
    if missing:
        print(
            f"missing weights: {', '.join(missing)}; their endpoints answer 503 weights_missing. Install: {WEIGHTS_INSTALL_HINT}"
        )
    return 1 if missing and not check else 0
