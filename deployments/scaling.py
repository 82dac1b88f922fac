"""Replica autoscaling tuned for bursts of traffic, shared by every deployment's defaults.

Serve's defaults suit steady traffic: a 30 s look-back, 30 s before scaling up, 600 s before
scaling down. A burst of photos is over before that reacts. Here:
- metrics_interval_s 1: replicas and handles report their ongoing requests every second, not
  every 10 s (the field is marked deprecated in favour of two cluster-wide environment variables,
  RAY_SERVE_{REPLICA,HANDLE}_AUTOSCALING_METRIC_PUSH_INTERVAL_S, but Serve 2.60 still reads it);
- look_back_period_s 5: the ongoing-request average that drives decisions spans 5 s, so a burst
  shows within seconds, while a single spike of one second is damped five-fold;
- upscale_delay_s 2: two seconds above target before adding replicas: quick, not twitchy;
- downscale_delay_s 60: a minute below target before removing any, so the dips inside a bursty
  minute do not tear down replicas that the next wave needs (no thrashing);
- downscaling_factor 0.5: then shrink halfway toward the target at each decision, not all at once.
"""

from __future__ import annotations

from typing import Any

BURST_TUNING: dict[str, float] = {
    "metrics_interval_s": 1.0,
    "look_back_period_s": 5.0,
    "upscale_delay_s": 2.0,
    "downscale_delay_s": 60.0,
    "downscaling_factor": 0.5,
}


def bursty(min_replicas: int, max_replicas: int, target_ongoing_requests: float) -> dict[str, Any]:
    return {
        "min_replicas": min_replicas,
        "max_replicas": max_replicas,
        "target_ongoing_requests": target_ongoing_requests,
        **BURST_TUNING,
    }


HEALTH_CHECK_PERIOD_S = 2.0
"""health_check_period_s for every deployment: Serve notices a dead replica only when its next health
check fails, so the period bounds how long one goes unreplaced. At Serve's 10 s a killed ArtFilters
replica was first seen dead 9.9 s on; the checks cost no CPU measurable at rest (docs/operations.md)."""

REPLACE_FIRST = 100
"""max_surge_percent for every deployment: on a redeploy, replacements start before the replicas they
replace stop, so that a deployment of one replica keeps answering (Serve's default, 0, stops first)."""
