"""A client for toonserve that retries what the service asks to be retried.

toonserve sheds load rather than queueing it without bound: a full queue answers 503 with a
Retry-After header, a key past its request rate 429 with one, and a request that waited too long in
Serve answers 408. All are safe to send again (every endpoint is a pure function of the photo and
the query), so this client does, with exponential backoff and jitter. It waits at least what Retry-After asks, plus a random
share of it, so that the clients turned away by one burst do not all come back in the same
instant.

    from toonserve.client import toonserve_client

    with toonserve_client("http://127.0.0.1:8000") as client:
        response = client.post("/v1/anime?style=paprika", content=open("photo.jpg", "rb").read())
        response.raise_for_status()

`async_toonserve_client` is the same for asyncio. Any other status (400, 401, 413, 415, 422, 504)
comes back at once: sending it again would not help. Where the service needs an API key, pass
`key=`: it goes as `Authorization: Bearer <key>`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

import httpx
from httpx_retries import Retry, RetryTransport

RETRIED_STATUSES = (408, 429, 503)
KEY_ENV = "TOONSERVE_API_KEY"
"""Where the command line tools find the API key when --key is not given."""
DEFAULT_ATTEMPTS = 8


class JitteredRetry(Retry):
    """Retry that also spreads the Retry-After wait: between 1x and 1.5x what the server asked."""

    def _calculate_sleep(self, headers: httpx.Headers | Mapping[str, str]) -> float:
        wait = super()._calculate_sleep(headers)
        return wait * random.uniform(1.0, 1.5) if headers.get("Retry-After") else wait


def retry_policy(attempts: int = DEFAULT_ATTEMPTS, backoff_s: float = 0.25, max_wait_s: float = 10.0) -> Retry:
    """Up to `attempts` retries of 408, 429 and 503 and of dropped connections, POST included."""
    return JitteredRetry(
        total=attempts,
        allowed_methods=["GET", "POST"],
        status_forcelist=RETRIED_STATUSES,
        # A connection refused, closed or reset before the answer: a killed proxy ends its connections
        # with FIN or RST by what it had left unread, so both are dropped connections.
        retry_on_exceptions=[httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError],
        backoff_factor=backoff_s,
        # Half to all of each backoff: retries refused by a restarting proxy span at least 7.75 s by the
        # sixth, whatever the draws, past the 5 s a proxy restart takes (docs/operations.md).
        backoff_jitter=0.5,
        respect_retry_after_header=True,
        max_backoff_wait=max_wait_s,
    )


def key_headers(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


def toonserve_client(
    base_url: str,
    *,
    key: str | None = None,
    retry: Retry | None = None,
    timeout_s: float = 120.0,
    limits: httpx.Limits | None = None,
) -> httpx.Client:
    transport = RetryTransport(httpx.HTTPTransport(limits=limits or httpx.Limits()), retry or retry_policy())
    return httpx.Client(base_url=base_url, transport=transport, timeout=timeout_s, headers=key_headers(key))


def async_toonserve_client(
    base_url: str,
    *,
    key: str | None = None,
    retry: Retry | None = None,
    timeout_s: float = 120.0,
    limits: httpx.Limits | None = None,
) -> httpx.AsyncClient:
    transport = RetryTransport(httpx.AsyncHTTPTransport(limits=limits or httpx.Limits()), retry or retry_policy())
    return httpx.AsyncClient(base_url=base_url, transport=transport, timeout=timeout_s, headers=key_headers(key))
