"""The environment Ray starts with on every node, wherever it starts: `toonserve serve`, the tests'
local Ray, cluster.yaml's `ray start` commands and the RayService's containers. Ray's processes read
it once, at start, so it cannot go in a deployment's runtime_env."""

from __future__ import annotations

from deployments.proxy import PROXY_ENV

REQUEST_PATH_ENV = {
    # Arguments and results up to 8 MiB go inline in the call instead of through the object store
    # (Ray's default bound is 100 KiB): a photo, a working image and a picture are each below it, and
    # the raylet's CPU per anime image fell from 6.1 to 0.7 ms (docs/performance.md, where the time goes).
    "RAY_max_direct_call_object_size": str(8 << 20),
    # Serve's controller reconciles every 0.5 s instead of 0.1 s: its idle loop took 3.6% of a core,
    # and autoscaling and replacement work in seconds.
    "RAY_SERVE_CONTROL_LOOP_INTERVAL_S": "0.5",
}
NODE_ENV = {**PROXY_ENV, **REQUEST_PATH_ENV}
