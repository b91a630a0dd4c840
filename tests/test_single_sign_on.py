"""Single sign-on (OpenID Connect) against a real provider, over real HTTP (issue #9 item 1).

The provider is panva's node-oidc-provider (`tests.oidc_provider`); siteflow's web service
runs for real (uvicorn). Only accounts an admin made can sign in; the first sign-in links the
provider identity, and another identity claiming the same email is refused afterwards; an
unverified email, a disabled account, a replayed or foreign callback, a provider that is down
are each refused with words that say what to do — and nothing is signed in.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import sync_playwright
from sqlalchemy import select

from models.staff import StaffUser
from siteflow.db import session_scope
from siteflow.identity.roles import StaffRole
from siteflow.identity.single_sign_on import CALLBACK_PATH, SsoMisconfigured, sso_config
from siteflow.identity.users import NewUser, add_user, disable_user, reset_user
from siteflow.settings import Settings
from tests.cli_user import run
from tests.conftest import SQLITE_ONLY
from tests.oidc_provider import CLIENT_ID, CLIENT_SECRET, OidcProvider, Person
from tests.test_approval_links import serve_web
from tests.test_outbox_relay import free_port
from tests.test_prefect_ui_gate import CHROMIUM, CHROMIUM_ARGS
from tests.test_signin_web import browser, csrf_of, set_cookies
from tests.test_staff_identity import ADMIN, staff_events

LI_NA = NewUser(name="李娜 Li Na", email="li.na@siteflow.example", roles=[StaffRole.PM])
ZHOU = NewUser(name="周明 Zhou Ming", email="zhou.ming@siteflow.example", roles=[StaffRole.ENGINEER])
PEOPLE = {
    "li.na": Person(email=LI_NA.email, name=LI_NA.name),
    # Another identity at the provider that claims Li Na's email (re-assigned, or a second account)
    "li.na.2": Person(email=LI_NA.email, name="Someone else"),
    "stranger": Person(email="stranger@siteflow.example", name="Not staff"),
    "zhou": Person(email=ZHOU.email, name=ZHOU.name, email_verified=False),
}

pytestmark = SQLITE_ONLY  # account linking is one row; migrations run on both backends elsewhere


@dataclass
class Sso:
    web: str
    idp: OidcProvider


@pytest.fixture
def sso(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sso]:
    port = free_port()
    monkeypatch.delenv("SITEFLOW_PUBLIC_URL", raising=False)
    with OidcProvider(free_port(), f"http://127.0.0.1:{port}{CALLBACK_PATH}", PEOPLE) as idp:
        monkeypatch.setenv("SITEFLOW_SSO_ISSUER", idp.issuer)
        monkeypatch.setenv("SITEFLOW_SSO_CLIENT_ID", CLIENT_ID)
        monkeypatch.setenv("SITEFLOW_SSO_CLIENT_SECRET", CLIENT_SECRET)
        for web in serve_web(monkeypatch, port):
            yield Sso(web, idp)


def sso_sign_in(http: httpx.Client, sso: Sso, login: str, next_path: str = "/inbox") -> httpx.Response:
    """The whole round trip as a browser makes it; siteflow's answer to the callback."""
    start = http.get(f"{sso.web}/signin/sso", params={"next": next_path})
    assert start.status_code == 303 and start.headers["location"].startswith(sso.idp.issuer + "/auth")
    back = sso.idp.sign_in(http, start, login)
    return http.get(back.headers["location"])


def me(http: httpx.Client, web: str) -> httpx.Response:
    return http.get(f"{web}/me")


def linked_subject(email: str) -> str | None:
    with session_scope() as session:
        user = session.execute(select(StaffUser).where(StaffUser.email == email)).scalar_one()
        return user.sso_subject


def test_a_staff_member_signs_in_by_sso_and_lands_where_they_were_going(sso: Sso) -> None:
    add_user(LI_NA, None, ADMIN)  # no password at all: SSO is how she signs in
    with browser() as http:
        done = sso_sign_in(http, sso, "li.na", "/inbox")
        assert done.status_code == 303 and done.headers["location"] == "/inbox"
        session_cookie = set_cookies(done)["siteflow_session"]
        assert "httponly" in session_cookie.lower() and "samesite=lax" in session_cookie.lower()
        assert me(http, sso.web).json()["email"] == LI_NA.email
        assert http.get(f"{sso.web}/inbox").status_code == 200
    assert linked_subject(LI_NA.email) == f"{sso.idp.issuer} li.na"
    kinds = [(kind, payload.get("method")) for kind, payload in staff_events()]
    assert ("sso.linked", None) in kinds and ("user.signed-in", "sso") in kinds


