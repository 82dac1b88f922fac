"""The catalogue's vocabulary: an effect declared once, with its parameters, presets, stages and how it renders.

Everything a client sees derives from these declarations: the HTTP routes and their validation,
/v1/effects, the OpenAPI docs, the deployments bound (the stages the effects use) and the
weights `make weights` fetches. core/effects.py holds toonserve's own catalogue.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema, create_model
from pydantic_core import ErrorDetails, PydanticCustomError, core_schema

from core.errors import InvalidParameter
from core.imaging import DEFAULT_MAX_SIDE, OutputFormat
from core.photo import Photo, Picture
from core.settings import Settings
from core.stages import STAGES, ModelStage, Stage, Stages, StageStates
from core.timing import Timings
from models.names import UnknownName
from models.registry import Registry

MAX_SIDE_LIMIT = 4096
"""The longest output side any effect makes; an effect may declare a lower one (Effect.max_side)."""
DEFAULT_CATALOGUE = "core.effects:CATALOGUE"
"""What the service serves unless told otherwise (serve_app.AppArgs.catalogue)."""


class Params(BaseModel):
    """An effect's own parameters, typed, bounded and with defaults: the query parameters of its route."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _max_side(limit: int) -> Any:
    return Field(DEFAULT_MAX_SIDE, ge=1, le=limit, description="the output's long side in pixels; never upscales")


class OutputParams(Params):
    """What every effect takes besides its own parameters: how its result is sized and encoded."""

    format: OutputFormat = Field("png", description="output encoding")
    max_side: int = _max_side(MAX_SIDE_LIMIT)


@functools.cache
def output_params(limit: int) -> type[OutputParams]:
    """OutputParams with max_side bounded at `limit`."""
    if limit == MAX_SIDE_LIMIT:
        return OutputParams
    return create_model(f"OutputParamsUpTo{limit}", __base__=OutputParams, max_side=(int, _max_side(limit)))


@dataclass(frozen=True)
class Choice:
    """Marks a str parameter whose value must be a name in `registry`: listed as an enum in the
    schema, refused with the registry's unknown-name message."""

    registry: Registry[Any]

    def __get_pydantic_core_schema__(
        self, source: Any, handler: Callable[[Any], core_schema.CoreSchema]
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: Callable[[Any], dict[str, Any]]
    ) -> dict[str, Any]:
        return {**handler(schema), "enum": self.registry.names()}

    def _check(self, value: str) -> str:
        if value not in self.registry:
            raise PydanticCustomError("unknown_name", str(UnknownName(self.registry.kind, value, self.registry.names())))
        return value


COLOUR_PATTERN = r"^#?[0-9a-fA-F]{6}$"


def is_colour(value: str) -> bool:
    return re.match(COLOUR_PATTERN, value) is not None


def _colour(value: str) -> str:
    if not is_colour(value):
        raise PydanticCustomError("colour", "must be RRGGBB hex, got {value!r}", {"value": value})
    return value


Colour = Annotated[str, AfterValidator(_colour), WithJsonSchema({"type": "string", "pattern": COLOUR_PATTERN})]


def rgb(colour: str) -> tuple[int, int, int]:
    """A validated Colour as (red, green, blue)."""
    digits = colour.lstrip("#")
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def error_text(errors: Sequence[ErrorDetails], skip: int = 0) -> str:
    """Pydantic's errors as one line, `where: what; ...`; `skip` drops leading location parts (FastAPI's "query")."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'][skip:]) or 'parameters'}: {e['msg']}" for e in errors)


@dataclass(frozen=True)
class Preset:
    name: str
    summary: str
    """What it is for and what it costs, in a line."""
    sets: Mapping[str, Any]
    """Parameter values, the effect's own and `format` or `max_side`; explicit query parameters override them."""


@dataclass(frozen=True)
class Family:
    """Effects served under /v1/{name}/, also reachable by the family route /v1/{name}/{member}."""

    name: str
    member: str
    """What one member is called, in messages: "filter"."""


P = TypeVar("P", bound=BaseModel)
R = TypeVar("R")


