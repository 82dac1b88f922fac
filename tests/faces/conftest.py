"""One real local service for the page's and the CLI's tests, started once for this package."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.settings import Settings
from tests.serving import deploy, local_serve

MAX_BYTES = 1024 * 1024
"""Small, so that an oversized upload is quick to make."""


@dataclass(frozen=True)
class Service:
    url: str
    settings: Settings


@pytest.fixture(scope="package")
def service(weights_dir: Path) -> Iterator[Service]:
    settings = Settings(weights_dir=weights_dir, cache_dir=weights_dir / "cache", download_weights=False, max_bytes=MAX_BYTES)
    with local_serve() as url:
        deploy(settings, "toonserve", "/")
        yield Service(url, settings)
