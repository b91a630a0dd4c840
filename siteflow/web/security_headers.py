"""Headers every answer carries, and the Origin check on every state-changing request
(issue #10 item 6).

Every response — pages, JSON, redirects, errors, files — gets a Content-Security-Policy that
loads nothing from other hosts and lets no one frame us (`frame-ancestors 'none'`),
``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer`` (approval links carry
their token in the path) and, over https, HSTS. A view may set a stricter or page-specific
policy of its own (the API browser's), which is kept.

A POST, PUT, PATCH or DELETE that a browser marks as coming from another site —
``Sec-Fetch-Site`` other than ``same-origin``/``none``, or, from a browser that does not send
it, an ``Origin`` that is not this service's (``null`` included) — is refused with 403 before
any view runs. Requests without either header come from programs
(the CLI, with its bearer token); they never carry a browser's cookies by accident. The forms'
CSRF tokens (`siteflow.web.csrf`, the approval pages' form tokens) stay the first line; this is
the second, and covers JSON views too.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from siteflow.settings import get_settings

DEFAULT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
ALWAYS = {
    "Content-Security-Policy": DEFAULT_CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CROSS_SITE = "跨站请求已拒绝 / Cross-site request refused: submit the form from siteflow's own page"


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def allowed_origins(headers: Headers, scheme: str) -> set[str]:
    """This service as browsers see it: its public URL, and the host this request was sent to
    (the same service reached by another name, e.g. 127.0.0.1 on the host itself)."""
    origins = {_origin_of(get_settings().resolved_public_url)}
    host = headers.get("host")
    if host:
        origins.add(f"{scheme}://{host}".lower())
    return origins


RECORDED_READS = re.compile(r"/(audit\.json|audit\.html|handover\.zip)$")
"""Reads that write too: each audit export and handover package is recorded in the trail under
the reader's name (COM-6), and a package builds every PDF — so a link on another site must not
make a signed-in browser fetch one. Typed in, followed from siteflow's own pages, or fetched by
the CLI with a token, they work as before."""


def cross_site(scope: Scope) -> bool:
    """True when a browser says this state-changing request comes from another site.

    ``Sec-Fetch-Site`` is the browser's own verdict and is taken first: our pages' no-referrer
    policy makes browsers send ``Origin: null`` even with their same-origin form posts, so the
    Origin header alone cannot tell those from a sandboxed frame's."""
    if scope["method"] not in UNSAFE_METHODS and not RECORDED_READS.search(scope.get("path", "")):
        return False
    headers = Headers(scope=scope)
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site not in ("same-origin", "none")
    origin = headers.get("origin")
    if origin is None:
        return False
    return origin.lower() not in allowed_origins(headers, scope.get("scheme", "http"))


class SecurityHeaders:
    """Pure ASGI (no BaseHTTPMiddleware): it wraps every answer, streaming ones included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = get_settings().resolved_public_url.startswith("https://")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in ALWAYS.items():
                    headers.setdefault(name, value)
                if https:
                    headers.setdefault("Strict-Transport-Security", "max-age=31536000")
            await send(message)

        if cross_site(scope):
            refusal = PlainTextResponse(CROSS_SITE, status_code=403, headers={"Cache-Control": "no-store"})
            await refusal(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)
