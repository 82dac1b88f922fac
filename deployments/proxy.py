"""What Serve's HTTP proxy does before a request reaches the ingress: liveness answered at once, and
the proxy's own refusals put in the service's words.

Serve wraps every proxy in `middlewares()` when RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH names it
(PROXY_ENV, part of deployments.environment.NODE_ENV). The proxy refuses by itself when the ingress's queue is full,
and when it has no ingress to send to; it answers in plain text. Here such a refusal becomes the JSON
error the ingress gives, with Retry-After, so that a client has one contract to honour. When the
ingress replica dies under a request, the proxy answers nothing (its server would say a bare 500):
here that becomes 503 replica_lost, as a lost stage replica is, since the request can be sent again.
"""

from __future__ import annotations

import json

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import RETRY_AFTER_S, Overloaded, ReplicaLost, StageTimeout, error_body
from deployments.metrics import proxy_metrics

PROXY_ENV = {
    "RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH": "deployments.proxy:middlewares",
    # Serve replaces a proxy after three failed health checks a period apart: at its default 10 s a
    # dead proxy leaves its node unreachable for about 27 s, at 1 s for about 5 s (docs/operations.md).
    # The check's timeout stays Serve's 10 s, so that a busy proxy is never taken for a dead one.
    "RAY_SERVE_PROXY_HEALTH_CHECK_PERIOD_S": "1",
}
LIVENESS = "/healthz"
"""Answered by the proxy: the node takes connections. It never waits behind image work."""
_REFUSALS = {503: Overloaded.code, 408: StageTimeout.code}
"""The proxy's own refusals, by status, and the error code each is given: the ingress's codes for the same."""


def middlewares() -> list[Middleware]:
    return [Middleware(ProxyAnswers)]


class ProxyAnswers:
    """A pure ASGI middleware: Starlette's BaseHTTPMiddleware would buffer every response body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
        elif scope["path"] == LIVENESS and scope["method"] in ("GET", "HEAD"):
            await _respond(send, 200, b'{"status":"ok"}', [])
        else:
            worded = _Worded(send)
            await self.app(scope, receive, worded)
            if not worded.started:
                message = "the ingress replica stopped before answering; another is starting"
                await _refuse(send, 503, ReplicaLost.code, message, [])


async def _refuse(send: Send, status: int, code: str, said: str, headers: list[tuple[bytes, bytes]]) -> None:
    proxy_metrics().refusals.inc(tags={"reason": code})
    body = json.dumps(error_body(code, f"{said}; retry after {RETRY_AFTER_S} s")).encode()
    await _respond(send, status, body, [*headers, (b"retry-after", str(RETRY_AFTER_S).encode())])


async def _respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _Worded:
    """Passes the ingress's answers through; rewrites a refusal the proxy wrote in plain text."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.refusal: Message | None = None
        self.text = b""
        self.started = False

    async def __call__(self, message: Message) -> None:
        self.started = True
        if message["type"] == "http.response.start" and self._is_proxy_refusal(message):
            self.refusal = message
            return
        if self.refusal is None:
            await self.send(message)
            return
        self.text += message.get("body", b"")
        if message.get("more_body", False):
            return
        status = self.refusal["status"]
        said = self.text.decode(errors="replace").strip().rstrip(".")
        kept = [
            (k, v)
            for k, v in self.refusal.get("headers", [])
            if k.lower() not in (b"content-type", b"content-length", b"retry-after")
        ]
        await _refuse(self.send, status, _REFUSALS[status], said, kept)

    @staticmethod
    def _is_proxy_refusal(start: Message) -> bool:
        headers = dict(start.get("headers", []))
        return start["status"] in _REFUSALS and not headers.get(b"content-type", b"").startswith(b"application/json")