@dataclass(frozen=True)
class Context(Generic[P]):
    """What an effect's renderer works with: the photo, its parameters and the stages, on one request."""

    photo: Photo
    params: P
    stages: Stages
    settings: Settings
    timings: Timings
    executor: Executor

    async def cpu(self, work: Callable[..., R], *args: Any) -> R:
        """Runs blocking image work on the executor, so that requests interleave on the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, work, *args)


Render = Callable[[Context[Any]], Awaitable[Picture | dict[str, Picture]]]
Returns = Literal["image", "images"]


@dataclass(frozen=True, eq=False)
class Effect(Generic[P]):
    name: str
    summary: str
    params: type[P]
    stages: tuple[Stage, ...]
    """The deployments its renderer calls."""
    render: Render
    presets: tuple[Preset, ...] = ()
    returns: Returns = "image"
    """"image": one picture; "images": one per name, as a JSON object of data URIs."""
    family: Family | None = None
    transparent: Callable[[P], bool] | None = None
    """Whether the result keeps transparency with these parameters: then JPEG, which cannot hold it, is refused."""
    max_side: int = MAX_SIDE_LIMIT
    """The longest output side it makes."""
    preset_registry: Registry[Preset] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "preset_registry", Registry("preset", self.presets))
        for preset in self.presets:
            self.parse(preset.sets)

    @property
    def path(self) -> str:
        return f"/v1/{self.family.name}/{self.name}" if self.family else f"/v1/{self.name}"

    def query_model(self) -> type[BaseModel]:
        """Its own parameters, format and max_side, and preset where it has presets: its route's query."""
        return _query_model(self)

    def resolve(self, query: BaseModel) -> tuple[P, OutputParams]:
        """The query's preset applied, then the parameters the query sets explicitly, validated together."""
        given = {name: getattr(query, name) for name in query.model_fields_set if name != "preset"}
        chosen = getattr(query, "preset", None)
        preset = self.preset_registry.get(chosen).sets if chosen is not None else {}
        params, output = self.parse({**preset, **given})
        if self.transparent is not None and self.transparent(params) and output.format == "jpeg":
            raise InvalidParameter("this result keeps its transparency, which JPEG cannot: ask for format=png or format=webp")
        return params, output

    def parse(self, values: Mapping[str, Any]) -> tuple[P, OutputParams]:
        """Parameter values, its own and format or max_side, validated; InvalidParameter naming the bad ones."""
        own = {k: v for k, v in values.items() if k not in OutputParams.model_fields}
        try:
            params = self.params.model_validate(own)
            bounded = output_params(self.max_side).model_validate(
                {k: v for k, v in values.items() if k in OutputParams.model_fields}
            )
            # As the plain class, which pickles by name on its way to the Compositor.
            return params, OutputParams(**bounded.model_dump())
        except ValidationError as error:
            raise InvalidParameter(f"{self.name}: {error_text(error.errors())}") from None

    def model_stages(self) -> list[ModelStage]:
        return [stage for stage in self.stages if isinstance(stage, ModelStage)]

    def describe(self, states: StageStates) -> dict[str, Any]:
        """This effect in /v1/effects: where, what, with which parameters and presets, and whether its models are loaded."""
        listings: dict[str, Any] = {}
        available = True
        for stage in self.model_stages():
            found = states.get(stage.name)
            loaded = {s.name for s in found if s.loaded} if isinstance(found, list) else set()
            available = available and bool(loaded)
            listings[stage.listing] = {e.name: {"available": e.name in loaded, "licence": e.licence} for e in stage.registry}
        return {
            "path": self.path,
            "summary": self.summary,
            "available": available,
            "returns": self.returns,
            "stages": [stage.name for stage in self.stages],
            "parameters": self.query_model().model_json_schema()["properties"],
            "presets": {p.name: {"summary": p.summary, "sets": dict(p.sets)} for p in self.presets},
            **listings,
        }


@functools.cache
def _query_model(effect: Effect[Any]) -> type[BaseModel]:
    # Built where it is used, never pickled: a class made at run time cannot be imported by name.
    extra: dict[str, Any] = {}
    if effect.presets:
        names = Annotated[str, Choice(effect.preset_registry)] | None
        extra["preset"] = (names, Field(None, description="named settings, applied before the parameters given explicitly"))
    name = "".join(part.title() for part in effect.name.split("_")) + "Query"
    return create_model(name, __base__=(output_params(effect.max_side), effect.params), **extra)


class Catalogue:
    """Effects by name; the stages they use; the one place an unknown effect is refused."""

    def __init__(self, effects: Iterable[Effect[Any]]) -> None:
        self.effects: Registry[Effect[Any]] = Registry("effect", effects)
        paths = [effect.path for effect in self.effects]
        if len(set(paths)) != len(paths):
            raise ValueError(f"two effects share a path: {paths}")

    def get(self, name: str) -> Effect[Any]:
        return self.effects.get(name)

    def __iter__(self) -> Iterator[Effect[Any]]:
        return iter(self.effects)

    def extended(self, *effects: Effect[Any]) -> Catalogue:
        return Catalogue([*self.effects, *effects])

    @property
    def stages(self) -> list[Stage]:
        """Every stage some effect uses, in the order STAGES declares them."""
        used = {stage.name for effect in self.effects for stage in effect.stages}
        return [stage for stage in STAGES if stage.name in used]

    @property
    def families(self) -> dict[Family, Registry[Effect[Any]]]:
        """Each family and its members, in the order declared."""
        found: dict[Family, list[Effect[Any]]] = {}
        for effect in self.effects:
            if effect.family is not None:
                found.setdefault(effect.family, []).append(effect)
        return {family: Registry(family.member, members) for family, members in found.items()}

    def describe(self, states: StageStates) -> dict[str, Any]:
        """/v1/effects: each effect under its name, those of a family under the family's name."""
        described: dict[str, Any] = {}
        for effect in self.effects:
            entry = effect.describe(states)
            if effect.family is None:
                described[effect.name] = entry
            else:
                described.setdefault(effect.family.name, {})[effect.name] = entry
        return described


def load_catalogue(path: str) -> Catalogue:
    """The Catalogue at `module:attribute`."""
    module, _, attribute = path.partition(":")
    found = getattr(importlib.import_module(module), attribute)
    if not isinstance(found, Catalogue):
        raise TypeError(f"{path} is a {type(found).__name__}, not a Catalogue")
    return found
