"""The signed-in person's own personal API tokens: /tokens (list, make one, end one).

Why a page: `siteflow login` trades a password for a token, but staff who sign in by single
sign-on may have no password. Here, signed in (by either), they make a token for the CLI and
paste it into `siteflow login --token-stdin` — the way GitHub's personal access tokens work.
A new token is shown once, on the answer to the form, and never again (only its SHA-256 is
kept); each token can be ended here. Only a browser session reaches these forms (a token
cannot mint more tokens), every form is CSRF-checked, and issuing and ending are recorded in
the staff trail.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from siteflow.db import session_scope
from siteflow.identity.api_tokens import NewToken, revoke_own_token, tokens_of
from siteflow.identity.audit import StaffAudit, StaffEvent, record
from siteflow.identity.signin import grant_token
from siteflow.settings import get_settings
from siteflow.site_time import site_time
from siteflow.web.access import Actor, session_actor, signin_redirect
from siteflow.web.csrf import FIELD, form_ok, form_page
from siteflow.web.pages import HEADERS
from siteflow.web.signin import address_of

router = APIRouter()

FORM_EXPIRED = "页面已过期，请重新提交 / This page had expired; please submit it again"
LABEL_MAX = 120


def _page(
    request: Request, actor: Actor, status: int = 200, new: NewToken | None = None, error: str | None = None
) -> Response:
    now = datetime.now(UTC)
    zone = get_settings().upgrade_timezone
    rows = [
        {
            "id": t.id,
            "label": t.label,
            "created": site_time(t.created_at, zone),
            "expires": site_time(t.expires_at, zone),
            "used": site_time(t.last_used_at, zone) if t.last_used_at else None,
            "live": t.live(now),
        }
        for t in tokens_of(actor.user.user_id)
    ]
    return form_page(
        request,
        "ws_tokens.html.j2",
        status=status,
        who=actor.user,
        tokens=rows,
        new=new.token.get_secret_value() if new else None,
        new_expires=site_time(new.expires_at, zone) if new else None,
        url=get_settings().resolved_public_url,
        days=get_settings().token_days,
        error=error,
    )


@router.get("/tokens", response_class=HTMLResponse)
def tokens_page(request: Request) -> Response:
    actor = session_actor(request)
    if actor is None:
        return RedirectResponse(signin_redirect(request), status_code=303, headers=HEADERS)
    return _page(request, actor)


@router.post("/tokens", response_class=HTMLResponse)
def make_token(
    request: Request,
    label: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form(alias=FIELD)] = "",
) -> Response:
    actor = session_actor(request)
    if actor is None:
        return RedirectResponse(signin_redirect(request), status_code=303, headers=HEADERS)
    if not form_ok(request, csrf):
        return _page(request, actor, 403, error=FORM_EXPIRED)
    name = " ".join(label.split())[:LABEL_MAX] or "web"
    new = grant_token(actor.user.user_id, actor.user.email, name, address_of(request))
    return _page(request, actor, 201, new=new)


@router.post("/tokens/{token_id}/revoke", response_class=HTMLResponse)
def end_token(token_id: str, request: Request, csrf: Annotated[str, Form(alias=FIELD)] = "") -> Response:
    actor = session_actor(request)
    if actor is None:
        return RedirectResponse(signin_redirect(request), status_code=303, headers=HEADERS)
    if not form_ok(request, csrf):
        return _page(request, actor, 403, error=FORM_EXPIRED)
    user = actor.user
    with session_scope() as session:
        ended = revoke_own_token(session, user.user_id, token_id)
        if ended:
            record(
                session,
                StaffEvent.TOKEN_REVOKED,
                user.email,
                StaffAudit(
                    user_id=user.user_id, email=user.email, address=address_of(request), token_id=token_id
                ),
            )
    if not ended:
        return _page(request, actor, 404, error="没有这个令牌 / No such token of yours")
    return RedirectResponse("/tokens", status_code=303, headers=HEADERS)
