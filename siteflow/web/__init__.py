"""The siteflow web service (FastAPI). Today: health and read-only JSON views of gates.

The email approval pages (issue #4) will live here, next to their templates.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from siteflow.queries import as_json, list_gates, list_projects

app = FastAPI(title="siteflow", docs_url="/api/docs", openapi_url="/api/openapi.json")


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/api/projects")
def projects() -> list[dict[str, Any]]:
    return as_json(list_projects())


@app.get("/api/gates")
def gates(project: str | None = None, include_closed: bool = False) -> list[dict[str, Any]]:
    return as_json(list_gates(project, include_closed))
