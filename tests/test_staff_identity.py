"""Staff accounts, password links, sessions and the sign-in throttle, on SQLite and PostgreSQL,
and `siteflow users` as a real subprocess (issue: "every signature is made by the person it
names", item 1).

Mail goes through the real outbox relay to a real SMTP server (aiosmtpd); links are read
out of the mails as their owners would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text, update

from models.audit import AuditEvent
from models.base import Base
from models.outbox import OutboxMessage
from models.staff import PasswordLink, StaffSession, StaffUser
from siteflow import audit_chain
from siteflow.db import session_scope
from siteflow.identity.audit import STREAM
from siteflow.identity.password_links import LinkState, look_up, use_link
from siteflow.identity.passwords import WeakPassword
from siteflow.identity.roles import StaffRole
from siteflow.identity.sessions import signed_in
from siteflow.identity.signin import SigninResult, sign_in, sign_out
from siteflow.identity.signin_throttle import Admitted, Refused, ThrottleScope, admit, settle_success
from siteflow.identity.users import (
    DuplicateEmail,
    NewUser,
    UserStatus,
    add_user,
    disable_user,
    list_users,
    reset_user,
)
from siteflow.mailed_links import token_of as token_of_row
from tests.conftest import SQLITE_ONLY
from tests.test_approval_links import mailed_links
from tests.test_outbox_relay import free_port

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "tr0ub4dor & 3 more words"
ADMIN = "host-admin:test@host"
CHEN = NewUser(name="陈静 Chen Jing", email="Chen.Jing@Example.com", roles=[StaffRole.PM, StaffRole.ADMIN])
LI = NewUser(name="李伟 Li Wei", email="li.wei@example.com", roles=[StaffRole.UPGRADE_GUIDE])


def mailed_password_links() -> dict[str, str]:
    """Send the outbox to a real SMTP server; each recipient's password link, from the mail."""
    return mailed_links(free_port(), "/reset/")


def token_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def staff_events() -> list[tuple[str, dict[str, object]]]:
    with session_scope() as session:
        return [(e.kind, json.loads(e.payload)) for e in audit_chain.events_for(session, STREAM)]


def all_stored_text() -> str:
    """Every value of every row of every table, as text: what a copy of the database shows."""
    chunks = []
    with session_scope() as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(select(table)).all():
                chunks.extend(str(v) for v in row)
        chunks.extend(str(r) for r in session.execute(text("SELECT * FROM alembic_version")).all())
    return "\n".join(chunks)


def test_add_hashes_with_argon2id_and_refuses_a_second_account_for_one_email(database_url: str) -> None:
    change = add_user(CHEN, PASSWORD, ADMIN)
    assert change.user.email == "chen.jing@example.com" and change.user.status is UserStatus.ACTIVE
    assert not change.link_mailed
    with session_scope() as session:
        user = session.execute(select(StaffUser)).scalar_one()
        assert user.password_hash is not None and user.password_hash.startswith("$argon2id$")
        assert session.execute(select(OutboxMessage)).first() is None  # a password given: no mail
    with pytest.raises(DuplicateEmail, match="already exists"):
        add_user(CHEN.model_copy(update={"email": "chen.jing@example.com"}), None, ADMIN)
    with pytest.raises(DuplicateEmail):
        add_user(
            NewUser(name="Another", email="CHEN.JING@example.COM", roles=[StaffRole.OFFICE]), None, ADMIN
        )
    assert [u.email for u in list_users()] == ["chen.jing@example.com"]
    assert PASSWORD not in all_stored_text()
    assert [kind for kind, _ in staff_events()] == ["user.created"]


def test_a_short_password_is_refused_and_no_account_is_made(database_url: str) -> None:
    with pytest.raises(WeakPassword, match="at least 12 characters"):
        add_user(CHEN, "short pass", ADMIN)
    assert list_users() == []


def test_a_name_or_email_that_is_not_clean_text_is_refused_in_plain_words() -> None:
    """Issue #10: a staff name is shown on every signature and in every mail; control
    characters, broken Unicode and overlong text never get that far."""
    from pydantic import ValidationError

    from models.text_kinds import problems

    for name, email, said in (
        ("Li\x1b[31mNa", "li@example.com", "Name holds the control character ESC (an ANSI escape)"),
        ("\ud800", "li@example.com", "Name holds a broken character"),
        ("Li Na", "li@example.com\n", "Email must be one line"),
        ("x" * 201, "li@example.com", "Name is too long: at most 200 characters"),
    ):
        with pytest.raises(ValidationError) as refused:
            NewUser(name=name, email=email, roles=[StaffRole.PM])
        assert any(said in line for line in problems(refused.value)), problems(refused.value)


