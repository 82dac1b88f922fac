"""The pages of docs/ written from the code: effects.md from the catalogue, configuration.md from the settings.

`make docs` rewrites them; a test fails when a committed page differs from what this writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.catalogue import DEFAULT_CATALOGUE, Catalogue, Effect, load_catalogue
from core.settings import Settings, env_name
from core.stages import ModelStage

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _kind(schema: dict[str, Any]) -> str:
    """A parameter's type and bounds, in words."""
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    if "anyOf" in schema:
        return " or ".join(_kind(option) for option in schema["anyOf"] if option.get("type") != "null")
    if "pattern" in schema:
        return "colour `RRGGBB`"
    low, high = schema.get("minimum", schema.get("exclusiveMinimum")), schema.get("maximum")
    bounds = f" {low}..{high}" if low is not None and high is not None else ""
    return f"{schema.get('type', '')}{bounds}"


def _value(value: Any) -> str:
    return "none" if value is None else f"`{value}`"


def _effect(effect: Effect[Any]) -> list[str]:
    schema = effect.query_model().model_json_schema()["properties"]
    lines = [f"## `POST {effect.path}`", "", effect.summary + ".", ""]
    if effect.returns == "images":
        lines += ['Returns JSON: `{"images": {name: "data:image/...;base64,..."}}`, one image per name.', ""]
    lines += ["| parameter | values | default | what |", "| --- | --- | --- | --- |"]
    for name, field in schema.items():
        lines.append(f"| `{name}` | {_kind(field)} | {_value(field.get('default'))} | {field.get('description', '')} |")
    if effect.presets:
        lines += ["", "| preset | for | sets |", "| --- | --- | --- |"]
        for preset in effect.presets:
            sets = ", ".join(f"`{k}={v}`" for k, v in preset.sets.items())
            lines.append(f"| `{preset.name}` | {preset.summary} | {sets} |")
    models = [stage for stage in effect.stages if isinstance(stage, ModelStage)]
    if models:
        lines += [
            "",
            "Runs on " + ", ".join(f"{stage.deployment} ({', '.join(stage.registry.names())})" for stage in models) + ".",
        ]
    return [*lines, ""]


def effects_doc(catalogue: Catalogue) -> str:
    lines = [
        "# Effects",
        "",
        "<!-- Written by `make docs` from the catalogue (core/effects.py); edit the catalogue, not this page. -->",
        "",
        "Every effect takes the photo as the request body (docs/api.md) and its parameters as the query;",
        "`preset=NAME` applies a preset first, and the parameters given explicitly override it.",
        "`GET /v1/effects` serves the same, with whether each model is loaded.",
        "",
    ]
    for effect in catalogue:
        lines += _effect(effect)
    return "\n".join(lines)


def _as_typed(default: Any) -> str:
    """A default as one would write it in the environment: `true`, `~/.cache/...`; unset for None."""
    if default is None:
        return "unset"
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if isinstance(default, Path):
        return f"`{str(default).replace(str(Path.home()), '~', 1)}`"
    return f"`{default}`"


def configuration_doc() -> str:
    lines = [
        "# Configuration",
        "",
        "<!-- Written by `make docs` from core/settings.py; edit the settings, not this page. -->",
        "",
        "Environment variables, read when the app is built (`make run`, `serve run`, `serve deploy`) and",
        "handed to every replica. A malformed value stops start-up with a message naming it.",
        "",
        "| variable | default | meaning |",
        "| --- | --- | --- |",
    ]
    for name, field in Settings.model_fields.items():
        lines.append(f"| `{env_name(name)}` | {_as_typed(field.default)} | {field.description} |")
    return "\n".join([*lines, ""])


def generated_docs() -> dict[Path, str]:
    return {DOCS / "effects.md": effects_doc(load_catalogue(DEFAULT_CATALOGUE)), DOCS / "configuration.md": configuration_doc()}
