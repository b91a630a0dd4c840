"""The siteflow web service (FastAPI): approval pages behind email links, staff sign-in, the
staff workspace (home, inbox, gate pages, project and window pages), health, JSON views.

COM-6: the app's one dependency, `siteflow.web.access.guard`, closes every route to anyone
without a session or a personal token — pages redirect to /signin, JSON views answer 401 —
except the few it names as open (health, approval and password links, sign-in). The API's
description (/api/openapi.json) and its browser (/api/docs) are closed too: they list no data,
but this host's address goes out in every mail to customers, and nothing here is for
someone who cannot sign in; a signed-in user or a token reads them as before.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

import siteflow.resumer  # noqa: F401  (loads Prefect's client at start, not on the first approval)
from models.text_kinds import problem_lines
from siteflow.identity.single_sign_on import sso_config
from siteflow.web import (
    api,
    api_docs,
    approvals,
    document_prints,
    field_page,
    handover_download,
    incident_pages,
    incidents_api,
    personal_tokens,
    problems_api,
    signin,
    single_sign_on,
    subjects,
    verify,
    workspace,
)
from siteflow.web.access import SignInFirst, guard
from siteflow.web.api_docs import OPENAPI
from siteflow.web.pages import HEADERS
from siteflow.web.security_headers import SecurityHeaders

sso_config()  # half a single sign-on configuration stops the web service at start, with its reason

app = FastAPI(title="siteflow", docs_url=None, openapi_url=None, dependencies=[Depends(guard)])
app.add_middleware(SecurityHeaders)
app.include_router(approvals.router)
app.include_router(signin.router)
app.include_router(single_sign_on.router)
app.include_router(api.router)
app.include_router(incidents_api.router)
app.include_router(problems_api.router)
app.include_router(subjects.router)
app.include_router(handover_download.router)
app.include_router(workspace.router)
app.include_router(document_prints.router)
app.include_router(verify.router)
app.include_router(personal_tokens.router)
app.include_router(field_page.router)
app.include_router(incident_pages.router)
app.include_router(api_docs.router)


@app.exception_handler(StarletteHTTPException)
async def plain_not_found(request: Request, exc: StarletteHTTPException) -> Response:
    """Anything under /a/ that is not a link answers with the same plain page as a bad token."""
    if exc.status_code == 404 and request.url.path.startswith("/a"):
        return approvals.invalid_page(404)
    return await http_exception_handler(request, exc)


@app.exception_handler(RequestValidationError)
async def refused_request(request: Request, exc: RequestValidationError) -> Response:
    """A request body or form refused, each problem naming its field (issue #10). FastAPI's own
    answer echoes the input, and an input holding a lone surrogate cannot be encoded: a 500."""
    return JSONResponse(
        {"detail": "the request is not valid", "problems": problem_lines(exc.errors())}, status_code=422
    )


@app.exception_handler(SignInFirst)
async def sign_in_first(request: Request, exc: SignInFirst) -> Response:
    """A page asked for without a session: to /signin, and back here afterwards (COM-6)."""
    return RedirectResponse(exc.location, status_code=303, headers=HEADERS)


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get(OPENAPI, include_in_schema=False)
def openapi() -> dict[str, Any]:
    return app.openapi()
