"""The whole app on a real local Ray, over real HTTP."""

from __future__ import annotations

import base64
import functools
import json
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from ray import serve

from core import imaging
from core.effects import ANIME_MAX_SIDE, CATALOGUE
from core.errors import InvalidImage
from core.runner import ModelRunner
from core.settings import Settings
from core.stages import ModelOutput
from deployments.metrics import EXPORTED_PREFIX, PROXY_REFUSALS, REPLICA_METRICS
from tests.conftest import ALL_ENTRIES
from tests.images import assert_blend, decode, encode, photo, pixels, psnr
from tests.runners import anime_runner, styled
from tests.serving import deploy, exported, local_serve
from toonserve.grafana import dashboard_text

pytestmark = pytest.mark.slow

MAX_BYTES = 2 * 1024 * 1024
MAX_PIXELS = 4_000_000
FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
SINGLE_EFFECTS = [
    "/v1/anime",
    "/v1/anime?style=paprika",
    "/v1/filters/pencil_sketch",
    "/v1/filters/color_pencil",
    "/v1/filters/oil_painting",
    "/v1/filters/watercolor",
    "/v1/matte",
    "/v1/matte?output=mask",
    "/v1/matte?output=composite&background=00ff00&model=u2netp",
]


@pytest.fixture(scope="module")
def settings(weights_dir: Path) -> Settings:
    return Settings(
        weights_dir=weights_dir,
        cache_dir=weights_dir / "cache",
        download_weights=False,
        max_bytes=MAX_BYTES,
        max_pixels=MAX_PIXELS,
    )


