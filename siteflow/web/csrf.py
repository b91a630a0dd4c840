"""CSRF protection for the staff forms (sign-in, sign-out, set password).

A random pre-session cookie (HttpOnly, SameSite=Lax) is set when a form is shown; the form
carries an HMAC of that cookie under the installation key. A POST is accepted only when the
two match. A cross-site page can neither read the cookie nor compute the HMAC, and a browser
does not send a Lax cookie with a cross-site POST at all. Over https the cookie has the
``__Host-`` prefix, so a neighbouring subdomain cannot plant one of its own.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from fastapi import Request, Response

from siteflow.approval_links import installation_key
from siteflow.settings import get_settings
from siteflow.web.pages import page

COOKIE = "siteflow_csrf"
FIELD = "csrf"


def cookie_name(base: str) -> str:
    """``__Host-`` cookies must be Secure, host-only and Path=/; we use them whenever we can."""
    return f"__Host-{base}" if get_settings().secure_cookies else base


def _mac(cookie_value: str) -> str:
    return hmac.new(installation_key(), f"staff-form:{cookie_value}".encode(), hashlib.sha256).hexdigest()


class FormGuard:
    """The form token for one response, and the cookie to set with it if the browser had none."""

    def __init__(self, request: Request) -> None:
        existing = request.cookies.get(cookie_name(COOKIE))
        self.new_cookie = None if existing and len(existing) <= 100 else secrets.token_urlsafe(32)
        self.token = _mac(self.new_cookie or existing or "")

    def apply(self, response: Response) -> Response:
        if self.new_cookie is not None:
            response.set_cookie(
                cookie_name(COOKIE),
                self.new_cookie,
                httponly=True,
                samesite="lax",
                secure=get_settings().secure_cookies,
                path="/",
            )
        return response


def form_ok(request: Request, given: str) -> bool:
    """True when the form's token matches this browser's CSRF cookie."""
    cookie = request.cookies.get(cookie_name(COOKIE))
    if not cookie or len(cookie) > 100 or not given:
        return False
    return hmac.compare_digest(_mac(cookie), given)


def form_page(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    """A page whose forms carry this browser's CSRF token (``csrf`` in the template), with the
    cookie that token is bound to when the browser had none."""
    guard = FormGuard(request)
    return guard.apply(page(template, status=status, csrf=guard.token, **context))
