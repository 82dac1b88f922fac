"""The `toonserve` command: convert photos with a running service, list its effects, fetch weights, regenerate files."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from core.keys import new_key, stored_line
from deployments.environment import NODE_ENV
from models.names import UnknownName
from toonserve.client import KEY_ENV
from toonserve.convert import (
    PHOTO_SUFFIXES,
    ServiceUnavailable,
    admitted_at_once,
    check_parameters,
    collect,
    convert,
    effect_of,
    read_effects,
)

DEFAULT_URL = "http://127.0.0.1:8000"
LOCAL_ENV = {
    **NODE_ENV,
    # Ray binds its servers to the node's address: the machine's outward one on Linux, unless Ray is
    # told this is no cluster, when it is 127.0.0.1 and nothing of Ray listens beyond loopback.
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
}


def _choices(schema: dict[str, Any]) -> list[str] | None:
    """An enum parameter's values, where nothing else (a colour) is allowed too."""
    if "enum" in schema:
        return [str(v) for v in schema["enum"]]
    options = schema.get("anyOf", [])
    listed = [option["enum"] for option in options if "enum" in option]
    return [str(v) for v in listed[0]] if listed and all("enum" in o or o.get("type") == "null" for o in options) else None


def effect_parameters(name: str, effect: dict[str, Any]) -> argparse.ArgumentParser:
    """A flag per parameter of the effect, named as in the query with dashes; the service checks the values."""
    parser = argparse.ArgumentParser(prog=f"toonserve convert --effect {name}", add_help=False)
    for parameter, schema in effect["parameters"].items():
        parser.add_argument(
            "--" + parameter.replace("_", "-"), dest=parameter, choices=_choices(schema), help=schema.get("description")
        )
    return parser


def run_convert(args: argparse.Namespace, rest: list[str]) -> int:
    url = args.url.rstrip("/")
    try:
        effect = effect_of(read_effects(url, args.key), args.effect)
    except (ServiceUnavailable, UnknownName) as error:
        print(f"toonserve convert: {error}", file=sys.stderr)
        return 2
    given = {k: v for k, v in vars(effect_parameters(args.effect, effect).parse_args(rest)).items() if v is not None}
    path = effect["path"] + (f"?{urlencode(given)}" if given else "")
    try:
        check_parameters(url, path, args.key)
    except ValueError as error:
        print(f"toonserve convert: bad parameters: {error}", file=sys.stderr)
        return 2
    photos = collect(args.inputs)
    if not photos:
        print(
            f"toonserve convert: no photos ({', '.join(sorted(PHOTO_SUFFIXES))}) in {', '.join(map(str, args.inputs))}",
            file=sys.stderr,
        )
        return 2
    concurrency = args.concurrency or admitted_at_once(url, args.key)
    summary = asyncio.run(
        convert(url, path, effect["returns"], photos, args.out, force=args.force, concurrency=concurrency, key=args.key)
    )
    print("\n".join(summary.lines()))
    return 1 if summary.failed else 0


def run_effects(url: str, key: str | None) -> int:
    try:
        described = read_effects(url.rstrip("/"), key)
    except ServiceUnavailable as error:
        print(f"toonserve effects: {error}", file=sys.stderr)
        return 2
    for name, effect in described.items():
        state = "" if effect["available"] else "  (its model is not installed)"
        print(f"{name}  {effect['path']}{state}\n  {effect['summary']}")
        for parameter, schema in effect["parameters"].items():
            values = _choices(schema) or [
                f"{schema.get('minimum', '')}..{schema.get('maximum', '')}".strip(".") or schema.get("type", "")
            ]
            print(f"  --{parameter.replace('_', '-')}  {' | '.join(map(str, values))}  (default {schema.get('default')})")
        for preset, about in effect["presets"].items():
            print(f"  preset {preset}: {about['summary']}")
        print()
    return 0


def with_key(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--key",
        default=os.environ.get(KEY_ENV),
        help=f"the API key, where the service needs one (default: ${KEY_ENV})",
    )