@pytest.fixture(scope="module")
def client(settings: Settings, all_weights_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """Three apps: toonserve with the test weights (u2net missing), one without weights, and
    one with every model's weights serving the catalogue of tests/extra_effects.py."""
    empty = tmp_path_factory.mktemp("no_weights")
    with local_serve() as url:
        deploy(settings, "toonserve", "/")
        deploy(Settings(weights_dir=empty, cache_dir=empty, download_weights=False), "bare", "/bare")
        everything = settings.model_copy(update={"weights_dir": all_weights_dir})
        deploy(everything, "extended", "/extended", catalogue="tests.extra_effects:CATALOGUE")
        with httpx.Client(base_url=url, timeout=120) as http:
            yield http


def server_timing(response: httpx.Response) -> dict[str, str]:
    """{stage name: the rest of its entry}."""
    entries = [e.strip() for e in response.headers["server-timing"].split(",")]
    return {e.split(";", 1)[0]: e for e in entries}


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("path", SINGLE_EFFECTS)
def test_every_effect_answers_each_input_format(client: httpx.Client, path: str, fmt: str) -> None:
    response = client.post(path, content=encode(photo(160, 120, seed=1), fmt))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-request-id"]
    picture = decode(response.content)
    assert picture.size == (160, 120)
    stages = server_timing(response)
    assert "decode" in stages
    assert "encode" in stages
    assert len(stages) == 3
    assert all(re.search(r"dur=\d+(\.\d+)?", entry) for entry in stages.values())


@pytest.mark.parametrize(("fmt", "mode"), [("png", "RGBA"), ("webp", "RGBA")])
def test_cutout_keeps_alpha(client: httpx.Client, fmt: str, mode: str) -> None:
    response = client.post(f"/v1/matte?output=cutout&format={fmt}", content=encode(photo(96, 64), "JPEG"))
    assert response.status_code == 200
    assert response.headers["content-type"] == f"image/{fmt}"
    assert decode(response.content).mode == mode


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_output_format_and_max_side(client: httpx.Client, fmt: str) -> None:
    response = client.post(f"/v1/anime?format={fmt}&max_side=100", content=encode(photo(400, 300), "PNG"))
    assert response.status_code == 200
    assert response.headers["content-type"] == f"image/{fmt}"
    assert decode(response.content).size == (100, 75)


def test_max_side_never_upscales(client: httpx.Client) -> None:
    response = client.post("/v1/filters/watercolor?max_side=4000", content=encode(photo(90, 60), "PNG"))
    assert decode(response.content).size == (90, 60)


def test_exif_orientation_sets_the_output_size(client: httpx.Client) -> None:
    picture = Image.fromarray(photo(80, 40))
    exif = picture.getexif()
    exif[0x0112] = 8
    response = client.post("/v1/anime", content=encode(picture, "JPEG", exif=exif))
    assert decode(response.content).size == (40, 80)


def test_input_alpha_is_kept_by_anime(client: httpx.Client) -> None:
    rgba = np.dstack([photo(64, 64), np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (64, 1))])
    response = client.post("/v1/anime", content=encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    picture = decode(response.content)
    assert picture.mode == "RGBA"
    assert np.asarray(picture)[:, :, 3].min() < 10


def test_multipart_upload(client: httpx.Client) -> None:
    files = {"image": ("photo.png", encode(photo(64, 48), "PNG"), "image/png")}
    response = client.post("/v1/filters/oil_painting", files=files)
    assert response.status_code == 200
    assert decode(response.content).size == (64, 48)


def test_art_runs_all_four_filters(client: httpx.Client) -> None:
    response = client.post("/v1/art?max_side=120", content=encode(photo(240, 160), "JPEG"))
    assert response.status_code == 200
    images = response.json()["images"]
    assert set(images) == {"pencil_sketch", "color_pencil", "oil_painting", "watercolor"}
    for uri in images.values():
        header, payload = uri.split(",", 1)
        assert header == "data:image/png;base64"
        assert decode(base64.b64decode(payload)).size == (120, 80)
    assert {"decode", "pencil_sketch", "watercolor", "encode_watercolor"} <= set(server_timing(response))


@pytest.fixture(scope="module")
def paprika(settings: Settings) -> ModelRunner:
    """The served paprika weights, run in this process."""
    return anime_runner(settings)


def test_anime_is_drawn_at_the_output_size_unless_asked_fast(client: httpx.Client, paprika: ModelRunner) -> None:
    sent = photo(1024, 683, seed=2)
    full = client.post("/v1/anime?style=paprika&max_side=1024", content=encode(sent, "PNG"))
    fast = client.post("/v1/anime?style=paprika&max_side=1024&quality=fast", content=encode(sent, "PNG"))
    assert full.status_code == fast.status_code == 200
    at_1024 = styled(paprika, sent)
    at_512 = imaging.resize(styled(paprika, imaging.resize(sent, (512, 342))), (1024, 683))
    assert psnr(at_1024, pixels(full.content)) >= 40.0
    assert psnr(at_512, pixels(fast.content)) >= 40.0
    assert psnr(at_1024, pixels(fast.content)) < psnr(at_1024, pixels(full.content))


def test_anime_is_never_upscaled_past_what_it_draws(client: httpx.Client) -> None:
    response = client.post(f"/v1/anime?max_side={ANIME_MAX_SIDE + 1}", content=encode(photo(32, 32), "PNG"))
    assert_error(response, 422, "invalid_parameter")
    assert str(ANIME_MAX_SIDE) in response.json()["error"]["message"]


def test_concurrent_anime_requests_are_batched_and_answered_in_order(client: httpx.Client, paprika: ModelRunner) -> None:
    photos = [photo(128, 96, seed=seed) for seed in range(8)]
    with ThreadPoolExecutor(len(photos)) as pool:
        responses = list(pool.map(lambda p: client.post("/v1/anime?style=paprika", content=encode(p, "PNG")), photos))
    assert all(r.status_code == 200 for r in responses)
    batches = [int(re.search(r'batch=(\d+)"', server_timing(r)["anime"]).group(1)) for r in responses]  # type: ignore[union-attr]
    assert max(batches) > 1
    for sent, response in zip(photos, responses, strict=True):
        assert psnr(styled(paprika, sent), pixels(response.content)) >= 40.0


def test_a_client_on_16_connections_gets_no_503(client: httpx.Client) -> None:
    """The default bounds admit a closed loop of 16: each connection sends its next request as
    soon as its response arrives, before the proxy has freed the slot."""
    body = encode(photo(96, 96), "PNG")
    limits = httpx.Limits(max_connections=16)
    with httpx.Client(base_url=str(client.base_url), timeout=120, limits=limits) as sixteen, ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda _: sixteen.post("/v1/matte?model=u2netp", content=body).status_code, range(32)))
    assert statuses == [200] * 32


