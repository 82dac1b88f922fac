"""The HTTP face of toonserve: a route per effect of the catalogue, the limits on uploads, and errors as JSON."""

import asyncio
import base64
import inspect
import re
from collections.abc import Awaitable
from dataclasses import asdict
from pathlib import Path as FilePath
from typing import Annotated, Any, TypeVar, cast

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ValidationError
from ray import serve
from ray.serve.handle import DeploymentHandle
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.catalogue import MAX_SIDE_LIMIT, Catalogue, Choice, Effect, Family, error_text
from core.errors import (
    RETRY_AFTER_S,
    WEIGHTS_INSTALL_HINT,
    ImageTooLarge,
    InvalidImage,
    InvalidParameter,
    RateLimited,
    StageTimeout,
    ToonError,
    Unauthorized,
    UnsupportedFormat,
    error_body,
)
from core.imaging import MEDIA_TYPES
from core.keys import RateLimiter, key_name, load_keys, retry_after_s
from core.messages import Rendered
from core.settings import Settings
from core.stages import StageStates, model_stages
from core.timing import StageTiming
from deployments.compositor import Compositor
from deployments.metrics import EFFECT_STATE, RequestMetrics, ingress_metrics
from deployments.scaling import HEALTH_CHECK_PERIOD_S, REPLACE_FIRST, bursty
from models.registry import Registry

