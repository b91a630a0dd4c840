"""Staff sign-in over real HTTP (uvicorn) and real SMTP (aiosmtpd), on SQLite and PostgreSQL.

The session cookie is random, HttpOnly, SameSite=Lax (Secure and __Host- over https); a wrong
email and a wrong password get one answer; disabling or resetting an account ends its
sessions at once; the mailed reset link works once; an attacker hammering an account from
one address is refused (429) while its owner, from another address, still gets in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from http.cookies import SimpleCookie

import httpx
import pytest
from sqlalchemy import select

from models.staff import StaffSession
from siteflow.db import session_scope
from siteflow.identity.users import add_user, disable_user, reset_user
from siteflow.settings import reset_settings
from tests.test_approval_links import serve_web
from tests.test_staff_identity import (
    ADMIN,
    CHEN,
    NEW_PASSWORD,
    PASSWORD,
    all_stored_text,
    mailed_password_links,
    staff_events,
)

WRONG = "邮箱或密码不正确 / Wrong email or password"


@pytest.fixture
def web(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.delenv("SITEFLOW_PUBLIC_URL", raising=False)
    yield from serve_web(monkeypatch)


@pytest.fixture
def chen(database_url: str) -> str:
    return add_user(CHEN, PASSWORD, ADMIN).user.email


def browser(address: str = "127.0.0.1") -> httpx.Client:
    """A client whose connections come from `address` (any 127.x address reaches the server)."""
    return httpx.Client(  # a long timeout: an argon2 check on a loaded 2-core machine takes seconds
        transport=httpx.HTTPTransport(local_address=address), follow_redirects=False, timeout=60
    )


def csrf_of(page: str) -> str:
    m = re.search(r'name="csrf" value="([0-9a-f]{64})"', page)
    assert m, page
    return m.group(1)


def sign_in(http: httpx.Client, base: str, email: str, password: str) -> httpx.Response:
    token = csrf_of(http.get(f"{base}/signin").text)
    return http.post(f"{base}/signin", data={"email": email, "password": password, "csrf": token})


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """Each Set-Cookie of a response, by name, as sent (attributes included)."""
    return {c.split("=", 1)[0]: c for c in response.headers.get_list("set-cookie")}


def attributes(header: str) -> set[str]:
    return {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}


def test_sign_in_sets_a_session_cookie_and_me_says_who(web: str, chen: str) -> None:
    with browser() as http:
        form = http.get(f"{web}/signin")
        assert form.status_code == 200 and "登录 siteflow / Sign in to siteflow" in form.text
        assert (
            form.headers["cache-control"] == "no-store" and form.headers["referrer-policy"] == "no-referrer"
        )
        assert {"httponly", "samesite", "path"} <= attributes(set_cookies(form)["siteflow_csrf"])
        anonymous = http.get(f"{web}/me")
        assert anonymous.status_code == 401 and anonymous.headers["cache-control"] == "no-store"
        assert anonymous.json() == {"detail": "未登录 / Not signed in"}

        done = http.post(
            f"{web}/signin",
            data={"email": "  Chen.Jing@Example.com ", "password": PASSWORD, "csrf": csrf_of(form.text)},
        )
        assert done.status_code == 303 and done.headers["location"] == "/signin"
        cookie = set_cookies(done)["siteflow_session"]
        parsed = SimpleCookie(cookie)["siteflow_session"]
        assert parsed["httponly"] and parsed["samesite"].lower() == "lax" and parsed["path"] == "/"
        assert int(parsed["max-age"]) == 168 * 3600 and not parsed["secure"]  # http: not Secure
        session_id = parsed.value
        assert len(session_id) >= 40

        me = http.get(f"{web}/me")
        assert me.status_code == 200 and me.headers["cache-control"] == "no-store"
        assert (me.json()["email"], me.json()["name"], me.json()["roles"]) == (
            chen,
            CHEN.name,
            ["pm", "admin"],
        )
        page = http.get(f"{web}/signin")
        assert "已登录 / Signed in" in page.text and CHEN.name in page.text
        with session_scope() as session:
            stored = session.execute(select(StaffSession.id_sha256)).scalars().all()
        assert len(stored) == 1 and session_id not in all_stored_text()  # only its hash is kept

        out = http.post(f"{web}/signout", data={"csrf": csrf_of(page.text)})
        assert out.status_code == 303 and http.get(f"{web}/me").status_code == 401
    with httpx.Client() as replay:  # the old cookie, kept by someone: the session is over
        assert replay.get(f"{web}/me", cookies={"siteflow_session": session_id}).status_code == 401
    assert [kind for kind, _ in staff_events()][-2:] == ["user.signed-in", "user.signed-out"]


def test_wrong_password_and_unknown_email_get_the_same_answer(web: str, chen: str) -> None:
    with browser() as http:
        wrong = sign_in(http, web, "Chen.Jing@Example.com", "not the password at all")
        unknown = sign_in(http, web, "nobody@example.com", PASSWORD)
        for r, typed in ((wrong, "Chen.Jing@Example.com"), (unknown, "nobody@example.com")):
            assert r.status_code == 401 and WRONG in r.text
            assert f'value="{typed}"' in r.text  # the email stays filled in
            assert "siteflow_session" not in set_cookies(r)
        assert wrong.text.replace("Chen.Jing@Example.com", "E") == unknown.text.replace(
            "nobody@example.com", "E"
        )
        assert http.get(f"{web}/me").status_code == 401


def test_forms_need_the_token_bound_to_this_browser(web: str, chen: str) -> None:
    with browser() as attacker:
        foreign = csrf_of(attacker.get(f"{web}/signin").text)  # valid, but for the attacker's cookie
    with browser() as http:
        http.get(f"{web}/signin")
        for token in ("", "0" * 64, foreign):
            r = http.post(f"{web}/signin", data={"email": chen, "password": PASSWORD, "csrf": token})
            assert r.status_code == 403 and "siteflow_session" not in set_cookies(r)
    with httpx.Client() as cross_site:  # a form on another site: no cookie of ours comes with it
        r = cross_site.post(f"{web}/signin", data={"email": chen, "password": PASSWORD, "csrf": foreign})
        assert r.status_code == 403
    with browser() as http:
        assert sign_in(http, web, chen, PASSWORD).status_code == 303
        assert http.post(f"{web}/signout", data={"csrf": "0" * 64}).status_code == 403
        assert http.get(f"{web}/me").status_code == 200  # still signed in


def test_a_disabled_users_session_is_refused_at_once(web: str, chen: str) -> None:
    with browser() as http:
        assert sign_in(http, web, chen, PASSWORD).status_code == 303
        assert http.get(f"{web}/me").status_code == 200
        disable_user(chen, ADMIN)
        assert http.get(f"{web}/me").status_code == 401
        assert "已登录" not in http.get(f"{web}/signin").text
        again = sign_in(http, web, chen, PASSWORD)
        assert again.status_code == 401 and WRONG in again.text


def test_reset_link_from_the_mail_works_once_and_ends_old_sessions(web: str, chen: str) -> None:
    with browser() as old:
        assert sign_in(old, web, chen, PASSWORD).status_code == 303
        reset_user(chen, ADMIN)
        assert old.get(f"{web}/me").status_code == 401  # at once, not at the next sign-in
    url = mailed_password_links()[chen]
    assert url.startswith(f"{web}/reset/")
    with browser() as http:
        page = http.get(url)
        assert page.status_code == 200 and chen in page.text
        assert (
            page.headers["cache-control"] == "no-store" and page.headers["referrer-policy"] == "no-referrer"
        )
        token = csrf_of(page.text)
        differ = http.post(url, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD + "x", "csrf": token})
        assert differ.status_code == 422 and "两次输入的密码不一致" in differ.text
        short = http.post(url, data={"password": "short", "confirm": "short", "csrf": token})
        assert short.status_code == 422 and "at least 12 characters" in short.text
        done = http.post(url, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD, "csrf": token})
        assert done.status_code == 200 and "密码已设置 / Your password is set" in done.text

        used = http.get(url)
        assert used.status_code == 410 and "此链接已使用过 / This link has already been used" in used.text
        other = "another password, long enough"
        again = http.post(url, data={"password": other, "confirm": other, "csrf": token})
        assert again.status_code == 410
        forged = http.get(url[:-4] + "AAAA")
        assert forged.status_code == 404 and "此链接无效 / This link is not valid" in forged.text

        assert sign_in(http, web, chen, PASSWORD).status_code == 401
        assert sign_in(http, web, chen, other).status_code == 401
        assert sign_in(http, web, chen, NEW_PASSWORD).status_code == 303
        assert http.get(f"{web}/me").json()["email"] == chen


def test_an_attacker_is_refused_from_their_address_and_the_owner_still_gets_in(web: str, chen: str) -> None:
    with browser("127.0.0.1") as attacker:
        codes = [sign_in(attacker, web, chen, f"guess number {i:04d}").status_code for i in range(10)]
        assert codes == [401] * 10
        locked = sign_in(attacker, web, chen, PASSWORD)  # even the right password: no more tries
        assert (
            locked.status_code == 429 and "尝试次数过多" in locked.text and "Too many attempts" in locked.text
        )
        assert 0 < int(locked.headers["retry-after"]) <= 15 * 60 + 1
        assert f'value="{chen}"' in locked.text
        assert "siteflow_session" not in set_cookies(locked)
        assert sign_in(attacker, web, "nobody@example.com", "x" * 12).status_code == 401  # per email+address
    with browser("127.0.0.2") as owner:
        assert sign_in(owner, web, chen, PASSWORD).status_code == 303
        assert owner.get(f"{web}/me").status_code == 200
    signed = [p for kind, p in staff_events() if kind == "user.signed-in"]
    assert [p["address"] for p in signed] == ["127.0.0.2"]


def test_cookies_are_secure_and_host_only_over_https(
    web: str, chen: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SITEFLOW_PUBLIC_URL", "https://siteflow.example")
    reset_settings()
    try:
        with httpx.Client() as http:  # a client keeps Secure cookies off http: send them by hand
            form = http.get(f"{web}/signin")
            csrf_cookie = set_cookies(form)["__Host-siteflow_csrf"]
            assert {"secure", "httponly", "samesite", "path"} <= attributes(csrf_cookie)
            jar = {"__Host-siteflow_csrf": SimpleCookie(csrf_cookie)["__Host-siteflow_csrf"].value}
            http.cookies.clear()
            done = http.post(
                f"{web}/signin",
                data={"email": chen, "password": PASSWORD, "csrf": csrf_of(form.text)},
                cookies=jar,
            )
            assert done.status_code == 303
            session_cookie = SimpleCookie(set_cookies(done)["__Host-siteflow_session"])[
                "__Host-siteflow_session"
            ]
            assert session_cookie["secure"] and session_cookie["httponly"] and session_cookie["path"] == "/"
            http.cookies.clear()
            me = http.get(f"{web}/me", cookies={"__Host-siteflow_session": session_cookie.value})
            assert me.status_code == 200 and json.loads(me.text)["email"] == chen
            http.cookies.clear()
            plain = http.get(f"{web}/me", cookies={"siteflow_session": session_cookie.value})
            assert plain.status_code == 401  # over https only the __Host- cookie counts
    finally:
        monkeypatch.delenv("SITEFLOW_PUBLIC_URL")
        reset_settings()