def test_one_bad_item_in_a_batch_fails_alone(client: httpx.Client) -> None:
    anime = serve.get_deployment_handle("AnimeGAN", app_name="toonserve")
    good, bad = photo(64, 64), np.zeros((64, 64), np.float32)
    responses = [anime.run.remote(image, "paprika") for image in (good, bad, good, good)]
    for index, response in enumerate(responses):
        if index == 1:
            with pytest.raises(InvalidImage):
                response.result(timeout_s=120)
        else:
            assert isinstance(response.result(timeout_s=120), ModelOutput)
    assert client.post("/v1/anime", content=encode(photo(32, 32), "PNG")).status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "code"),
    [
        ("/v1/anime", b"definitely not an image", {}, 400, "invalid_image"),
        ("/v1/anime", b"", {}, 400, "invalid_image"),
        ("/v1/anime", encode(photo(64, 64), "JPEG")[:300], {}, 400, "invalid_image"),
        ("/v1/anime", encode(photo(32, 32), "GIF"), {}, 415, "unsupported_media_type"),
        ("/v1/anime", b'{"image": 1}', {"content-type": "application/json"}, 415, "unsupported_media_type"),
        ("/v1/anime", b"\xff" * (MAX_BYTES + 1), {}, 413, "image_too_large"),
        ("/v1/matte", encode(np.zeros((2100, 2000, 3), np.uint8), "PNG"), {}, 413, "image_too_large"),
        ("/v1/anime?style=nope", encode(photo(32, 32), "PNG"), {}, 422, "invalid_parameter"),
        ("/v1/anime?format=gif", encode(photo(32, 32), "PNG"), {}, 422, "invalid_parameter"),
        ("/v1/anime?max_side=0", encode(photo(32, 32), "PNG"), {}, 422, "invalid_parameter"),
        ("/v1/filters/blur", encode(photo(32, 32), "PNG"), {}, 422, "invalid_parameter"),
        ("/v1/filters/oil_painting?size=99", encode(photo(32, 32), "PNG"), {}, 422, "invalid_parameter"),
        ("/v1/matte?output=cutout&format=jpeg", encode(photo(32, 32), "PNG"), {}, 422, "invalid_parameter"),
        ("/v1/matte?output=composite&background=blue", encode(photo(32, 32), "PNG"), {}, 422, "invalid_parameter"),
        ("/v1/matte?model=u2net", encode(photo(32, 32), "PNG"), {}, 503, "weights_missing"),
        ("/v2/anime", b"x", {}, 404, "not_found"),
    ],
    ids=lambda value: value if isinstance(value, str) and value.startswith("/") else None,
)
def test_bad_requests_get_json_errors(
    client: httpx.Client, path: str, body: bytes, headers: dict, status: int, code: str
) -> None:
    assert_error(client.post(path, content=body, headers=headers), status, code)


def test_multipart_without_the_image_field(client: httpx.Client) -> None:
    response = client.post("/v1/anime", files={"photo": ("p.png", encode(photo(8, 8), "PNG"), "image/png")})
    assert_error(response, 400, "invalid_image")


def test_without_weights_models_answer_503_and_filters_work(client: httpx.Client) -> None:
    data = encode(photo(64, 64), "PNG")
    for path in ("/bare/v1/anime", "/bare/v1/matte"):
        response = client.post(path, content=data)
        assert_error(response, 503, "weights_missing")
        assert "make weights" in response.json()["error"]["message"]
    assert client.post("/bare/v1/filters/pencil_sketch", content=data).status_code == 200
    ready = client.get("/bare/readyz").json()
    assert set(ready["missing_weights"]) == {entry.name for entry in ALL_ENTRIES}
    effects = client.get("/bare/v1/effects").json()
    assert effects["anime"]["available"] is False
    assert effects["filters"]["watercolor"]["available"] is True


