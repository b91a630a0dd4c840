"""Web hardening on every answer (issue #10 item 6), over real HTTP and in a real browser.

Every route's answer — page, JSON, redirect, error — carries a Content-Security-Policy that
loads nothing from other hosts and forbids framing, and nosniff. A state-changing request a
browser marks as cross-site is refused before any view runs, even with a valid CSRF token;
programs (no Origin) go on working. The API browser runs from this host's own files.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from fastapi.routing import iter_route_contexts

from siteflow.identity.roles import StaffRole
from siteflow.identity.users import NewUser, add_user
from siteflow.web.security_headers import CROSS_SITE
from tests.conftest import SQLITE_ONLY
from tests.test_approval_links import serve_web
from tests.test_outbox_relay import free_port
from tests.test_signin_web import browser, csrf_of
from tests.test_staff_identity import ADMIN, PASSWORD
from tests.test_workspace_browser import chromium

pytestmark = SQLITE_ONLY  # headers and origins are the web layer's; no table differs by backend

LI_NA = NewUser(name="李娜 Li Na", email="li.na@siteflow.example", roles=[StaffRole.PM])
EVIL = "http://evil.example"


@pytest.fixture
def web(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.delenv("SITEFLOW_PUBLIC_URL", raising=False)
    yield from serve_web(monkeypatch)


def assert_hardened(response: httpx.Response, where: str) -> None:
    csp = response.headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp, f"{where}: CSP {csp!r}"
    assert not re.search(r"https?:|\*|//", csp), f"{where}: the CSP allows another host: {csp!r}"
    assert response.headers.get("x-content-type-options") == "nosniff", where
    assert response.headers.get("referrer-policy") == "no-referrer", where


def test_every_route_answers_with_the_security_headers(web: str) -> None:
    from siteflow.web import app

    checked = 0
    with httpx.Client(follow_redirects=False) as http:
        for route in iter_route_contexts(app.routes):  # included routers' routes too
            path = re.sub(r"\{[^}]+\}", "x", route.path or "")
            for method in sorted(route.methods or []):
                if method == "HEAD":
                    continue
                assert_hardened(http.request(method, f"{web}{path}"), f"{method} {path}")
                checked += 1
        assert_hardened(http.get(f"{web}/no/such/page"), "a 404")
    assert checked > 25


def signed_in(http: httpx.Client, web: str, origin: str | None) -> httpx.Response:
    token = csrf_of(http.get(f"{web}/signin").text)
    headers = {"Origin": origin} if origin else {}
    return http.post(
        f"{web}/signin", data={"email": LI_NA.email, "password": PASSWORD, "csrf": token}, headers=headers
    )


def test_a_cross_site_post_is_refused_even_with_a_valid_csrf_token(web: str) -> None:
    add_user(LI_NA, PASSWORD, ADMIN)
    with browser() as http:
        refused = signed_in(http, web, EVIL)
        assert refused.status_code == 403 and refused.text == CROSS_SITE
        assert "siteflow_session" not in refused.headers.get("set-cookie", "")
        assert_hardened(refused, "the refusal")
        assert signed_in(http, web, "null").status_code == 403  # a sandboxed frame's opaque origin
        token = csrf_of(http.get(f"{web}/signin").text)
        marked = http.post(
            f"{web}/signin",
            data={"email": LI_NA.email, "password": PASSWORD, "csrf": token},
            headers={"Sec-Fetch-Site": "cross-site"},
        )
        assert marked.status_code == 403
        assert signed_in(http, web, web).status_code == 303  # from our own page: signed in
    # JSON views too; a program (no Origin) is not a browser and goes on working
    body = {"email": LI_NA.email, "password": PASSWORD, "label": "test"}
    assert httpx.post(f"{web}/api/tokens", json=body, headers={"Origin": EVIL}).status_code == 403
    assert httpx.post(f"{web}/api/tokens", json=body).status_code == 201


class _EvilPage(BaseHTTPRequestHandler):
    target = ""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = (
            f'<form id="f" method="post" action="{self.target}/signout">'
            '<input name="csrf" value="guessed"></form><script>document.getElementById("f").submit()</script>'
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_page_on_another_origin_cannot_post_as_the_signed_in_browser(web: str) -> None:
    """127.0.0.1 on another port is another origin but the same site: the browser sends our
    SameSite=Lax session cookie along, so the Origin check is what stops it."""
    add_user(LI_NA, PASSWORD, ADMIN)
    _EvilPage.target = web
    evil = ThreadingHTTPServer(("127.0.0.1", free_port()), _EvilPage)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    try:
        with chromium() as browser_:
            page = browser_.new_page()
            page.goto(f"{web}/signin")
            page.fill("#email", LI_NA.email)
            page.fill("#password", PASSWORD)
            page.get_by_role("button", name="登录 / Sign in").click()
            page.get_by_role("heading", name="已登录 / Signed in").wait_for()
            assert page.request.get(f"{web}/me").status == 200
            page.goto(f"http://127.0.0.1:{evil.server_address[1]}/")
            page.wait_for_url(f"{web}/signout")
            assert CROSS_SITE in page.content()
            assert page.request.get(f"{web}/me").status == 200  # still signed in
    finally:
        evil.shutdown()


def test_the_api_browser_runs_from_this_host_under_its_policy(web: str) -> None:
    add_user(LI_NA, PASSWORD, ADMIN)
    with chromium() as browser_:
        page = browser_.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("request", lambda r: None if r.url.startswith(web) else problems.append(r.url))
        page.goto(f"{web}/api/docs")
        page.fill("#email", LI_NA.email)
        page.fill("#password", PASSWORD)
        page.get_by_role("button", name="登录 / Sign in").click()
        page.wait_for_url(f"{web}/api/docs")
        page.wait_for_selector(".opblock-summary-path")  # the operations, read from /api/openapi.json
        assert "/api/gates/{gate_id}/decisions" in page.content()
        assert problems == []  # no CSP violation, nothing fetched from another host


def test_a_link_on_another_site_cannot_make_the_browser_fetch_a_recorded_export(web: str) -> None:
    """An audit export or handover package is recorded in the trail under the reader's name: a
    signed-in browser sent there by another site's link (``Sec-Fetch-Site: cross-site``) is
    refused before anything is built or recorded; typed in or followed from our pages it works."""
    add_user(LI_NA, PASSWORD, ADMIN)
    with browser() as http:
        assert signed_in(http, web, web).status_code == 303
        for path in (
            "/projects/NOPE-1/audit.json",
            "/projects/NOPE-1/audit.html",
            "/projects/NOPE-1/handover.zip",
        ):
            linked = http.get(f"{web}{path}", headers={"Sec-Fetch-Site": "cross-site"})
            assert linked.status_code == 403 and linked.text == CROSS_SITE, path
            typed = http.get(f"{web}{path}", headers={"Sec-Fetch-Site": "none"})
            assert typed.status_code == 404, path  # reached the view: no such project here
