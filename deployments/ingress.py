"""The HTTP face of toonserve: parses requests, enforces limits, chains the deployments, maps errors."""

import asyncio
import base64
import logging
import re
from dataclasses import asdict
from typing import Annotated, Any, Literal, TypeVar

from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from ray import serve
from ray.exceptions import RayTaskError
from ray.serve.exceptions import BackPressureError, RayServeException
from ray.serve.handle import DeploymentHandle, DeploymentResponse
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.art import FILTERS, get_filter, parallel_groups
from core.errors import ImageTooLarge, InvalidImage, InvalidParameter, Overloaded, StageTimeout, ToonError, UnsupportedFormat
from core.memory import return_large_blocks_to_the_os
from core.messages import Encoded, MatteOptions, OutputFormat, Prepared, Rendered, StageTiming, WorkingSize
from core.models import ModelState
from core.settings import WEIGHTS_INSTALL_HINT, Settings
from deployments.scaling import bursty
from models.animegan import ANIME_WEIGHTS, DEFAULT_ANIME_STYLE
from models.u2net import DEFAULT_MATTING_MODEL, U2NET_INPUT, U2NET_WEIGHTS

logger = logging.getLogger("ray.serve")

MAX_SIDE_DEFAULT = 1024
MAX_SIDE_LIMIT = 4096
RETRY_AFTER_S = 1
_NON_IMAGE_TYPES = re.compile(r"^(text/|application/(json|xml|javascript))")
_HEX_COLOUR = re.compile(r"^#?[0-9a-fA-F]{6}$")
T = TypeVar("T")

FormatQuery = Annotated[OutputFormat, Query(alias="format", description="output encoding")]
MaxSideQuery = Annotated[
    int,
    Query(ge=1, le=MAX_SIDE_LIMIT, description=f"the output's long side in pixels (default {MAX_SIDE_DEFAULT}); never upscales"),
]
_IMAGE_BODY = {
    "requestBody": {
        "required": True,
        "description": "The photo: raw JPEG, PNG or WebP bytes, or multipart/form-data with the file in the field `image`.",
        "content": {
            "image/*": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"image": {"type": "string", "format": "binary"}},
                    "required": ["image"],
                }
            },
        },
    }
}

api = FastAPI(
    title="toonserve",
    version="1",
    description="Photo to anime (AnimeGANv2), art filters (OpenCV) and portrait matting (U²-Net) on Ray Serve. "
    "AnimeGANv2 weights are for non-commercial use only.",
)


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def toon_error_response(error: ToonError) -> JSONResponse:
    headers = {"Retry-After": str(RETRY_AFTER_S)} if isinstance(error, Overloaded) else None
    return error_response(error.status, error.code, error.message, headers)


@api.exception_handler(RequestValidationError)
async def _invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
    detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in error.errors())
    return error_response(422, InvalidParameter.code, detail)


@api.exception_handler(StarletteHTTPException)
async def _http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
    code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
    return error_response(error.status_code, code, str(error.detail), dict(error.headers or {}))


@api.exception_handler(ToonError)
async def _toon_error(_: Request, error: ToonError) -> JSONResponse:
    return toon_error_response(error)


def parse_colour(value: str) -> tuple[int, int, int]:
    if not _HEX_COLOUR.match(value):
        raise InvalidParameter(f"background must be RRGGBB hex, got {value!r}")
    digits = value.lstrip("#")
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def image_response(encoded: Encoded) -> Response:
    timing = ", ".join(t.header_entry() for t in encoded.timings)
    return Response(encoded.data, media_type=encoded.media_type, headers={"Server-Timing": timing})


def _filter_params(request: Request, reserved: set[str]) -> dict[str, str]:
    return {key: value for key, value in request.query_params.items() if key not in reserved}


