"""`python -m toonserve.cli weights|build-config|build-docs`: fetch weights, report them, regenerate the configs and docs."""

from __future__ import annotations

import argparse
import sys

from core.catalogue import DEFAULT_CATALOGUE, load_catalogue
from core.errors import WEIGHTS_INSTALL_HINT
from core.settings import Settings
from core.stages import ModelStage
from models.registry import WeightsEntry
from models.weights import WeightsLocations, WeightsNotFound, load_weights
from toonserve.docs import generated_docs
from toonserve.serve_configs import ROOT, generated_files


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="toonserve")
    commands = parser.add_subparsers(dest="command", required=True)
    weights = commands.add_parser(
        "weights", help="fetch the weights of every model the effects use, and report where each comes from"
    )
    weights.add_argument("--check", action="store_true", help="report only; download nothing")
    commands.add_parser("build-config", help="write the local and cluster Serve configs and the KubeRay manifest")
    commands.add_parser("build-docs", help="write docs/effects.md and docs/configuration.md from the code")
    args = parser.parse_args(argv)

    if args.command == "build-config":
        for path, text in generated_files().items():
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
        return 0
    if args.command == "build-docs":
        for path, text in generated_docs().items():
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
        return 0
    settings = Settings()
    if settings.random_weights:
        print("TOONSERVE_RANDOM_WEIGHTS=1: every model serves SEEDED RANDOM WEIGHTS, for load tests only; no weights are read.")
        return 0
    locations = settings.weights_locations
    if args.check:
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
    return 1 if missing and not args.check else 0


if __name__ == "__main__":
    sys.exit(main())
