"""The catalogue's declarations: presets, explicit parameters over presets, one message for unknown names."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from core.art import FILTERS
from core.catalogue import MAX_SIDE_LIMIT, Catalogue, OutputParams, load_catalogue
from core.effects import ANIME_MAX_SIDE, BACKDROPS, CATALOGUE, QUALITY_TIERS
from core.errors import InvalidParameter
from core.runner import ModelState
from core.stages import ANIME_STAGE, MATTING_STAGE, StageStates
from models.animegan import ANIME_WEIGHTS
from models.names import UnknownName

UNKNOWN = re.compile(r"^unknown [a-z ]+ '[^']*'; known: .+$")
EFFECTS = [effect.name for effect in CATALOGUE]
PRESETS = [(effect.name, preset.name) for effect in CATALOGUE for preset in effect.presets]


def query(effect: str, **values: Any) -> tuple[Any, OutputParams]:
    chosen = CATALOGUE.get(effect)
    return chosen.resolve(chosen.query_model().model_validate(values))


@pytest.mark.parametrize(("effect", "preset"), PRESETS)
def test_every_preset_resolves_to_what_it_sets(effect: str, preset: str) -> None:
    params, output = query(effect, preset=preset)
    resolved = {**params.model_dump(), **output.model_dump()}
    for name, value in CATALOGUE.get(effect).preset_registry.get(preset).sets.items():
        assert resolved[name] == value, name


def test_explicit_parameters_override_the_preset() -> None:
    params, output = query("oil_painting", preset="fast", size=5)
    assert (params.size, params.dyn_ratio, output.max_side) == (5, 4, 800)
    params, output = query("oil_painting", preset="fast", max_side=100)
    assert (params.size, output.max_side) == (3, 100)


def test_without_a_preset_the_defaults_hold() -> None:
    params, output = query("watercolor")
    assert params == FILTERS.get("watercolor").params()
    assert output == OutputParams()


@pytest.mark.parametrize("name", FILTERS.names())
def test_each_filter_has_the_three_quality_tiers(name: str) -> None:
    effect = CATALOGUE.get(name)
    assert effect.preset_registry.names() == list(QUALITY_TIERS)
    sides = [effect.preset_registry.get(tier).sets["max_side"] for tier in QUALITY_TIERS]
    assert sides == sorted(sides, reverse=True)


@pytest.mark.parametrize("effect", ["anime", "portrait"])
def test_what_draws_anime_makes_nothing_longer_than_anime_draws(effect: str) -> None:
    assert query(effect, max_side=ANIME_MAX_SIDE)[1].max_side == ANIME_MAX_SIDE
    with pytest.raises(InvalidParameter, match=f"max_side: .*{ANIME_MAX_SIDE}"):
        CATALOGUE.get(effect).parse({"max_side": ANIME_MAX_SIDE + 1})


def test_matte_presets_cover_the_four_jobs() -> None:
    assert CATALOGUE.get("matte").preset_registry.names() == ["preview", "product", "avatar", "bulk"]
    assert query("matte", preset="bulk")[0].threshold == 0.5


@pytest.mark.parametrize(
    "bad",
    [
        lambda: CATALOGUE.get("sepia"),
        lambda: ANIME_WEIGHTS.get("hayao"),
        lambda: FILTERS.get("blur"),
        lambda: CATALOGUE.get("oil_painting").preset_registry.get("ultra"),
    ],
    ids=["effect", "style", "filter", "preset"],
)
def test_an_unknown_name_gets_the_one_message_listing_the_known(bad: Any) -> None:
    with pytest.raises(UnknownName) as raised:
        bad()
    assert UNKNOWN.match(str(raised.value)), raised.value


@pytest.mark.parametrize(
    ("effect", "values", "field"),
    [
        ("anime", {"style": "hayao"}, "style"),
        ("matte", {"model": "u3net"}, "model"),
        ("oil_painting", {"preset": "ultra"}, "preset"),
        ("portrait", {"background": "mars"}, "background"),
    ],
)
def test_unknown_names_in_parameters_get_the_same_message(effect: str, values: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        CATALOGUE.get(effect).query_model().model_validate(values)
    (error,) = raised.value.errors()
    assert error["loc"] == (field,)
    assert UNKNOWN.match(error["msg"]), error["msg"]
    assert repr(values[field]) in error["msg"]


def test_a_transparent_result_refuses_jpeg_whatever_sets_it() -> None:
    with pytest.raises(InvalidParameter, match="JPEG"):
        query("matte", format="jpeg")
    with pytest.raises(InvalidParameter, match="JPEG"):
        query("matte", preset="product", output="cutout")
    assert query("matte", preset="product")[1].format == "jpeg"


def test_bad_values_name_the_parameter() -> None:
    with pytest.raises(InvalidParameter, match="sigma_s"):
        CATALOGUE.get("watercolor").parse({"sigma_s": 0})
    with pytest.raises(InvalidParameter, match="max_side"):
        CATALOGUE.get("anime").parse({"max_side": 5000})


def test_backdrops_are_distinct_names() -> None:
    assert len(set(BACKDROPS)) == len(BACKDROPS)
    assert query("portrait", background="#1e90ff")[0].background == "#1e90ff"


def test_stages_are_those_the_effects_use_in_declared_order() -> None:
    assert [stage.name for stage in CATALOGUE.stages] == ["anime", "matting", "filters"]
    only_filters = Catalogue([CATALOGUE.get(name) for name in FILTERS.names()])
    assert [stage.name for stage in only_filters.stages] == ["filters"]


def test_two_effects_on_one_path_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate effect"):
        CATALOGUE.extended(CATALOGUE.get("anime"))


def test_the_default_catalogue_loads_by_import_path() -> None:
    assert load_catalogue("core.effects:CATALOGUE") is CATALOGUE
    with pytest.raises(TypeError, match="not a Catalogue"):
        load_catalogue("core.effects:BACKDROPS")


def test_describe_lists_effects_families_parameters_presets_and_models() -> None:
    states: StageStates = {
        ANIME_STAGE.name: [ModelState("paprika", True, "cache", True, "", "cpu")],
        MATTING_STAGE.name: "unreachable: test",
    }
    described = CATALOGUE.describe(states)
    assert set(described) == {"anime", "filters", "art", "matte", "portrait"}
    assert set(described["filters"]) == set(FILTERS.names())
    anime = described["anime"]
    assert anime["path"] == "/v1/anime"
    assert anime["available"] is True
    assert anime["styles"]["paprika"] == {"available": True, "licence": ANIME_WEIGHTS.get("paprika").licence}
    assert anime["styles"]["celeba_distill"]["available"] is False
    assert anime["parameters"]["style"]["enum"] == ANIME_WEIGHTS.names()
    assert anime["parameters"]["max_side"]["maximum"] == ANIME_MAX_SIDE
    assert anime["parameters"]["quality"]["enum"] == ["full", "fast"]
    oil = described["filters"]["oil_painting"]
    assert oil["parameters"]["max_side"]["maximum"] == MAX_SIDE_LIMIT
    assert oil["parameters"]["size"] == {
        "default": 7,
        "description": "brush neighbourhood in pixels",
        "maximum": 15,
        "minimum": 1,
        "title": "Size",
        "type": "integer",
    }
    assert oil["presets"]["fast"]["sets"] == {"max_side": 800, "size": 3, "dyn_ratio": 4}
    assert described["matte"]["available"] is False
    assert described["portrait"]["available"] is False
    assert described["art"]["returns"] == "images"
