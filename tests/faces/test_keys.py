"""API keys, the rate per key and CORS, over real HTTP: an app that needs a key beside one that does not."""

from __future__ import annotations

import httpx
import pytest

from tests.faces.conftest import KEYS, ORIGIN, RATE_PER_MINUTE, Service
from tests.images import encode, photo
from toonserve.client import key_headers, toonserve_client

pytestmark = pytest.mark.slow

WATERCOLOR = "/v1/filters/watercolor"


def assert_refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == code


def test_without_a_valid_key_every_v1_call_is_401_in_json(service: Service) -> None:
    data = encode(photo(64, 48), "PNG")
    for headers in ({}, {"Authorization": "Bearer tsk_not-a-key"}, {"Authorization": f"Basic {KEYS['client']}"}):
        refused = httpx.post(service.keyed + WATERCOLOR, content=data, headers=headers)
        assert_refused(refused, 401, "unauthorized")
        assert refused.headers["www-authenticate"] == "Bearer"
        assert_refused(httpx.get(service.keyed + "/v1/effects", headers=headers), 401, "unauthorized")
    # What a load balancer and a person's browser ask first needs no key.
    for path in ("/healthz", "/readyz", "/"):
        assert httpx.get(service.keyed + path).status_code == 200


def test_a_valid_key_is_served(service: Service) -> None:
    with toonserve_client(service.keyed, key=KEYS["client"]) as client:
        assert client.post(WATERCOLOR, content=encode(photo(64, 48), "PNG")).status_code == 200


def test_a_key_past_its_rate_gets_429_with_retry_after_and_others_are_not_held(service: Service) -> None:
    with httpx.Client(base_url=service.keyed, headers=key_headers(KEYS["limited"])) as limited:
        answers = [limited.get("/v1/limits") for _ in range(RATE_PER_MINUTE + 1)]
    assert [a.status_code for a in answers] == [200] * RATE_PER_MINUTE + [429]
    assert_refused(answers[-1], 429, "rate_limited")
    assert int(answers[-1].headers["retry-after"]) >= 1
    assert httpx.get(service.keyed + "/v1/limits", headers=key_headers(KEYS["client"])).status_code == 200


def test_cors_is_off_by_default_and_lets_the_configured_origin_in(service: Service) -> None:
    preflight = {
        "Origin": ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
    }
    assert "access-control-allow-origin" not in httpx.options(service.url + WATERCOLOR, headers=preflight).headers
    allowed = httpx.options(service.keyed + WATERCOLOR, headers=preflight)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    # A refusal reaches the calling page readable, and another origin is not let in.
    refused = httpx.post(service.keyed + WATERCOLOR, content=b"x", headers={"Origin": ORIGIN})
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == ORIGIN
    elsewhere = httpx.options(service.keyed + WATERCOLOR, headers={**preflight, "Origin": "https://elsewhere.example"})
    assert "access-control-allow-origin" not in elsewhere.headers
