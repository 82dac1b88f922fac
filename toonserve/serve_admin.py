"""Serve's REST API on the Ray dashboard (port 8265): deploy a config, read replicas and their nodes.

The dashboard wants `Authorization: Bearer TOKEN` when the cluster runs with token
authentication: the token comes from RAY_AUTH_TOKEN, else the file at RAY_AUTH_TOKEN_PATH, else
~/.ray/auth_token, which is where `ray start` and `ray get-auth-token --generate` put it. On a
cluster started with cluster.yaml, reach the dashboard through `ray dashboard cluster.yaml`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

DEFAULT_DASHBOARD = "http://127.0.0.1:8265"
APPLICATIONS = "/api/serve/applications/"


def auth_token() -> str | None:
    if token := os.environ.get("RAY_AUTH_TOKEN", "").strip():
        return token
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", Path.home() / ".ray" / "auth_token"))
    return path.read_text().strip() if path.is_file() else None


@dataclass(frozen=True)
class Replica:
    deployment: str
    replica_id: str
    node_id: str
    state: str


class ServeAdmin:
    def __init__(self, dashboard_url: str = DEFAULT_DASHBOARD, token: str | None = None, timeout_s: float = 30.0) -> None:
        token = token if token is not None else auth_token()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=dashboard_url, headers=headers, timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ServeAdmin:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def deploy(self, config: dict[str, Any]) -> None:
        """What `serve deploy` does: PUT the whole config; Serve reconciles toward it."""
        self._http.put(APPLICATIONS, json=config).raise_for_status()

    def details(self) -> dict[str, Any]:
        response = self._http.get(APPLICATIONS)
        response.raise_for_status()
        details: dict[str, Any] = response.json()
        return details

    def application_status(self, app: str) -> str | None:
        application = self.details().get("applications", {}).get(app)
        return None if application is None else str(application["status"])

    def replicas(self, app: str) -> list[Replica]:
        application = self.details().get("applications", {}).get(app) or {}
        return [
            Replica(name, r["replica_id"], r.get("node_id") or "", r["state"])
            for name, deployment in application.get("deployments", {}).items()
            for r in deployment.get("replicas", [])
        ]
