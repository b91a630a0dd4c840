"""Single sign-on pages: /signin/sso (off to the provider) and /signin/sso/callback (back).

The attempt's state, nonce and PKCE verifier wait in a cookie signed under the installation
key (HttpOnly, SameSite=Lax — the provider's redirect back is a top-level GET, which Lax
cookies accompany — and ten minutes long). The callback takes a code only with the cookie of
the browser that started, and only once: the cookie is deleted by the answer, whatever it is.
What the provider proves is `siteflow.identity.single_sign_on`'s to check; a refusal is shown
on the sign-in page in both languages and says what to do.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import NamedTuple

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from siteflow.approval_links import installation_key
from siteflow.identity.single_sign_on import (
    CALLBACK_PATH,
    PendingSignOn,
    SsoResult,
    SsoUnavailable,
    begin,
    finish,
    sso_config,
)
from siteflow.settings import get_settings
from siteflow.web.csrf import cookie_name
from siteflow.web.pages import HEADERS
from siteflow.web.signin import address_of, safe_next, signed_in_response, signin_form

router = APIRouter()

COOKIE = "siteflow_sso"
PENDING_SECONDS = 600


class Said(NamedTuple):
    """A refusal on the sign-in page: its status and the same words in Chinese and English."""

    status: int
    zh: str
    en: str

    def text(self, **values: str) -> str:
        return f"{self.zh} / {self.en}".format(**values)


SAY: dict[SsoResult, Said] = {
    SsoResult.NO_ACCOUNT: Said(
        403,
        "单点登录已确认您的身份，但 siteflow 中没有此邮箱（{email}）的账号；"
        "请管理员用 `siteflow users add` 添加。",
        "Single sign-on proved who you are, but siteflow has no account for {email}; "
        "ask an administrator to add you with `siteflow users add`.",
    ),
    SsoResult.DISABLED: Said(
        403, "此账号已停用，请联系管理员。", "This account is disabled; ask an administrator."
    ),
    SsoResult.LINKED_ELSEWHERE: Said(
        403,
        "此账号已关联另一个单点登录身份；如需更换，请管理员用 `siteflow users reset` 重设。",
        "This account is linked to another single sign-on identity; "
        "to change it, ask an administrator to run `siteflow users reset`.",
    ),
    SsoResult.EMAIL_UNVERIFIED: Said(
        403,
        "单点登录服务未确认您的邮箱（{email}）；请先在那里验证邮箱。",
        "The sign-on provider has not verified your email ({email}); verify it there first.",
    ),
    SsoResult.REJECTED: Said(
        401,
        "单点登录未能确认您的身份，请重试。",
        "Single sign-on could not prove who you are; please try again.",
    ),
}
EXPIRED = Said(
    400,
    "单点登录未完成或已过期，请重新开始。",
    "This sign-on was not started here or has expired; please start again.",
)
UNAVAILABLE = Said(
    503,
    "暂时无法连接单点登录服务，请稍后再试或使用密码登录。",
    "The sign-on provider cannot be reached now; try again later or sign in with your password.",
)
NOT_CONFIGURED = Said(
    404,
    "此处未配置单点登录，请使用密码登录。",
    "Single sign-on is not configured here; sign in with your password.",
)
DENIED = Said(
    401, "单点登录服务未允许登录（{error}）。", "The sign-on provider did not let you sign in ({error})."
)


def _mac(body: str) -> str:
    return hmac.new(installation_key(), f"sso-pending:{body}".encode(), hashlib.sha256).hexdigest()


def _seal(pending: PendingSignOn) -> str:
    body = base64.urlsafe_b64encode(pending.model_dump_json().encode()).decode().rstrip("=")
    return f"{body}.{_mac(body)}"


def _unseal(value: str | None) -> PendingSignOn | None:
    """The pending attempt in this browser's cookie, if it is ours, intact and fresh."""
    if not value or len(value) > 4000 or "." not in value:
        return None
    body, mac = value.rsplit(".", 1)
    if not hmac.compare_digest(_mac(body), mac):
        return None
    try:
        pending = PendingSignOn.model_validate_json(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValidationError, ValueError):
        return None
    if not 0 <= time.time() - pending.started <= PENDING_SECONDS:
        return None
    return pending


def _forget(response: Response) -> Response:
    response.delete_cookie(
        cookie_name(COOKIE), path="/", secure=get_settings().secure_cookies, httponly=True, samesite="lax"
    )
    return response


def _refused(request: Request, said: Said, next_path: str | None = None, **values: str) -> Response:
    return _forget(signin_form(request, said.status, error=said.text(**values), next=next_path))


@router.get("/signin/sso", response_class=HTMLResponse)
def sso_start(request: Request, next: str | None = None) -> Response:
    """Send the browser to the provider (siteflow's own sign-in page links here)."""
    config = sso_config()
    if config is None:
        return _refused(request, NOT_CONFIGURED)
    try:
        url, pending = begin(config, safe_next(next))
    except SsoUnavailable:
        return _refused(request, UNAVAILABLE, safe_next(next))
    response = Response(status_code=303, headers={**HEADERS, "Location": url})
    response.set_cookie(
        cookie_name(COOKIE),
        _seal(pending),
        max_age=PENDING_SECONDS,
        httponly=True,
        samesite="lax",
        secure=get_settings().secure_cookies,
        path="/",
    )
    return response


@router.get(CALLBACK_PATH, response_class=HTMLResponse)
def sso_callback(
    request: Request,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
    iss: str | None = None,
) -> Response:
    """The provider sends the person back here with a code (or an error)."""
    config = sso_config()
    if config is None:
        return _refused(request, NOT_CONFIGURED)
    pending = _unseal(request.cookies.get(cookie_name(COOKIE)))
    if pending is None or not state or not hmac.compare_digest(pending.state, state[:200]):
        return _refused(request, EXPIRED)
    if iss is not None and iss.rstrip("/") != config.issuer:  # RFC 9207: the answer is from our provider
        return _refused(request, SAY[SsoResult.REJECTED], pending.next)
    if error or not code:
        return _refused(request, DENIED, pending.next, error=(error or "no code")[:80])
    try:
        outcome = finish(config, pending, code[:2000], address_of(request))
    except SsoUnavailable:
        return _refused(request, UNAVAILABLE, pending.next)
    if outcome.result is not SsoResult.SIGNED_IN or outcome.session is None:
        return _refused(request, SAY[outcome.result], pending.next, email=outcome.email or "?")
    return _forget(signed_in_response(request, outcome.session, pending.next))