T = TypeVar("T")
WEB = FilePath(__file__).resolve().parent.parent / "web"
"""The page served at /: static files, no build step."""
_NON_IMAGE_TYPES = re.compile(r"^(text/|application/(json|xml|javascript))")
IMAGE_BODY = {
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
RESPONSES: dict[str, dict[int | str, dict[str, Any]]] = {
    "image": {200: {"description": "the picture", "content": {media: {} for media in MEDIA_TYPES.values()}}},
    "images": {200: {"description": '{"images": {name: "data:image/...;base64,..."}}', "content": {"application/json": {}}}},
}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    ingress_metrics().refusals.inc(tags={"reason": code})
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


# Each handler is registered for its own exception type (Starlette types them all as Exception).


async def _invalid_request(_: Request, error: Exception) -> JSONResponse:
    return error_response(422, InvalidParameter.code, error_text(cast(RequestValidationError, error).errors(), skip=1))


async def _http_error(_: Request, error: Exception) -> JSONResponse:
    http = cast(StarletteHTTPException, error)
    code = {404: "not_found", 405: "method_not_allowed"}.get(http.status_code, "http_error")
    return error_response(http.status_code, code, str(http.detail), dict(http.headers or {}))


async def _toon_error(_: Request, error: Exception) -> JSONResponse:
    toon = cast(ToonError, error)
    return error_response(toon.status, toon.code, toon.message, toon.headers())


def server_timing(timings: tuple[StageTiming, ...]) -> str:
    return ", ".join(t.header_entry() for t in timings)


def _admitted_at_once() -> int | None:
    """Requests the ingress replicas hold at once: what a client may keep in flight without being refused.

    Serve gives a replica no public accessor for its own max_ongoing_requests, so this reads the
    replica context's deployment config; None where that is not there (tests check it is).
    """
    context = serve.get_replica_context()
    config = getattr(context, "_deployment_config", None)
    ongoing = getattr(config, "max_ongoing_requests", None)
    return ongoing * context.world_size if isinstance(ongoing, int) else None


@serve.deployment(
    # Its CPU work is the Compositor's (decode, compose, encode), a small part of each request.
    ray_actor_options={"num_cpus": 0.2},
    # Every request in flight waits its turn at the stages, so these bounds cap a burst's latency at
    # about (ongoing + queued) / throughput; past them the proxy answers 503. The queue is as long as
    # the slots: the proxy frees a slot only after the response has gone out, so a client on 16
    # connections sends its next request before that (docs/performance.md, queue bounds).
    max_ongoing_requests=16,
    max_queued_requests=16,
    backpressure_config={"retry_after_s": RETRY_AFTER_S},
    autoscaling_config=bursty(1, 2, 8),
    health_check_period_s=HEALTH_CHECK_PERIOD_S,
    max_surge_percent=REPLACE_FIRST,
)
@serve.ingress()
class Ingress:
    def __init__(self, settings: Settings, catalogue: Catalogue, stages: dict[str, DeploymentHandle]) -> None:
        self.settings = settings
        self.catalogue = catalogue
        self.compositor = Compositor(settings, catalogue, stages)
        # A malformed key entry stops the replica at start, naming where it is.
        self.keys = load_keys(settings.api_keys, settings.api_keys_file) if settings.require_api_key else {}
        self.limiter = RateLimiter(settings.rate_limit_per_minute)

    def __serve_build_asgi_app__(self) -> FastAPI:
        """Serve calls this once the replica is constructed: the routes are the catalogue's."""
        api = FastAPI(
            title="toonserve",
            version="1",
            description="Photos to anime (AnimeGANv2), art filters (OpenCV), portrait matting (U²-Net) and effects "
            "combining them, on Ray Serve. AnimeGANv2 weights are for non-commercial use only. "
            "`GET /v1/effects` lists every effect, its parameters and presets.",
        )
        api.add_exception_handler(RequestValidationError, _invalid_request)
        api.add_exception_handler(StarletteHTTPException, _http_error)
        api.add_exception_handler(ToonError, _toon_error)
        api.add_middleware(RequestMetrics)
        if self.settings.cors_origins:
            # Outermost: a refusal (401, 429, 503) reaches the calling page with its headers readable.
            api.add_middleware(
                CORSMiddleware,
                allow_origins=self.settings.cors_origins,
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type"],
                expose_headers=["Server-Timing", "Retry-After", "Content-Disposition"],
            )
        # Only where keys are required does a /v1 route check one: no dependency on the hot path otherwise.
        keyed = [Depends(self.authorize)] if self.settings.require_api_key else []
        for effect in self.catalogue:
            api.add_api_route(
                effect.path,
                self._effect_endpoint(effect),
                methods=["POST"],
                name=effect.name,
                summary=effect.summary,
                openapi_extra=IMAGE_BODY,
                response_class=Response,
                responses=RESPONSES[effect.returns],
                dependencies=keyed,
            )
        for family, members in self.catalogue.families.items():
            api.add_api_route(
                f"/v1/{family.name}/{{name}}",
                self._family_endpoint(family, members),
                methods=["POST"],
                name=family.name,
                summary=f"Any {family.member} by name; each one's parameters are documented at its own path",
                openapi_extra=IMAGE_BODY,
                response_class=Response,
                responses=RESPONSES["image"],
                dependencies=keyed,
            )
        api.add_api_route("/", self.page, methods=["GET"], include_in_schema=False)
        api.mount("/web", StaticFiles(directory=WEB), name="web")
        api.add_api_route("/healthz", self.healthz, methods=["GET"], summary="Liveness: the ingress answers")
        api.add_api_route(
            "/readyz", self.readyz, methods=["GET"], summary="Readiness, with each model's state and where its weights came from"
        )
        described = {
            "/v1/effects": (self.effects, "Each effect: its path, parameters, presets and availability"),
            "/v1/limits": (self.limits, "What an upload may be, and how many requests fit at once"),
        }
        for path, (endpoint, summary) in described.items():
            api.add_api_route(path, endpoint, methods=["GET"], summary=summary, dependencies=keyed)
        return api

    async def authorize(self, request: Request) -> None:
        """A valid key (`Authorization: Bearer <key>`), within its rate: on the /v1 routes where keys are required."""
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        presented = presented.strip()
        if scheme.lower() != "bearer" or not presented:
            raise Unauthorized("this service needs an API key: send the header Authorization: Bearer <key>")
        if not self.keys:
            raise Unauthorized("this service requires API keys and has none configured (docs/operations.md, API keys)")
        name = key_name(self.keys, presented)
        if name is None:
            raise Unauthorized("the API key is not one this service knows")
        wait = self.limiter.take(name)
        if wait:
            refusal = RateLimited(f"the key {name} is past {self.settings.rate_limit_per_minute} requests a minute")
            refusal.retry_after_s = retry_after_s(wait)
            raise refusal

    def _effect_endpoint(self, effect: Effect[Any]) -> Any:
        async def endpoint(request: Request, query: BaseModel) -> Response:
            return await self.apply(request, effect, query)

        # FastAPI reads the query parameters, their bounds and docs from this effect's own model.
        endpoint.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [
                inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request),
                inspect.Parameter(
                    "query", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Annotated[effect.query_model(), Query()]
                ),
            ]
        )
        return endpoint

    def _family_endpoint(self, family: Family, members: Registry[Effect[Any]]) -> Any:
        async def endpoint(
            request: Request, name: Annotated[str, Path(description=f"the {family.member}"), Choice(members)]
        ) -> Response:
            effect = members.get(name)
            try:
                query = effect.query_model().model_validate(dict(request.query_params))
            except ValidationError as error:
                raise InvalidParameter(error_text(error.errors())) from None
            return await self.apply(request, effect, query)

        return endpoint

    async def apply(self, request: Request, effect: Effect[Any], query: BaseModel) -> Response:
        request.scope.setdefault("state", {})[EFFECT_STATE] = effect.name
        params, output = effect.resolve(query)
        data = await self._read_image(request)
        rendered: Rendered = await self._within_timeout(self.compositor.render(data, effect.name, params, output))
        for timing in rendered.timings:
            ingress_metrics().stages.observe(timing.ms / 1000, tags={"stage": timing.name})
        headers = {"Server-Timing": server_timing(rendered.timings)}
        if effect.returns == "image":
            (encoded,) = rendered.pictures.values()
            return Response(encoded.data, media_type=encoded.media_type, headers=headers)
        images = {
            name: f"data:{e.media_type};base64,{base64.b64encode(e.data).decode()}" for name, e in rendered.pictures.items()
        }
        return JSONResponse({"images": images}, headers=headers)

    async def _within_timeout(self, work: Awaitable[T]) -> T:
        """The work's result within the stage timeout; past it, the stage calls it awaits are cancelled."""
        try:
            return await asyncio.wait_for(work, timeout=self.settings.stage_timeout_s)
        except TimeoutError:
            raise StageTimeout(f"no result within {self.settings.stage_timeout_s:.0f} s") from None

    async def _read_image(self, request: Request) -> bytes:
        limit = self.settings.max_bytes
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            form = await request.form(max_files=1, max_fields=8)
            upload = form.get("image")
            if not isinstance(upload, UploadFile):
                raise InvalidImage("multipart body without a file in the field 'image'")
            if upload.size is not None and upload.size > limit:
                raise ImageTooLarge(f"the upload is {upload.size} bytes; the limit is {limit}")
            data = await upload.read(limit + 1)
        else:
            if _NON_IMAGE_TYPES.match(content_type):
                raise UnsupportedFormat(f"content-type {content_type} is not an image; send JPEG, PNG or WebP bytes")
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

    async def page(self, request: Request) -> HTMLResponse:
        """The web page, its links resolved under whatever prefix the app is served at."""
        base = request.scope.get("root_path", "").rstrip("/") + "/"
        return HTMLResponse((WEB / "index.html").read_text().replace('<base href="./">', f'<base href="{base}">'))

    async def limits(self) -> dict[str, int | None]:
        return {
            "max_bytes": self.settings.max_bytes,
            "max_pixels": self.settings.max_pixels,
            "max_side": MAX_SIDE_LIMIT,
            "concurrency": _admitted_at_once(),
        }

    async def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    async def _states(self) -> StageStates:
        # Each stage that does not answer is marked so by the Compositor; this bounds the whole wait.
        try:
            return await self._within_timeout(self.compositor.states())
        except StageTimeout as error:
            return {stage.name: f"unreachable: {error}" for stage in model_stages() if stage in self.catalogue.stages}

    async def readyz(self) -> JSONResponse:
        states = await self._states()
        reachable = all(isinstance(s, list) for s in states.values())
        models = {stage: [asdict(s) for s in found] if isinstance(found, list) else found for stage, found in states.items()}
        missing = [s.name for found in states.values() if isinstance(found, list) for s in found if not s.loaded]
        body = {
            "ready": reachable,
            "models": models,
            "missing_weights": missing,
            "install_hint": WEIGHTS_INSTALL_HINT if missing else None,
            "random_weights": self.settings.random_weights,
        }
        return JSONResponse(body, status_code=200 if reachable else 503)

    async def effects(self) -> dict[str, Any]:
        return self.catalogue.describe(await self._states())
