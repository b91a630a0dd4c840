"""The siteflow web service (FastAPI): approval pages behind email links, staff sign-in, health,
JSON views."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from starlette.exceptions import HTTPException as StarletteHTTPException

import siteflow.resumer  # noqa: F401  (loads Prefect's client at start, not on the first approval)
from siteflow.queries import as_json, list_gates, list_projects
from siteflow.web import api, approvals, signin

app = FastAPI(title="siteflow", docs_url="/api/docs", openapi_url="/api/openapi.json")
app.include_router(approvals.router)
app.include_router(signin.router)
app.include_router(api.router)


@app.exception_handler(StarletteHTTPException)
async def plain_not_found(request: Request, exc: StarletteHTTPException) -> Response:
    """Anything under /a/ that is not a link answers with the same plain page as a bad token."""
    if exc.status_code == 404 and request.url.path.startswith("/a"):
        return approvals.invalid_page(404)
    return await http_exception_handler(request, exc)


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/api/projects")
def projects() -> list[dict[str, Any]]:
    return as_json(list_projects())


@app.get("/api/gates")
def gates(project: str | None = None, include_closed: bool = False) -> list[dict[str, Any]]:
    return as_json(list_gates(project, include_closed))