def run_keys(name: str) -> int:
    key = new_key()
    try:
        line = stored_line(name, key)
    except ValueError as error:
        print(f"toonserve keys: {error}", file=sys.stderr)
        return 2
    print(f"key (give it to its user; it is shown only now):\n  {key}")
    print(f"stored line (add it to TOONSERVE_API_KEYS_FILE, or comma-separated to TOONSERVE_API_KEYS):\n  {line}")
    return 0


def run_serve(config_path: str, model_replicas: int | None) -> int:
    """`serve run` on a copy of the config sized to this machine; it never returns."""
    # Here, not at the top: the other commands start without loading torch and Ray.
    import yaml

    from core.device import available_cores
    from toonserve.serve_configs import sized_to_machine

    replicas = model_replicas or available_cores()
    config = sized_to_machine(yaml.safe_load(Path(config_path).read_text()), replicas)
    text = yaml.safe_dump(config, sort_keys=False)
    # Named by its content: nothing is left to delete it after the exec, so a rerun reuses the file.
    sized = Path(tempfile.gettempdir()) / f"toonserve-{hashlib.sha256(text.encode()).hexdigest()[:16]}.yaml"
    sized.write_text(text)
    print(f"toonserve: AnimeGAN and Matting each grow to {replicas} replicas of one torch thread", flush=True)
    serve = Path(sys.executable).parent / "serve"
    os.execve(serve, [str(serve), "run", str(sized)], {**os.environ, **LOCAL_ENV})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="toonserve")
    commands = parser.add_subparsers(dest="command", required=True)
    converting = commands.add_parser(
        "convert",
        help="send photos and folders (recursively) through one effect of a running service",
        epilog="Each effect's own parameters are flags too (--style, --preset, --sigma-s, ...): `toonserve effects` lists them.",
    )
    converting.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="photos, and folders searched recursively")
    converting.add_argument("--effect", required=True, help="anime, watercolor, matte, portrait, ... (`toonserve effects`)")
    converting.add_argument("--out", required=True, type=Path, help="the folder to write into, keeping the inputs' folder tree")
    converting.add_argument("--url", default=DEFAULT_URL, help=f"the service (default {DEFAULT_URL})")
    with_key(converting)
    converting.add_argument("--force", action="store_true", help="convert again photos whose results exist")
    converting.add_argument("--concurrency", type=int, help="requests in flight (default: what the service holds at once)")
    listing = commands.add_parser("effects", help="list a running service's effects, their parameters and presets")
    listing.add_argument("--url", default=DEFAULT_URL)
    with_key(listing)
    keys = commands.add_parser("keys", help="make an API key: the key once, and the line the service stores (its hash)")
    keys.add_argument("name", help="a name for the key: its rate bucket and its log lines")
    weights = commands.add_parser(
        "weights", help="fetch the weights of every model the effects use, and report where each comes from"
    )
    weights.add_argument("--check", action="store_true", help="report only; download nothing")
    serving = commands.add_parser("serve", help="serve on a local Ray that listens on loopback only (what `make run` runs)")
    serving.add_argument("config", nargs="?", default="serve_config.yaml", help="the Serve config (default serve_config.yaml)")
    serving.add_argument(
        "--model-replicas",
        type=int,
        help="the most replicas AnimeGAN and Matting each grow to (default: this machine's cores)",
    )
    commands.add_parser(
        "build-config", help="write the local and cluster Serve configs, the KubeRay manifest and the Grafana dashboard"
    )
    commands.add_parser("build-docs", help="write docs/effects.md and docs/configuration.md from the code")
    args, rest = parser.parse_known_args(argv)
    if args.command == "convert":
        return run_convert(args, rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "effects":
        return run_effects(args.url, args.key)
    if args.command == "keys":
        return run_keys(args.name)
    # The other commands load the catalogue, and with it torch (a second): convert and effects talk HTTP only.
    from toonserve import maintain

    if args.command == "serve":
        maintain.weights(check=True)
        return run_serve(args.config, args.model_replicas)
    if args.command == "build-config":
        return maintain.write(maintain.generated_files())
    if args.command == "build-docs":
        return maintain.write(maintain.generated_docs())
    return maintain.weights(check=args.check)


if __name__ == "__main__":
    sys.exit(main())
