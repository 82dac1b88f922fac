"""Awaiting another deployment: its queue being full becomes Overloaded (503), its replica dying under
the request ReplicaLost (503, retried), an error raised there comes back as itself, and a caller that
stops waiting (the stage timeout) cancels the call there."""

from __future__ import annotations

import asyncio
from typing import Any

from ray.exceptions import RayActorError, RayTaskError
from ray.serve.exceptions import BackPressureError
from ray.serve.handle import DeploymentResponse

from core.errors import Overloaded, ReplicaLost, ToonError


async def result_of(response: DeploymentResponse) -> Any:
    try:
        return await response
    except asyncio.CancelledError:
        # Serve cancels a replica's calls only when its own request is cancelled, not when an awaiting task is.
        response.cancel()
        raise
    except BackPressureError:
        raise Overloaded("the service is at capacity; retry shortly") from None
    except RayActorError:
        raise ReplicaLost("a replica stopped while working on this request; another is starting: retry shortly") from None
    except RayTaskError as error:
        # A ToonError raised in another replica arrives wrapped; re-raise the original.
        if isinstance(error.cause, ToonError):
            raise error.cause from None
        raise