def test_new_account_without_password_gets_a_single_use_link_by_mail(database_url: str) -> None:
    change = add_user(LI, None, ADMIN)
    assert change.link_mailed and change.user.status is UserStatus.INVITED
    assert sign_in(LI.email, PASSWORD, "127.0.0.1").result is SigninResult.WRONG  # no password yet
    links = mailed_password_links()
    assert list(links) == [LI.email]
    token = token_of(links[LI.email])
    assert len(token) >= 40 and token not in all_stored_text()  # the relay erased the outbox copy
    assert look_up(token).state is LinkState.VALID

    with pytest.raises(WeakPassword):  # a refused password does not use the link up
        use_link(token, "too short")
    assert use_link(token, PASSWORD).state is LinkState.VALID
    assert use_link(token, NEW_PASSWORD).state is LinkState.USED  # single use
    assert look_up(token).state is LinkState.USED
    assert sign_in(LI.email, PASSWORD, "127.0.0.1").result is SigninResult.SIGNED_IN
    assert sign_in(LI.email, NEW_PASSWORD, "127.0.0.1").result is SigninResult.WRONG
    assert look_up(token[:-2] + "xx").state is LinkState.UNKNOWN
    assert [kind for kind, _ in staff_events()] == [
        "user.created",
        "password.link-sent",
        "mail.sent",  # by the relay, to the same stream
        "password.set",
        "user.signed-in",
    ]


def test_an_expired_or_replaced_link_no_longer_works(database_url: str) -> None:
    add_user(LI, None, ADMIN)
    first = token_of(mailed_password_links()[LI.email])
    reset_user(LI.email, ADMIN)  # a newer link replaces the first
    second = token_of(mailed_password_links()[LI.email])
    assert look_up(first).state is LinkState.USED
    assert use_link(first, PASSWORD).state is LinkState.USED
    with session_scope() as session:
        link = session.execute(select(PasswordLink).where(PasswordLink.used_at.is_(None))).scalar_one()
        assert link.expires_at - link.created_at == timedelta(minutes=60)  # a reset link lasts an hour
        link.expires_at = link.created_at
    assert look_up(second).state is LinkState.EXPIRED
    assert use_link(second, PASSWORD).state is LinkState.EXPIRED
    assert sign_in(LI.email, PASSWORD, "127.0.0.1").result is SigninResult.WRONG


def test_reset_ends_sessions_and_the_old_password_at_once(database_url: str) -> None:
    add_user(CHEN, PASSWORD, ADMIN)
    outcome = sign_in(CHEN.email, PASSWORD, "127.0.0.1")
    assert outcome.session is not None
    cookie = outcome.session.token.get_secret_value()
    who = signed_in(cookie)
    assert (
        who is not None
        and who.email == "chen.jing@example.com"
        and who.roles == [StaffRole.PM, StaffRole.ADMIN]
    )

    change = reset_user("CHEN.JING@example.com", ADMIN)
    assert change.sessions_ended == 1 and change.link_mailed
    assert signed_in(cookie) is None
    assert sign_in(CHEN.email, PASSWORD, "127.0.0.1").result is SigninResult.WRONG
    token = token_of(mailed_password_links()["chen.jing@example.com"])
    assert use_link(token, NEW_PASSWORD).state is LinkState.VALID
    assert sign_in(CHEN.email, NEW_PASSWORD, "127.0.0.1").result is SigninResult.SIGNED_IN
    assert sign_in(CHEN.email, PASSWORD, "127.0.0.1").result is SigninResult.WRONG
    kinds = [kind for kind, _ in staff_events()]
    assert kinds[-5:] == [
        "password.reset",
        "password.link-sent",
        "mail.sent",
        "password.set",
        "user.signed-in",
    ]


def test_disable_ends_sessions_and_links_at_once(database_url: str) -> None:
    add_user(CHEN, PASSWORD, ADMIN)
    add_user(LI, None, ADMIN)
    link = token_of(mailed_password_links()[LI.email])
    sessions = [sign_in(CHEN.email, PASSWORD, f"127.0.0.{i}").session for i in (1, 2)]
    cookies = [s.token.get_secret_value() for s in sessions if s is not None]
    assert len(cookies) == 2 and all(signed_in(c) for c in cookies)

    change = disable_user(CHEN.email, ADMIN)
    assert change.sessions_ended == 2 and change.user.status is UserStatus.DISABLED
    assert [signed_in(c) for c in cookies] == [None, None]
    assert sign_in(CHEN.email, PASSWORD, "127.0.0.1").result is SigninResult.WRONG  # same answer as a typo
    assert disable_user(CHEN.email, ADMIN).unchanged
    disable_user(LI.email, ADMIN)
    assert use_link(link, PASSWORD).state is LinkState.USED
    disabled = [p for kind, p in staff_events() if kind == "user.disabled"]
    assert [(p["email"], p["sessions_ended"]) for p in disabled] == [
        ("chen.jing@example.com", 2),
        (LI.email, 0),
    ]


