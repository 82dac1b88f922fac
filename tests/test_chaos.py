"""SIGKILL a replica of every deployment, and the proxy, under a steady load through toonserve.client:
every request succeeds, and each process is replaced and healthy within REPLACED_WITHIN_S."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from ray import serve

from core.settings import Settings
from tests.chaos import PROXY, REPLACED_WITHIN_S, chaos, healthy_in
from tests.images import encode, photo
from tests.serving import deploy, local_serve

pytestmark = pytest.mark.slow

APP = "toonserve"


@pytest.fixture(scope="module")
def url(weights_dir: Path) -> Iterator[str]:
    settings = Settings(weights_dir=weights_dir, cache_dir=weights_dir / "cache", download_weights=False)
    with local_serve() as base:
        deploy(settings, APP, "/")
        yield base


def test_every_kind_of_process_killed_under_load_loses_no_request(url: str) -> None:
    body = encode(photo(480, 320), "JPEG")
    # Between them these reach every deployment: anime, the filters, and matting. Light ones, so that
    # the load is steady on a CPU without bf16 too: a saturated machine starts no replacement in time.
    paths = ("anime?max_side=256", "filters/watercolor?max_side=256", "matte?model=u2netp&max_side=256")
    requests = [(f"/v1/{path}", body) for path in paths]
    victims = [*serve.status().applications[APP].deployments, PROXY]

    async def healthy(kind: str) -> bool:
        return healthy_in(await asyncio.to_thread(serve.status), APP, kind)

    found, outcomes = asyncio.run(chaos(url, psutil.Process(), APP, victims, healthy, every_s=8, rate=2, requests=requests))
    print("faults:", *found, sep="\n  ")
    assert [fault.killed for fault in found] == victims
    # A string: pytest shortens an object's repr in the message, and the slow replacement is in the middle.
    assert all(fault.replaced_after_s < REPLACED_WITHIN_S for fault in found), "\n".join(map(str, found))
    # Under load throughout: requests were sent while each fault was being ridden out.
    for fault in found:
        assert any(fault.at_s <= o.sent_s <= fault.at_s + fault.replaced_after_s for o in outcomes), fault
    assert all(outcome.status == 200 for outcome in outcomes), ([o for o in outcomes if o.status != 200], found)
