"""A call to another deployment whose caller stops waiting, as the stage timeout does, is cancelled
there too: Serve itself cancels a replica's calls only when that replica's own request is cancelled."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import cast

import pytest
from ray import serve
from ray.serve import Deployment
from ray.serve.handle import DeploymentHandle

from deployments.calls import result_of
from tests.serving import local_serve

APP = "calls"
SMALL = {"num_cpus": 0.1}


@serve.deployment(ray_actor_options=SMALL)
class Stage:
    def __init__(self) -> None:
        self.cancelled = 0
        self.finished = 0

    async def work(self, seconds: float) -> str:
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        self.finished += 1
        return "finished"

    def counts(self) -> tuple[int, int]:
        return self.cancelled, self.finished


@serve.deployment(ray_actor_options=SMALL)
class Caller:
    def __init__(self, stage: DeploymentHandle) -> None:
        self.stage = stage

    async def wait(self, work_s: float, wait_s: float) -> str:
        try:
            result: str = await asyncio.wait_for(result_of(self.stage.work.remote(work_s)), timeout=wait_s)
            return result
        except TimeoutError:
            return "gave up"


@pytest.fixture(scope="module")
def caller() -> Iterator[DeploymentHandle]:
    with local_serve(num_cpus=2):
        # mypy sees the classes, not the Deployments that @serve.deployment made of them.
        stage, calling = cast(Deployment, Stage), cast(Deployment, Caller)
        yield serve.run(calling.bind(stage.bind()), name=APP, route_prefix=None)


def stage_counts() -> tuple[int, int]:
    counts: tuple[int, int] = serve.get_deployment_handle("Stage", app_name=APP).counts.remote().result()
    return counts


def test_a_call_given_up_on_is_cancelled_at_the_stage(caller: DeploymentHandle) -> None:
    assert caller.wait.remote(60.0, 0.5).result() == "gave up"
    deadline = time.monotonic() + 30
    while stage_counts() != (1, 0) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert stage_counts() == (1, 0)


def test_a_call_waited_for_finishes(caller: DeploymentHandle) -> None:
    assert caller.wait.remote(0.1, 30.0).result() == "finished"
    assert stage_counts()[1] == 1