def test_a_session_is_checked_against_its_account_on_every_request(database_url: str) -> None:
    """A sign-in that raced `disable` (its session row made after the rows were revoked) is still
    refused: every request checks the account, not only the session row."""
    add_user(CHEN, PASSWORD, ADMIN)
    outcome = sign_in(CHEN.email, PASSWORD, "127.0.0.1")
    assert outcome.session is not None
    cookie = outcome.session.token.get_secret_value()
    with session_scope() as session:
        session.execute(update(StaffUser).values(disabled_at=datetime.now(UTC)))
    assert signed_in(cookie) is None


def test_sessions_end_when_idle_too_long_and_at_their_longest_life(database_url: str) -> None:
    add_user(CHEN, PASSWORD, ADMIN)
    outcome = sign_in(CHEN.email, PASSWORD, "127.0.0.1")
    assert outcome.session is not None
    cookie = outcome.session.token.get_secret_value()
    with session_scope() as session:
        row = session.execute(select(StaffSession)).scalar_one()
        started = row.created_at
    assert signed_in(cookie, now=started + timedelta(hours=11)) is not None  # used: idle time restarts
    assert signed_in(cookie, now=started + timedelta(hours=22)) is not None
    assert signed_in(cookie, now=started + timedelta(hours=34, minutes=1)) is None  # 12 h idle
    with session_scope() as session:
        session.execute(StaffSession.__table__.update().values(last_seen_at=started + timedelta(hours=167)))
    assert signed_in(cookie, now=started + timedelta(hours=168, minutes=1)) is None  # the longest life
    sign_out(cookie, "127.0.0.1")
    assert signed_in(cookie, now=started + timedelta(hours=1)) is None


def test_throttle_refuses_one_email_from_one_address_but_not_from_others(database_url: str) -> None:
    now = time.time()
    email = "chen.jing@example.com"
    for _ in range(10):
        assert isinstance(admit(email, "203.0.113.9", now), Admitted)
    refused = admit(email, "203.0.113.9", now)
    assert isinstance(refused, Refused) and refused.scope is ThrottleScope.PAIR
    assert 0 < refused.retry_after_seconds <= 15 * 60 + 1
    assert isinstance(admit(email, "198.51.100.7", now), Admitted)  # the owner elsewhere
    assert isinstance(admit("li.wei@example.com", "203.0.113.9", now), Admitted)  # another account
    assert isinstance(admit(email, "203.0.113.9", now + 15 * 60), Admitted)  # the window passed


def test_a_success_clears_its_failures_and_one_address_is_limited_across_emails(database_url: str) -> None:
    now = time.time()
    for _ in range(9):
        admit("chen.jing@example.com", "203.0.113.9", now)
    ok = admit("chen.jing@example.com", "203.0.113.9", now)
    assert isinstance(ok, Admitted)
    settle_success(ok)  # the owner got it right on the tenth try: starts afresh
    assert all(isinstance(admit("chen.jing@example.com", "203.0.113.9", now), Admitted) for _ in range(10))
    for i in range(30):  # 9 + 10 + 30 = 49 failures from this address (the success is not one)
        assert isinstance(admit(f"user{i}@example.com", "203.0.113.9", now), Admitted)
    assert isinstance(admit("user-last@example.com", "203.0.113.9", now), Admitted)
    refused = admit("someone@example.com", "203.0.113.9", now)
    assert isinstance(refused, Refused) and refused.scope is ThrottleScope.ADDRESS


