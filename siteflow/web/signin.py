"""Staff sign-in pages: /signin, /signout, /reset/{token} (set a password) and /me.

Chinese first with English beside it, like the approval pages, with the same headers (never
cached). A wrong email and a wrong password get the same message, and the email stays filled
in. Every form is CSRF-protected (`siteflow.web.csrf`). The session cookie is random,
HttpOnly, SameSite=Lax, Secure (and ``__Host-``) when SITEFLOW_PUBLIC_URL is https, Path=/, and
lives `session_max_hours`; the server ends the session sooner when it is idle, disabled or
reset. Throttling (429) is `siteflow.identity.signin_throttle`'s; forged password links count
as bad tokens for `siteflow.link_throttle`, like forged approval links.
"""

from __future__ import annotations

import enum
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from siteflow.identity.password_links import LinkState, LinkView, look_up, use_link
from siteflow.identity.passwords import MIN_LENGTH, WeakPassword
from siteflow.identity.sessions import NewSession, SignedIn, signed_in
from siteflow.identity.signin import SigninResult, sign_in, sign_out
from siteflow.identity.single_sign_on import sso_config
from siteflow.link_throttle import note_bad_token
from siteflow.settings import get_settings
from siteflow.web.access import SESSION_COOKIE
from siteflow.web.csrf import FIELD, cookie_name, form_ok, form_page
from siteflow.web.pages import HEADERS, page

router = APIRouter()


class Say(enum.StrEnum):
    WRONG = "邮箱或密码不正确 / Wrong email or password"
    FORM_EXPIRED = "页面已过期，请重新提交 / This page had expired; please submit it again"
    TOO_MANY = "尝试次数过多，请 {minutes} 分钟后再试 / Too many attempts; try again in {minutes} minutes"
    PASSWORDS_DIFFER = "两次输入的密码不一致 / The two passwords differ"
    NOT_SIGNED_IN = "未登录 / Not signed in"


LINK_PAGES = {
    LinkState.USED: ("此链接已使用过 / This link has already been used", 410),
    LinkState.EXPIRED: ("此链接已过期 / This link has expired", 410),
    LinkState.UNKNOWN: ("此链接无效 / This link is not valid", 404),
}


def address_of(request: Request) -> str:
    return request.client.host if request.client else "?"


def _session_token(request: Request) -> str | None:
    return request.cookies.get(cookie_name(SESSION_COOKIE))


def current_user(request: Request) -> SignedIn | None:
    """Who this request's session cookie signs in, if anyone (for pages that need a user)."""
    return signed_in(_session_token(request))


def safe_next(target: str | None) -> str | None:
    """Where to go after signing in: a path of this site only (``/projects/P1``), never another
    host (``//evil.example``, ``/\\evil.example``, ``https://…``) — an open redirect would turn
    our sign-in page into a phishing tool."""
    if not target or len(target) > 2000 or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    if any(c in target for c in "\r\n\\") or target.startswith("/signin"):
        return None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in target) or urlsplit(target).netloc:
        return None  # no control characters, and nothing a browser could read as a host
    return target


def signin_form(
    request: Request, status: int = 200, email: str = "", error: str | None = None, next: str | None = None
) -> Response:
    """The sign-in page: the password form, and the single sign-on button when configured."""
    config = sso_config()
    return form_page(
        request,
        "signin.html.j2",
        status=status,
        email=email,
        error=error,
        next=safe_next(next),
        sso_label=config.label if config else None,
    )


def signed_in_response(request: Request, new: NewSession, next: str | None) -> Response:
    """After a proven sign-in (password or single sign-on): the session cookie, and on to
    `next`. This browser's earlier session, if any, ends: one browser, one session."""
    previous = _session_token(request)
    if previous:
        sign_out(previous, address_of(request))
    response = RedirectResponse(safe_next(next) or "/signin", status_code=303, headers=HEADERS)
    s = get_settings()
    response.set_cookie(
        cookie_name(SESSION_COOKIE),
        new.token.get_secret_value(),
        max_age=int(s.session_max_hours * 3600),
        httponly=True,
        samesite="lax",
        secure=s.secure_cookies,
        path="/",
    )
    return response


