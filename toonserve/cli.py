"""`python -m toonserve.cli weights|build-config`: fetch weights, report them, regenerate the Serve configs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from torch import nn

from core.errors import WeightsMissing
from core.models import weights_locations
from core.settings import WEIGHTS_INSTALL_HINT, Settings
from models.animegan import ANIME_WEIGHTS, AnimeGenerator
from models.registry import WeightsEntry
from models.u2net import ARCHITECTURES, U2NET_WEIGHTS
from models.weights import WeightsLocations, load_weights
from toonserve.serve_configs import ROOT, generated_files


def _architectures() -> list[tuple[WeightsEntry, Callable[[], nn.Module]]]:
    return [(e, AnimeGenerator) for e in ANIME_WEIGHTS] + [(e, ARCHITECTURES[e.architecture]) for e in U2NET_WEIGHTS]


def weights_report(locations: WeightsLocations) -> list[tuple[str, str]]:
    """(name, state) for every registered model; downloads where `locations.download` allows.

    Each file is loaded strictly, so that a file without a published hash is checked too;
    a download that fails that check is removed from the cache.
    """
    rows = []
    for entry, build in _architectures():
        try:
            loaded = load_weights(build(), entry, locations)
        except WeightsMissing as error:
            cached = locations.cache_dir / entry.filename
            if locations.download and cached.is_file() and entry.git_blob_sha1 is None:
                cached.unlink()
            rows.append((entry.name, f"MISSING: {error.message}"))
            continue
        source = loaded.source
        rows.append((entry.name, f"{source.origin}{'' if source.verified else ' (unverified)'}: {source.path}"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="toonserve")
    commands = parser.add_subparsers(dest="command", required=True)
    weights = commands.add_parser("weights", help="fetch every model's weights and report where each comes from")
    weights.add_argument("--check", action="store_true", help="report only; download nothing")
    commands.add_parser("build-config", help="write the local and cluster Serve configs and the KubeRay manifest")
    args = parser.parse_args(argv)

    if args.command == "build-config":
        for path, text in generated_files().items():
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
        return 0
    settings = Settings.from_env()
    if settings.random_weights:
        print("TOONSERVE_RANDOM_WEIGHTS=1: every model serves SEEDED RANDOM WEIGHTS, for load tests only; no weights are read.")
        return 0
    locations = weights_locations(settings)
    if args.check:
        locations = WeightsLocations(locations.weights_dir, locations.cache_dir, download=False)
    rows = weights_report(locations)
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