def test_only_the_linked_identity_signs_the_account_in(sso: Sso) -> None:
    add_user(LI_NA, None, ADMIN)
    with browser() as http:
        assert sso_sign_in(http, sso, "li.na").status_code == 303
    with browser() as http:  # another identity at the provider with the same (verified) email
        refused = sso_sign_in(http, sso, "li.na.2")
        assert refused.status_code == 403
        assert "linked to another single sign-on identity" in refused.text and "users reset" in refused.text
        assert me(http, sso.web).status_code == 401
    reset_user(LI_NA.email, ADMIN)  # the admin's way to re-link (new provider account, say)
    assert linked_subject(LI_NA.email) is None
    with browser() as http:
        assert sso_sign_in(http, sso, "li.na.2").status_code == 303
        assert me(http, sso.web).json()["email"] == LI_NA.email
    assert linked_subject(LI_NA.email) == f"{sso.idp.issuer} li.na.2"


def test_no_account_unverified_email_and_disabled_accounts_are_refused(sso: Sso) -> None:
    add_user(ZHOU, None, ADMIN)
    add_user(LI_NA, None, ADMIN)
    with browser() as http:
        stranger = sso_sign_in(http, sso, "stranger")
        assert stranger.status_code == 403 and "no account for stranger@siteflow.example" in stranger.text
        assert "siteflow users add" in stranger.text and 'id="sso"' in stranger.text  # can try again
        assert me(http, sso.web).status_code == 401
    with browser() as http:  # (a browser of its own: the provider remembers who signed in there)
        unverified = sso_sign_in(http, sso, "zhou")
        assert unverified.status_code == 403 and "has not verified your email" in unverified.text
        assert me(http, sso.web).status_code == 401
    assert linked_subject(ZHOU.email) is None
    disable_user(LI_NA.email, ADMIN)
    with browser() as http:
        disabled = sso_sign_in(http, sso, "li.na")
        assert disabled.status_code == 403 and "This account is disabled" in disabled.text
        assert me(http, sso.web).status_code == 401
    with session_scope():
        assert all(kind != "user.signed-in" for kind, _ in staff_events())


def test_a_callback_works_once_and_only_in_the_browser_that_started(sso: Sso) -> None:
    add_user(LI_NA, None, ADMIN)
    with browser() as http:
        start = http.get(f"{sso.web}/signin/sso")
        back = sso.idp.sign_in(http, start, "li.na")
        callback = back.headers["location"]
    with browser() as other:  # the code and state, carried to another browser (a stolen redirect)
        stolen = other.get(callback)
        assert stolen.status_code == 400 and "not started here or has expired" in stolen.text
        assert me(other, sso.web).status_code == 401
    with browser() as http:
        start = http.get(f"{sso.web}/signin/sso")
        back = sso.idp.sign_in(http, start, "li.na")
        forged = back.headers["location"].replace("state=", "state=x")
        assert http.get(forged).status_code == 400  # a state that is not this attempt's
        assert me(http, sso.web).status_code == 401
    with browser() as http:
        start = http.get(f"{sso.web}/signin/sso")
        back = sso.idp.sign_in(http, start, "li.na")
        assert http.get(back.headers["location"]).status_code == 303
        http.cookies.delete("siteflow_session")
        again = http.get(back.headers["location"])  # the same answer, replayed
        assert again.status_code == 400 and me(http, sso.web).status_code == 401


def test_the_provider_saying_no_or_being_down_is_said_plainly(sso: Sso) -> None:
    with browser() as http:
        start = http.get(f"{sso.web}/signin/sso")
        state = httpx.URL(start.headers["location"]).params["state"]
        denied = http.get(
            f"{sso.web}{CALLBACK_PATH}",
            params={"error": "access_denied", "state": state, "iss": sso.idp.issuer},
        )
        assert denied.status_code == 401 and "did not let you sign in (access_denied)" in denied.text
        sso.idp.stop()
        http.cookies.clear()
        from siteflow.identity import single_sign_on

        single_sign_on._metadata.clear()  # as after the hour the discovery document is kept
        down = http.get(f"{sso.web}/signin/sso")
        assert down.status_code == 503 and "cannot be reached now" in down.text
        assert "sign in with your password" in down.text


def test_the_signin_page_offers_sso_only_when_configured(sso: Sso, monkeypatch: pytest.MonkeyPatch) -> None:
    with browser() as http:
        assert 'href="/signin/sso"' in http.get(f"{sso.web}/signin").text
    assert sso_config(Settings(sso_issuer=None, sso_client_id=None, sso_client_secret=None)) is None
    with pytest.raises(SsoMisconfigured, match="SITEFLOW_SSO_CLIENT_SECRET"):
        sso_config(Settings(sso_issuer="https://idp.example", sso_client_id="x", sso_client_secret=None))


def test_sso_in_a_real_browser(sso: Sso) -> None:
    add_user(LI_NA, None, ADMIN)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = chromium.new_page()
            page.goto(f"{sso.web}/inbox")
            assert "/signin?next=%2Finbox" in page.url
            page.get_by_role("link", name="单点登录 / Single sign-on").click()
            page.wait_for_url(f"{sso.idp.issuer}/interaction/**")
            page.fill("input[name=login]", "li.na")
            page.fill("input[name=password]", "any")
            page.get_by_role("button", name="Sign-in").click()
            page.get_by_role("button", name="Continue").click()
            page.wait_for_url(f"{sso.web}/inbox")
            assert LI_NA.name in page.content()
        finally:
            chromium.close()