@serve.deployment(
    ray_actor_options={"num_cpus": 0.05},
    # The proxy's queue in front of the ingress is bounded too (503 from the proxy past it). Every
    # request in flight waits its turn at the stages, so these bounds cap a burst's latency at about
    # (ongoing + queued) / throughput: with 32 + 16 a 10x burst of pencil sketches on 2 cores (about
    # 5 answers/s) waited up to 13 s with no 503. 16 ongoing per ingress replica still lets the model
    # batches fill; the cluster configs raise both with the nodes' throughput. The queue is as long
    # as the slots: the proxy frees a slot only after the response has gone out, so a client on 16
    # connections sends its next request before that; with 8 queued, 8 of 48 mattings at
    # concurrency 16 got a 503 on an idle service.
    max_ongoing_requests=16,
    max_queued_requests=16,
    autoscaling_config=bursty(1, 2, 8),
    health_check_period_s=10,
)
@serve.ingress(api)
class Ingress:
    def __init__(
        self,
        settings: Settings,
        preprocessor: DeploymentHandle,
        anime: DeploymentHandle,
        filters: DeploymentHandle,
        matting: DeploymentHandle,
    ) -> None:
        return_large_blocks_to_the_os()
        self.settings = settings
        self.preprocessor = preprocessor
        self.anime = anime
        self.filters = filters
        self.matting = matting

    async def _result(self, response: DeploymentResponse) -> Any:
        """Awaits a chained call; maps overload, timeouts and remote ToonErrors to ToonErrors."""
        try:
            return await asyncio.wait_for(response, timeout=self.settings.stage_timeout_s)
        except TimeoutError:
            response.cancel()
            raise StageTimeout(f"no result within {self.settings.stage_timeout_s:.0f} s") from None
        except BackPressureError:
            raise Overloaded("the service is at capacity; retry shortly") from None
        except RayTaskError as error:
            # A ToonError raised in another replica arrives wrapped; re-raise the original.
            if isinstance(error.cause, ToonError):
                raise error.cause from None
            raise

    async def _prepare(self, data: bytes, max_side: int, working: WorkingSize | None, keep_image: bool) -> Prepared:
        return await self._result(self.preprocessor.prepare.remote(data, max_side, working, keep_image))

    async def _finish(
        self, stage: DeploymentResponse, output_format: OutputFormat, options: MatteOptions | None = None
    ) -> Encoded:
        """Awaits a model stage, then composes and encodes its result.

        Each stage is awaited here rather than handed on as a DeploymentResponse: Serve checks
        max_queued_requests when a call is made, before its DeploymentResponse arguments resolve,
        so a burst of chained calls would queue without bound at the model stage instead of
        being refused with 503.
        """
        rendered: Rendered = await self._result(stage)
        return await self._result(self.preprocessor.finish.remote(rendered, output_format, options))

    async def _read_image(self, request: Request) -> bytes:
        limit = self.settings.max_bytes
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            form = await request.form(max_files=1, max_fields=16)
            upload = form.get("image")
            if not isinstance(upload, UploadFile):
                raise InvalidImage("a multipart body needs the file in the field 'image'")
            if upload.size is not None and upload.size > limit:
                raise ImageTooLarge(f"the file is {upload.size} bytes; the limit is {limit}")
            data = await upload.read()
        else:
            if _NON_IMAGE_TYPES.match(content_type):
                raise UnsupportedFormat(f"{content_type} is not an image; send JPEG, PNG or WebP bytes")
            declared = request.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise ImageTooLarge(f"the body is {declared} bytes; the limit is {limit}")
            chunks: list[bytes] = []
            received = 0
            async for chunk in request.stream():
                received += len(chunk)
                if received > limit:
                    raise ImageTooLarge(f"the body exceeds the limit of {limit} bytes")
                chunks.append(chunk)
            data = b"".join(chunks)
        if len(data) > limit:
            raise ImageTooLarge(f"the body is {len(data)} bytes; the limit is {limit}")
        if not data:
            raise InvalidImage("empty body: send the image bytes, or multipart/form-data with the field 'image'")
        return data

    @api.post("/v1/anime", openapi_extra=_IMAGE_BODY, summary="Photo to anime (AnimeGANv2)")
    async def anime_effect(
        self,
        request: Request,
        style: Annotated[str, Query(description=f"one of {', '.join(ANIME_WEIGHTS.names())}")] = DEFAULT_ANIME_STYLE,
        output_format: FormatQuery = "png",
        max_side: MaxSideQuery = MAX_SIDE_DEFAULT,
    ) -> Response:
        if style not in ANIME_WEIGHTS:
            raise InvalidParameter(f"unknown style {style!r}; known: {', '.join(ANIME_WEIGHTS.names())}")
        prepared = await self._prepare(await self._read_image(request), max_side, WorkingSize(self.settings.anime_side), False)
        return image_response(await self._finish(self.anime.stylize.remote(prepared, style), output_format))

    @api.post("/v1/filters/{name}", openapi_extra=_IMAGE_BODY, summary="One OpenCV art filter")
    async def filter_effect(
        self,
        request: Request,
        name: Annotated[Literal["pencil_sketch", "color_pencil", "oil_painting", "watercolor"], Path()],
        output_format: FormatQuery = "png",
        max_side: MaxSideQuery = MAX_SIDE_DEFAULT,
    ) -> Response:
        art_filter = get_filter(name)
        params = art_filter.parse(_filter_params(request, {"format", "max_side"}))
        prepared = await self._prepare(await self._read_image(request), max_side, None, True)
        (encoded,) = await self._result(self.filters.apply_group.remote(prepared, [(name, params)], output_format))
        return image_response(encoded)

    @api.post("/v1/art", openapi_extra=_IMAGE_BODY, summary="All four filters of one photo, computed in parallel")
    async def art_effect(
        self, request: Request, output_format: FormatQuery = "png", max_side: MaxSideQuery = MAX_SIDE_DEFAULT
    ) -> JSONResponse:
        prepared = await self._prepare(await self._read_image(request), max_side, None, True)
        groups = parallel_groups(list(FILTERS))
        encoded_groups = await asyncio.gather(
            *(
                self._result(self.filters.apply_group.remote(prepared, [(n, FILTERS[n].params()) for n in group], output_format))
                for group in groups
            )
        )
        encoded: dict[str, Encoded] = {
            name: e for group, found in zip(groups, encoded_groups, strict=True) for name, e in zip(group, found, strict=True)
        }
        images = {name: f"data:{e.media_type};base64,{base64.b64encode(e.data).decode()}" for name, e in encoded.items()}
        timings = [prepared.timings[0]]
        for name in FILTERS:
            filter_timing, encode_timing = encoded[name].timings[-2:]
            timings += [filter_timing, StageTiming(f"encode_{name}", encode_timing.ms)]
        return JSONResponse({"images": images}, headers={"Server-Timing": ", ".join(t.header_entry() for t in timings)})

    @api.post("/v1/matte", openapi_extra=_IMAGE_BODY, summary="Portrait matting (U²-Net): cutout, mask or composite")
    async def matte_effect(
        self,
        request: Request,
        output: Annotated[Literal["cutout", "mask", "composite"], Query()] = "cutout",
        background: Annotated[str, Query(description="RRGGBB, for output=composite")] = "ffffff",
        threshold: Annotated[float | None, Query(ge=0.0, le=1.0, description="binarise the matte at this alpha")] = None,
        feather: Annotated[float, Query(ge=0.0, le=50.0, description="edge softening, Gaussian sigma in pixels")] = 0.0,
        erode: Annotated[int, Query(ge=0, le=50, description="pixels shaved off the edge")] = 0,
        model: Annotated[str, Query(description=f"one of {', '.join(U2NET_WEIGHTS.names())}")] = DEFAULT_MATTING_MODEL,
        output_format: FormatQuery = "png",
        max_side: MaxSideQuery = MAX_SIDE_DEFAULT,
    ) -> Response:
        if model not in U2NET_WEIGHTS:
            raise InvalidParameter(f"unknown matting model {model!r}; known: {', '.join(U2NET_WEIGHTS.names())}")
        if output == "cutout" and output_format == "jpeg":
            raise InvalidParameter("a cutout keeps its transparency: ask for format=png or format=webp")
        options = MatteOptions(output, parse_colour(background), threshold, erode, feather)
        prepared = await self._prepare(
            await self._read_image(request), max_side, WorkingSize(U2NET_INPUT.size, square=True), True
        )
        return image_response(await self._finish(self.matting.matte.remote(prepared, model), output_format, options))

    @api.get("/healthz", summary="Liveness: the ingress answers")
    async def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    async def _model_states(self) -> dict[str, list[ModelState] | str]:
        states: dict[str, list[ModelState] | str] = {}
        for name, handle in (("anime", self.anime), ("matting", self.matting)):
            try:
                states[name] = await self._result(handle.status.remote())
            except (ToonError, RayServeException) as error:
                states[name] = f"unreachable: {error}"
        return states

    @api.get("/readyz", summary="Readiness, with each model's state and where its weights came from")
    async def readyz(self) -> JSONResponse:
        states = await self._model_states()
        reachable = all(isinstance(s, list) for s in states.values())
        models = {group: [asdict(s) for s in found] if isinstance(found, list) else found for group, found in states.items()}
        missing = [s.name for found in states.values() if isinstance(found, list) for s in found if not s.loaded]
        body = {
            "ready": reachable,
            "models": models,
            "missing_weights": missing,
            "install_hint": WEIGHTS_INSTALL_HINT if missing else None,
            "random_weights": self.settings.random_weights,
        }
        return JSONResponse(body, status_code=200 if reachable else 503)

    @api.get("/v1/effects", summary="Each effect, its parameters, and whether it is available")
    async def effects(self) -> dict[str, Any]:
        states = await self._model_states()

        def loaded(group: str) -> set[str]:
            found = states[group]
            return {s.name for s in found if s.loaded} if isinstance(found, list) else set()

        anime_ready, matte_ready = loaded("anime"), loaded("matting")
        common = {"format": ["png", "jpeg", "webp"], "max_side": {"default": MAX_SIDE_DEFAULT, "max": MAX_SIDE_LIMIT}}
        return {
            "anime": {
                "path": "/v1/anime",
                "available": bool(anime_ready),
                "parameters": {**common, "style": {"default": DEFAULT_ANIME_STYLE, "choices": ANIME_WEIGHTS.names()}},
                "styles": {e.name: {"available": e.name in anime_ready, "licence": e.licence} for e in ANIME_WEIGHTS},
            },
            "filters": {
                name: {
                    "path": f"/v1/filters/{name}",
                    "available": True,
                    "summary": f.summary,
                    "parameters": {**common, **f.params.model_json_schema()["properties"]},
                }
                for name, f in FILTERS.items()
            },
            "art": {"path": "/v1/art", "available": True, "parameters": common},
            "matte": {
                "path": "/v1/matte",
                "available": bool(matte_ready),
                "parameters": {
                    **common,
                    "output": ["cutout", "mask", "composite"],
                    "background": "RRGGBB",
                    "threshold": "0..1 or absent",
                    "feather": "0..50 px",
                    "erode": "0..50 px",
                    "model": {"default": DEFAULT_MATTING_MODEL, "choices": U2NET_WEIGHTS.names()},
                },
                "models": {e.name: {"available": e.name in matte_ready, "licence": e.licence} for e in U2NET_WEIGHTS},
            },
        }
