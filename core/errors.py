"""Errors are values with an HTTP status; the ingress maps them to JSON in one place.

Each takes a single message argument so that it pickles across Ray unchanged.
"""

from __future__ import annotations


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    """Every error the service answers, from the ingress or its proxy, has this JSON body."""
    return {"error": {"code": code, "message": message}}


class ToonError(Exception):
    status: int = 500
    code: str = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


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


class ReplicaLost(Overloaded):
    """A stage's replica stopped while it held the request; Serve is starting another: retry."""

    code = "replica_lost"


class StageTimeout(ToonError):
    status = 504
    code = "timeout"


WEIGHTS_INSTALL_HINT = "make weights (or put the official files in $TOONSERVE_WEIGHTS_DIR)"
"""What WeightsMissing tells a user to run."""