@router.get("/signin", response_class=HTMLResponse)
def signin_page(request: Request, next: str | None = None) -> Response:
    """The sign-in form; `next` (set by a protected page's redirect) is where it goes after."""
    who = current_user(request)
    target = safe_next(next)
    if who is not None:
        if target is not None:  # a link sent by a colleague, opened while signed in
            return RedirectResponse(target, status_code=303, headers=HEADERS)
        return form_page(request, "signed_in.html.j2", who=who)
    return signin_form(request, next=target)


@router.post("/signin", response_class=HTMLResponse)
def signin_submit(
    request: Request,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form(alias=FIELD)] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    email = email.strip()[:320]
    if not form_ok(request, csrf):
        return signin_form(request, 403, email, Say.FORM_EXPIRED, next)
    outcome = sign_in(email, password, address_of(request))
    if outcome.result is SigninResult.THROTTLED:
        wait = outcome.retry_after_seconds or 60
        response = signin_form(request, 429, email, Say.TOO_MANY.format(minutes=max(1, -(-wait // 60))), next)
        response.headers["Retry-After"] = str(wait)
        return response
    if outcome.result is SigninResult.WRONG or outcome.session is None:
        return signin_form(request, 401, email, Say.WRONG, next)
    return signed_in_response(request, outcome.session, next)


@router.post("/signout", response_class=HTMLResponse)
def signout(request: Request, csrf: Annotated[str, Form(alias=FIELD)] = "") -> Response:
    if not form_ok(request, csrf):
        return signin_form(request, 403, "", Say.FORM_EXPIRED)
    token = _session_token(request)
    if token:
        sign_out(token, address_of(request))
    response = RedirectResponse("/signin", status_code=303, headers=HEADERS)
    s = get_settings()
    response.delete_cookie(
        cookie_name(SESSION_COOKIE), path="/", secure=s.secure_cookies, httponly=True, samesite="lax"
    )
    return response


@router.get("/me")
def me(request: Request) -> Response:
    who = current_user(request)
    if who is None:
        return JSONResponse({"detail": Say.NOT_SIGNED_IN.value}, status_code=401, headers=HEADERS)
    return JSONResponse(who.model_dump(mode="json"), headers=HEADERS)


def _link_gone(request: Request, view: LinkView) -> Response:
    heading, status = LINK_PAGES[view.state]
    if view.state is LinkState.UNKNOWN and note_bad_token(address_of(request)):
        status = 429
    return page("reset_invalid.html.j2", status=status, heading=heading)


def _reset_form(request: Request, view: LinkView, status: int = 200, error: str | None = None) -> Response:
    return form_page(request, "reset.html.j2", status=status, view=view, min_length=MIN_LENGTH, error=error)


@router.get("/reset/{token}", response_class=HTMLResponse)
def reset_page(token: str, request: Request) -> Response:
    view = look_up(token)
    if view.state is not LinkState.VALID:
        return _link_gone(request, view)
    return _reset_form(request, view)


@router.post("/reset/{token}", response_class=HTMLResponse)
def reset_submit(
    token: str,
    request: Request,
    password: Annotated[str, Form()] = "",
    confirm: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form(alias=FIELD)] = "",
) -> Response:
    view = look_up(token)
    if view.state is not LinkState.VALID:
        return _link_gone(request, view)
    if not form_ok(request, csrf):
        return _reset_form(request, view, 403, Say.FORM_EXPIRED)
    if password != confirm:
        return _reset_form(request, view, 422, Say.PASSWORDS_DIFFER)
    try:
        done = use_link(token, password, address_of(request))
    except WeakPassword as weak:
        return _reset_form(request, view, 422, str(weak))
    if done.state is not LinkState.VALID:
        return _link_gone(request, done)
    return page("reset_done.html.j2", view=done)
