"""The public verify page of printed documents (issue #12): ``/verify`` and ``/verify/{code}``.

Open to anyone (the QR code on a paper opens it; ``siteflow.web.access.OPEN_ROUTES`` names it):
it shows only what :mod:`siteflow.documents.verification` puts in its view — title, version,
SHA-256, signers' names and when, whether a signed scan is on file, and whether the paper is
the current signed version, superseded (ENG-15) or not yet signed. An unknown code gets a
plain "not found" page; unknown codes are counted per client address in the database with the
approval links' bad tokens (under a key of their own), and an address past the limit is
answered 429 for any code until its count ages out, so codes cannot be enumerated.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from siteflow.db import read_scope
from siteflow.documents import codes
from siteflow.documents.qr import qr_svg
from siteflow.documents.verification import PaperState, verify
from siteflow.link_throttle import note_bad_token, throttled
from siteflow.web.pages import HEADERS, page

router = APIRouter()

STATE_TEXT = {
    PaperState.CURRENT_SIGNED: ("有效：当前已签字版本", "Valid: this is the current signed version"),
    PaperState.SUPERSEDED: (
        "已作废：已被新版本取代（ENG-15）",
        "Superseded by a newer version (ENG-15): this paper no longer counts",
    ),
    PaperState.NOT_SIGNED: ("已发布，尚未签字", "Issued, not yet signed"),
}


def _client_key(request: Request) -> str:
    return "verify:" + (request.client.host if request.client else "?")


@router.get("/verify", response_class=HTMLResponse)
def verify_form(request: Request, code: str = "") -> Response:
    """The form to type a code; with ``?code=…`` (the form's GET) it goes to that code's page."""
    if code:
        canonical = codes.canonical(code)
        target = codes.grouped(canonical) if canonical else "unknown"
        return RedirectResponse(f"/verify/{target}", status_code=303, headers=HEADERS)
    return page("verify_form.html.j2")


@router.get("/verify/{code}", response_class=HTMLResponse)
def verify_page(code: str, request: Request) -> Response:
    key = _client_key(request)
    if throttled(key):
        return page("verify_not_found.html.j2", status=429, throttled=True)
    with read_scope() as session:
        found = verify(session, code)
    if found is None:
        return page("verify_not_found.html.j2", status=429 if note_bad_token(key) else 404, throttled=False)
    canonical = codes.canonical(code) or ""
    zh, en = STATE_TEXT[found.state]
    return page(
        "verify.html.j2",
        v=found,
        state_zh=zh,
        state_en=en,
        ok=found.state is PaperState.CURRENT_SIGNED,
        qr=qr_svg(codes.verify_url(canonical), scale=2),
    )
