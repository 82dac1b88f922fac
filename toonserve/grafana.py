"""deploy/grafana/toonserve.json: a Grafana dashboard of toonserve's own metrics (deployments/metrics.py).

Import it beside the Serve dashboards Ray writes into its session folder; its queries name the
metrics as Ray exports them. `make serve-config` rewrites it; a test fails when the committed one differs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deployments.metrics import (
    BATCH_SIZE,
    EXPORTED_PREFIX,
    PROXY_REFUSALS,
    QUEUE_WAIT_SECONDS,
    REFUSALS,
    REQUEST_SECONDS,
    REQUESTS,
    STAGE_SECONDS,
    WEIGHTS_LOADED,
)

DASHBOARD = Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "toonserve.json"
WINDOW = "[$__rate_interval]"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def exported(name: str, suffix: str = "") -> str:
    return f"{EXPORTED_PREFIX}{name}{suffix}"


def per_s(counter: str, by: str) -> str:
    return f"sum by ({by}) (rate({exported(counter, '_total')}{WINDOW}))"


def quantile(q: float, name: str, by: str) -> str:
    return f"histogram_quantile({q}, sum by (le, {by}) (rate({exported(name, '_bucket')}{WINDOW})))"


def mean(name: str, by: str) -> str:
    return f"sum by ({by}) (rate({exported(name, '_sum')}{WINDOW})) / sum by ({by}) (rate({exported(name, '_count')}{WINDOW}))"


def panel(index: int, title: str, unit: str, targets: list[tuple[str, str]], kind: str = "timeseries") -> dict[str, Any]:
    return {
        "id": index + 1,
        "type": kind,
        "title": title,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": 12, "x": 12 * (index % 2), "y": 8 * (index // 2)},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {"refId": chr(ord("A") + n), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
            for n, (expr, legend) in enumerate(targets)
        ],
    }


PANELS: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("Requests by effect and status", "reqps", [(per_s(REQUESTS, "effect, status"), "{{effect}} {{status}}")]),
    (
        "Time to answer by effect (p50, p95)",
        "s",
        [(quantile(q, REQUEST_SECONDS, "effect"), f"p{round(q * 100)} {{{{effect}}}}") for q in (0.5, 0.95)],
    ),
    ("Time per stage (p95)", "s", [(quantile(0.95, STAGE_SECONDS, "stage"), "{{stage}}")]),
    ("Images per batch (mean)", "short", [(mean(BATCH_SIZE, "stage"), "{{stage}}")]),
    ("Wait for a batch (p95)", "s", [(quantile(0.95, QUEUE_WAIT_SECONDS, "stage"), "{{stage}}")]),
    (
        "Refusals by reason",
        "reqps",
        [(per_s(REFUSALS, "reason"), "ingress {{reason}}"), (per_s(PROXY_REFUSALS, "reason"), "proxy {{reason}}")],
    ),
    (
        "Weights loaded (1) or missing (0), per replica",
        "short",
        [(f"max by (model, origin, replica) ({exported(WEIGHTS_LOADED)})", "{{model}} {{origin}} {{replica}}")],
    ),
]
"""(title, unit, [(PromQL, legend)]) per panel."""


def dashboard() -> dict[str, Any]:
    return {
        "title": "toonserve",
        "uid": "toonserve",
        "tags": ["toonserve", "ray", "serve"],
        "timezone": "browser",
        "schemaVersion": 39,
        "refresh": "10s",
        "time": {"from": "now-30m", "to": "now"},
        "templating": {
            "list": [{"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus", "hide": 0}]
        },
        "panels": [panel(index, title, unit, targets) for index, (title, unit, targets) in enumerate(PANELS)],
    }


def dashboard_text() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"