def test_health_readiness_and_effects(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["ready"] is True
    anime = {m["name"]: m for m in body["models"]["anime"]}
    assert anime["paprika"]["loaded"]
    assert anime["paprika"]["origin"] == "weights_dir"
    assert body["missing_weights"] == ["u2net"]
    effects = client.get("/v1/effects").json()
    assert effects["anime"]["available"] is True
    assert effects["matte"]["models"]["u2net"]["available"] is False
    assert "non-commercial" in effects["anime"]["styles"]["paprika"]["licence"]


def test_openapi_docs(client: httpx.Client) -> None:
    assert client.get("/docs").status_code == 200
    spec = json.loads(client.get("/openapi.json").text)
    assert {"/v1/anime", "/v1/art", "/v1/matte", "/v1/filters/{name}", "/readyz"} <= set(spec["paths"])


def listed_effects(described: dict[str, Any]) -> list[dict[str, Any]]:
    """/v1/effects flattened: each effect's entry, those of a family included."""
    return [entry for value in described.values() for entry in ([value] if "path" in value else value.values())]


def test_every_listed_effect_answers_its_defaults(client: httpx.Client) -> None:
    listed = listed_effects(client.get("/v1/effects").json())
    assert {entry["path"] for entry in listed} == {effect.path for effect in CATALOGUE}
    for entry in listed:
        response = client.post(entry["path"], content=encode(photo(160, 120), "JPEG"))
        assert response.status_code == 200, (entry["path"], response.text)
        if entry["returns"] == "image":
            assert decode(response.content).size == (160, 120)
        else:
            assert response.json()["images"]


@pytest.mark.parametrize(("path", "preset"), [(e.path, p.name) for e in CATALOGUE for p in e.presets])
def test_every_preset_works(client: httpx.Client, path: str, preset: str) -> None:
    sets = next(e for e in CATALOGUE if e.path == path).preset_registry.get(preset).sets
    response = client.post(f"/extended{path}?preset={preset}", content=encode(photo(900, 600), "JPEG"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == f"image/{sets.get('format', 'png')}"
    assert max(decode(response.content).size) == min(900, sets.get("max_side", 1024))


def test_presets_are_listed_with_what_they_set(client: httpx.Client) -> None:
    described = client.get("/v1/effects").json()
    fast = described["filters"]["oil_painting"]["presets"]["fast"]
    assert fast["sets"] == {"max_side": 800, "size": 3, "dyn_ratio": 4}
    assert fast["summary"]
    assert set(described["matte"]["presets"]) == {"preview", "product", "avatar", "bulk"}


def test_explicit_parameters_override_a_preset(client: httpx.Client) -> None:
    response = client.post("/v1/filters/oil_painting?preset=fast&max_side=100", content=encode(photo(400, 300), "PNG"))
    assert decode(response.content).size == (100, 75)


def test_an_unknown_preset_is_refused_naming_the_known(client: httpx.Client) -> None:
    response = client.post("/v1/filters/oil_painting?preset=ultra", content=encode(photo(40, 30), "PNG"))
    assert_error(response, 422, "invalid_parameter")
    assert "known: high, balanced, fast" in response.json()["error"]["message"]


SAMPLES = sorted((Path(__file__).resolve().parent.parent.parent / "shared" / "samples").glob("*.[jp][pn]g"))
"""Real photos, where this checkout has them beside it (../shared/samples); a fresh clone has none."""
PORTRAIT_PHOTOS = [
    pytest.param(encode(photo(320, 240, seed=5), "JPEG"), id="photo"),
    pytest.param(encode(photo(4000, 40, seed=6), "PNG"), id="4000x40"),
    pytest.param(encode(photo(1, 1), "PNG"), id="1x1"),
    *(pytest.param(sample.read_bytes(), id=sample.name) for sample in SAMPLES),
]


Render = Callable[[str | httpx.URL, bytes], np.ndarray]
"""Pixels of a photo (the bytes) through an effect (the path)."""


@pytest.fixture(scope="module")
def rendered(client: httpx.Client) -> Render:
    """A photo's pixels from one effect, each rendered once: the portrait cases share their matte and person."""

    @functools.cache
    def render(path: str | httpx.URL, data: bytes) -> np.ndarray:
        response = client.post(path, content=data)
        assert response.status_code == 200, (path, response.text)
        return pixels(response.content)

    return render


@pytest.mark.parametrize("data", PORTRAIT_PHOTOS)
@pytest.mark.parametrize(
    ("background", "behind"),
    [("watercolor", "/v1/filters/watercolor"), ("paprika", "/v1/anime?style=paprika"), ("1e90ff", None)],
)
def test_portrait_is_the_single_effects_blended_over_the_matte(
    client: httpx.Client, rendered: Render, data: bytes, background: str, behind: str | None
) -> None:
    def sized(path: str) -> httpx.URL:
        # The blend holds at any size; the real photos are large, and every case renders anime.
        return httpx.URL(path).copy_merge_params({"max_side": 512})

    response = client.post(sized(f"/v1/portrait?style=face_paint_512_v2&background={background}&feather=0"), content=data)
    assert response.status_code == 200, response.text
    assert set(server_timing(response)) == {"decode", "matte", "person", "background", "compose", "encode"} - (
        set() if behind else {"background"}
    )
    mask = rendered(sized("/v1/matte?output=mask"), data)
    person = rendered(sized("/v1/anime?style=face_paint_512_v2"), data)
    if behind is None:
        backdrop = np.broadcast_to(np.array([0x1E, 0x90, 0xFF], np.uint8), person.shape)
    else:
        backdrop = rendered(sized(behind), data)
    assert_blend(pixels(response.content), mask, person, backdrop)


def test_an_effect_added_to_a_catalogue_is_routed_validated_listed_and_documented(client: httpx.Client) -> None:
    """tests/extra_effects.py declares `sketched_anime` and nothing else knows it."""
    data = encode(photo(120, 90), "JPEG")
    response = client.post("/extended/v1/sketched_anime?sigma_s=50&style=paprika", content=data)
    assert response.status_code == 200, response.text
    assert decode(response.content).size == (120, 90)
    assert set(server_timing(response)) == {"decode", "anime", "pencil_sketch", "encode"}
    assert client.post("/extended/v1/sketched_anime?preset=soft", content=data).status_code == 200
    assert_error(client.post("/extended/v1/sketched_anime?sigma_s=999", content=data), 422, "invalid_parameter")
    assert_error(client.post("/extended/v1/sketched_anime?preset=hard", content=data), 422, "invalid_parameter")
    listed = client.get("/extended/v1/effects").json()["sketched_anime"]
    assert listed["path"] == "/v1/sketched_anime"
    assert listed["available"] is True
    assert listed["parameters"]["sigma_s"]["maximum"] == 200
    assert listed["presets"]["soft"]["sets"] == {"sigma_s": 90.0}
    operation = client.get("/extended/openapi.json").json()["paths"]["/v1/sketched_anime"]["post"]
    assert {"style", "sigma_s", "format", "max_side", "preset"} <= {p["name"] for p in operation["parameters"]}
    assert client.post("/v1/sketched_anime", content=data).status_code == 404


def test_metrics_count_requests_stages_batches_refusals_and_weights(client: httpx.Client) -> None:
    data = encode(photo(64, 48), "PNG")
    assert client.post("/v1/anime", content=data).status_code == 200
    assert client.post("/v1/matte", content=data).status_code == 200
    assert client.post("/v1/filters/oil_painting?size=99", content=data).status_code == 422
    metrics = {f"{EXPORTED_PREFIX}{name}" for name in REPLICA_METRICS}
    found = exported(metrics)
    assert set(found) == metrics
    # Every series the dashboard charts is exported under the name it queries (the proxy's once it refuses).
    queried = set(re.findall(r"ray_toonserve_\w+", dashboard_text())) - {f"{EXPORTED_PREFIX}{PROXY_REFUSALS}_total"}
    assert queried <= {sample.name for samples in found.values() for sample in samples}
    # This app's series: the module's other apps have their own (application is one of Serve's labels).
    ours = {name: [s for s in samples if s.labels.get("application") == "toonserve"] for name, samples in found.items()}
    labels = {name: [sample.labels for sample in samples] for name, samples in ours.items()}
    assert _any(labels["ray_toonserve_requests"], effect="anime", status="200")
    assert _any(labels["ray_toonserve_requests"], effect="oil_painting", status="422")
    assert _any(labels["ray_toonserve_refusals"], reason="invalid_parameter")["deployment"] == "Ingress"
    assert {"anime", "matting"} <= {label["stage"] for label in labels["ray_toonserve_batch_size"]}
    assert {"anime", "matting"} <= {label["stage"] for label in labels["ray_toonserve_queue_wait_seconds"]}
    assert "anime" in {label["stage"] for label in labels["ray_toonserve_stage_seconds"]}
    weights = {s.labels["model"]: (s.labels["origin"], s.value) for s in ours["ray_toonserve_weights_loaded"]}
    assert weights["paprika"] == ("weights_dir", 1.0)
    assert weights["u2net"] == ("missing", 0.0)


def _any(labels: list[dict[str, str]], **wanted: str) -> dict[str, str]:
    """The first label set that has every `wanted` value."""
    return next(label for label in labels if wanted.items() <= label.items())