def test_id_tokens_that_prove_nothing_are_refused(sso: Sso) -> None:
    """Tokens the test provider would never send, made here with joserfc: each check of the
    ID token (signature, algorithm, issuer, audience, expiry, nonce) refuses its own forgery."""
    from joserfc import jwt
    from joserfc.jwk import KeySet, OctKey, RSAKey

    from siteflow.identity import single_sign_on as sso_module

    config = sso_config()
    assert config is not None
    meta = sso_module.provider_metadata(config)
    ours = RSAKey.generate_key(2048, parameters={"kid": "test-1"})
    sso_module._keys[meta.jwks_uri] = KeySet([ours])  # as if the provider published this key
    now = int(time.time())
    good = {
        "iss": meta.issuer,
        "aud": CLIENT_ID,
        "sub": "li.na",
        "exp": now + 300,
        "iat": now,
        "nonce": "n-1",
    }

    def token(claims: dict[str, object], key: object = ours, alg: str = "RS256") -> str:
        return jwt.encode({"alg": alg, "kid": "test-1"}, claims, key)  # type: ignore[arg-type]

    assert sso_module._id_token_claims(config, meta, token(good), "n-1")["sub"] == "li.na"
    forgeries = {
        "another nonce": (token(good), "n-2"),
        "another issuer": (token({**good, "iss": "http://evil.example"}), "n-1"),
        "another audience": (token({**good, "aud": "other-client"}), "n-1"),
        "expired": (token({**good, "exp": now - 3600}), "n-1"),
        "no subject": (token({k: v for k, v in good.items() if k != "sub"}), "n-1"),
        "signed by another key": (
            token(good, RSAKey.generate_key(2048, parameters={"kid": "test-1"})),
            "n-1",
        ),
        "HS256 with the client secret": (token(good, OctKey.import_key(CLIENT_SECRET), "HS256"), "n-1"),
    }
    for what, (forged, nonce) in forgeries.items():
        with pytest.raises(sso_module.SsoRejected):
            sso_module._id_token_claims(config, meta, forged, nonce)
            pytest.fail(f"accepted an ID token with {what}")


def test_an_sso_account_makes_a_cli_token_on_its_tokens_page(sso: Sso, tmp_path: Path) -> None:
    """No password to give `siteflow login`: the token comes from /tokens, shown once."""
    add_user(LI_NA, None, ADMIN)
    add_user(ZHOU, "correct horse battery staple", ADMIN)
    config = tmp_path / "li-na"
    with browser() as http:
        assert sso_sign_in(http, sso, "li.na").status_code == 303
        made = http.post(
            f"{sso.web}/tokens",
            data={"label": "li-na-laptop", "csrf": csrf_of(http.get(f"{sso.web}/tokens").text)},
        )
        assert made.status_code == 201
        token = re.search(r'<code id="token">(sft_[^<]+)</code>', made.text)
        assert token, made.text
        listed = http.get(f"{sso.web}/tokens")
        assert "li-na-laptop" in listed.text and token.group(1) not in listed.text  # shown once only
        out = run(config, "login", "--token-stdin", "--url", sso.web, stdin=token.group(1) + "\n")
        assert out.returncode == 0 and f"logged in as {LI_NA.name} <{LI_NA.email}>" in out.stdout, out.stderr
        assert LI_NA.email in run(config, "whoami").stdout
        token_id = re.search(r'action="/tokens/([0-9a-f-]{36})/revoke"', listed.text)
        assert token_id
    with browser() as other:  # another signed-in person cannot end Li Na's token by its id
        csrf = csrf_of(other.get(f"{sso.web}/signin").text)
        other.post(
            f"{sso.web}/signin",
            data={"email": ZHOU.email, "password": "correct horse battery staple", "csrf": csrf},
        )
        page = other.get(f"{sso.web}/tokens")
        assert (
            other.post(
                f"{sso.web}/tokens/{token_id.group(1)}/revoke", data={"csrf": csrf_of(page.text)}
            ).status_code
            == 404
        )
        assert http_me_as(sso.web, token.group(1)) == 200
    assert (
        httpx.get(f"{sso.web}/tokens", headers={"Authorization": f"Bearer {token.group(1)}"}).status_code
        == 303
    )
    with browser() as http:  # her own session ends it, and the CLI is refused from then on
        assert sso_sign_in(http, sso, "li.na").status_code == 303
        page = http.get(f"{sso.web}/tokens")
        ended = http.post(f"{sso.web}/tokens/{token_id.group(1)}/revoke", data={"csrf": csrf_of(page.text)})
        assert ended.status_code == 303
    assert http_me_as(sso.web, token.group(1)) == 401
    refused = run(config, "whoami")
    assert refused.returncode != 0 and "not accepted" in refused.stdout + refused.stderr
    kinds = [kind for kind, _ in staff_events()]
    assert kinds.count("token.issued") == 1 and kinds.count("token.revoked") == 1


def http_me_as(web: str, token: str) -> int:
    return httpx.get(f"{web}/api/me", headers={"Authorization": f"Bearer {token}"}).status_code
