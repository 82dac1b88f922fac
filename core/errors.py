"""Errors are values with an HTTP status; the ingress maps them to JSON in one place.

Each takes a single message argument so that it pickles across Ray unchanged.
"""

from __future__ import annotations

RETRY_AFTER_S = 1
"""Seconds a refused client waits before trying again: about one batch's work on a CPU replica."""


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    """Every error the service answers, from the ingress or its proxy, has this JSON body."""
    return {"error": {"code": code, "message": message}}


class ToonError(Exception):
    status: int = 500
    code: str = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def headers(self) -> dict[str, str] | None:
        """HTTP headers the answer carries besides the JSON body."""
        return None


class InvalidImage(ToonError):
    status = 400
    code = "invalid_image"


class ImageTooLarge(ToonError):
    status = 413
    code = "image_too_large"


class UnsupportedFormat(ToonError):
    status = 415
    code = "unsupported_media_type"


class InvalidParameter(ToonError):
    status = 422
    code = "invalid_parameter"


class WeightsMissing(ToonError):
    status = 503
    code = "weights_missing"


class Overloaded(ToonError):
    status = 503
    code = "overloaded"

    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(RETRY_AFTER_S)}


class ReplicaLost(Overloaded):
    """A stage's replica stopped while it held the request; Serve is starting another: retry."""

    code = "replica_lost"


class Unauthorized(ToonError):
    status = 401
    code = "unauthorized"

    def headers(self) -> dict[str, str] | None:
        return {"WWW-Authenticate": "Bearer"}


class RateLimited(ToonError):
    """A key past its request rate; `retry_after_s` says when its next request will be taken."""

    status = 429
    code = "rate_limited"
    retry_after_s = RETRY_AFTER_S

    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(self.retry_after_s)}


class StageTimeout(ToonError):
    status = 504
    code = "timeout"


WEIGHTS_INSTALL_HINT = "make weights (or put the official files in $TOONSERVE_WEIGHTS_DIR)"
"""What WeightsMissing tells a user to run."""