def test_nothing_secret_is_stored_or_audited_in_clear(database_url: str) -> None:
    """Passwords, link tokens and session ids: not in any row of any table, nor in the audit log."""
    add_user(CHEN, PASSWORD, ADMIN)
    add_user(LI, None, ADMIN)
    link = token_of(mailed_password_links()[LI.email])
    use_link(link, NEW_PASSWORD, "127.0.0.1")
    secrets = [PASSWORD, NEW_PASSWORD, link]
    for email, password in ((CHEN.email, PASSWORD), (LI.email, NEW_PASSWORD)):
        sign_in(email, "wrong password, typed once", "127.0.0.1")
        outcome = sign_in(email, password, "127.0.0.1")
        assert outcome.session is not None
        secrets.append(outcome.session.token.get_secret_value())
    sign_out(secrets[-1], "127.0.0.1")
    reset_user(CHEN.email, ADMIN)
    reset_token = token_of(mailed_password_links()["chen.jing@example.com"])
    secrets.append(reset_token)

    stored = all_stored_text()
    assert not [s for s in secrets if s in stored]
    payloads = json.dumps(staff_events(), ensure_ascii=False)
    assert not [s for s in secrets if s in payloads]
    assert "wrong password" not in stored
    with session_scope() as session:
        hashes = session.execute(select(StaffUser.password_hash)).scalars().all()
        assert all(h is None or h.startswith("$argon2id$") for h in hashes)
        assert audit_chain.verify(session, STREAM) == []
    assert {kind for kind, _ in staff_events()} >= {
        "user.created",
        "password.link-sent",
        "password.set",
        "user.signed-in",
        "user.signed-out",
        "password.reset",
    }


def _cli(
    database_url: str, home: str, *args: str, stdin: str | None = None, columns: int = 200
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ) | {"SITEFLOW_HOME": home, "SITEFLOW_DATABASE_URL": database_url}
    env["COLUMNS"] = str(columns)
    return subprocess.run(
        [sys.executable, "-m", "siteflow.cli", "users", *args],
        env=env,
        input=stdin,
        text=True,
        capture_output=True,
        timeout=120,
    )


@SQLITE_ONLY  # CLI subprocesses over the same code the database tests run on both backends
def test_users_commands_as_a_host_admin_runs_them(database_url: str, tmp_path: Path) -> None:
    home = str(tmp_path)
    first = _cli(
        database_url,
        home,
        "add",
        "--name",
        "陈静 Chen Jing",
        "--email",
        "Chen.Jing@Example.com",
        "--role",
        "admin",
        "--role",
        "pm",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert first.returncode == 0, first.stderr
    assert "chen.jing@example.com can sign in now" in first.stdout and PASSWORD not in first.stdout
    assert sign_in(CHEN.email, PASSWORD, "127.0.0.1").result is SigninResult.SIGNED_IN  # newline dropped

    invited = _cli(
        database_url, home, "add", "--name", "李伟 Li Wei", "--email", LI.email, "--role", "upgrade-guide"
    )
    assert invited.returncode == 0, invited.stderr
    with session_scope() as session:
        row = session.execute(select(OutboxMessage)).scalar_one()
    secret = token_of_row(row)  # derived as the relay will (the CLI made the key under the same home)
    assert secret and secret not in invited.stdout + invited.stderr  # nothing secret printed
    assert "single-use link" in invited.stdout

    again = _cli(database_url, home, "add", "--name", "X", "--email", "LI.WEI@example.com", "--role", "pm")
    assert again.returncode == 1 and "already exists" in again.stderr
    weak = _cli(
        database_url,
        home,
        "add",
        "--name",
        "X",
        "--email",
        "x@example.com",
        "--role",
        "pm",
        "--password-stdin",
        stdin="short\n",
    )
    assert weak.returncode == 1 and "at least 12 characters" in weak.stderr
    bad_role = _cli(database_url, home, "add", "--name", "X", "--email", "x@example.com", "--role", "boss")
    assert bad_role.returncode == 2 and "upgrade-guide" in bad_role.stderr

    listed = _cli(database_url, home, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["email"], r["roles"], r["status"]) for r in rows] == [
        ("chen.jing@example.com", ["admin", "pm"], "active"),
        (LI.email, ["upgrade-guide"], "invited"),
    ]
    assert all("password" not in key or key == "password_changed_at" for r in rows for key in r)
    table = _cli(database_url, home, "list", columns=80)  # a narrow terminal
    assert table.returncode == 0 and all(r["id"] in table.stdout for r in rows)  # ids never cut short

    disabled = _cli(database_url, home, "disable", "li.wei@example.com")
    assert disabled.returncode == 0 and "disabled li.wei@example.com" in disabled.stdout
    reset = _cli(database_url, home, "reset", "chen.jing@example.com")
    assert reset.returncode == 0 and "1 session(s) ended" in reset.stdout
    unknown = _cli(database_url, home, "reset", "nobody@example.com")
    assert unknown.returncode == 1 and "no staff account" in unknown.stderr
    actors = {e.actor for e in _staff_rows()}
    assert len(actors) == 1 and actors.pop().startswith("host-admin:")


def _staff_rows() -> list[AuditEvent]:
    with session_scope() as session:
        return [
            e for e in audit_chain.events_for(session, STREAM) if e.kind in ("user.created", "user.disabled")
        ]
