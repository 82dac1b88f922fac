"""One real local service for the page's and the CLI's tests, started once for this package."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.keys import new_key, stored_line
from core.settings import Settings
from tests.serving import FILTERS_ONLY, deploy, local_serve

MAX_BYTES = 1024 * 1024
"""Small, so that an oversized upload is quick to make."""


KEYED = "/keyed"
"""Where the same service, filters only, needs an API key."""
KEYS = {name: new_key() for name in ("page", "cli", "client", "limited")}
"""A key for each test that uses one, so that no test spends another's rate."""
RATE_PER_MINUTE = 6
ORIGIN = "https://app.example"
"""The one origin the keyed app lets pages call it from."""


@dataclass(frozen=True)
class Service:
    url: str
    settings: Settings

    @property
    def keyed(self) -> str:
        return self.url + KEYED


@pytest.fixture(scope="package")
def service(weights_dir: Path) -> Iterator[Service]:
    settings = Settings(weights_dir=weights_dir, cache_dir=weights_dir / "cache", download_weights=False, max_bytes=MAX_BYTES)
    with local_serve() as url:
        deploy(settings, "toonserve", "/")
        keyed = settings.model_copy(
            update={
                "require_api_key": True,
                "api_keys": ",".join(stored_line(name, key) for name, key in KEYS.items()),
                "rate_limit_per_minute": RATE_PER_MINUTE,
                "cors_origins": [ORIGIN],
            }
        )
        deploy(keyed, "keyed", KEYED, catalogue=FILTERS_ONLY)
        yield Service(url, settings)
