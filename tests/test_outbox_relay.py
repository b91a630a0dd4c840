"""The outbox relay against a real SMTP server (aiosmtpd), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, update

from models.outbox import OutboxMessage
from siteflow import audit_chain
from siteflow.db import session_scope
from siteflow.outbox_relay import relay_once
from siteflow.settings import Settings


class Inbox:
    def __init__(self, refuse: set[str] | None = None) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.refuse = refuse or set()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.messages.append(msg)  # type: ignore[arg-type]
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def queue(n: int, subject: str = "ENG-1") -> list[str]:
    ids = []
    with session_scope() as session:
        for i in range(n):
            row = OutboxMessage(
                dedup_key=f"t-{i}",
                subject_ref=subject,
                recipient=f"陈静 <c{i}@example.com>",
                title=f"[{subject}] 待您决定 / Decision needed {i}",
                body_text=f"正文 body {i}",
            )
            session.add(row)
            session.flush()
            ids.append(row.id)
    return ids


def statuses() -> dict[str, str]:
    with session_scope() as session:
        return {r.id: r.status for r in session.execute(select(OutboxMessage)).scalars()}


def make_due() -> None:
    """Let the retry schedule pass without waiting for it."""
    with session_scope() as session:
        session.execute(
            update(OutboxMessage).values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
        )


def test_delivers_each_message_once_with_a_stable_message_id(database_url: str) -> None:
    ids = queue(3)
    port = free_port()
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings = Settings(smtp_port=port, database_url=database_url)
        first = asyncio.run(relay_once(settings))
        second = asyncio.run(relay_once(settings))
    finally:
        controller.stop()
    assert (first.sent, second.sent) == (3, 0)
    assert set(statuses().values()) == {"sent"}
    assert sorted(m["Message-ID"] for m in inbox.messages) == sorted(f"<outbox-{i}@localhost>" for i in ids)
    assert {str(m["Subject"]) for m in inbox.messages} == {
        f"[ENG-1] 待您决定 / Decision needed {i}" for i in range(3)
    }
    assert "正文" in inbox.messages[0].get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    with session_scope() as session:
        assert [e.kind for e in audit_chain.events_for(session, "ENG-1")] == ["mail.sent"] * 3


def test_nothing_lost_while_smtp_is_down_and_each_delivered_once_after(database_url: str) -> None:
    queue(5)
    port = free_port()
    settings = Settings(smtp_port=port, database_url=database_url)
    down = [asyncio.run(relay_once(settings)) for _ in range(3)]  # nobody listens on the port
    assert [p.retried for p in down] == [5, 0, 0]  # later passes wait for the backoff
    assert set(statuses().values()) == {"pending"}
    make_due()
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        up = asyncio.run(relay_once(settings))
        make_due()
        again = asyncio.run(relay_once(settings))
    finally:
        controller.stop()
    assert (up.sent, again.sent) == (5, 0)
    assert len(inbox.messages) == 5 and len({m["Message-ID"] for m in inbox.messages}) == 5
    with session_scope() as session:
        attempts = [r.attempts for r in session.execute(select(OutboxMessage)).scalars()]
    assert attempts == [2] * 5


def test_permanent_refusal_marks_failed_and_is_not_retried(database_url: str) -> None:
    queue(2)
    port = free_port()
    inbox = Inbox(refuse={"c1@example.com"})
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings = Settings(smtp_port=port, database_url=database_url)
        result = asyncio.run(relay_once(settings))
        make_due()
        later = asyncio.run(relay_once(settings))
    finally:
        controller.stop()
    assert (result.sent, result.failed, later.sent, later.failed) == (1, 1, 0, 0)
    assert sorted(statuses().values()) == ["failed", "sent"]
    with session_scope() as session:
        failed = [e for e in audit_chain.events_for(session, "ENG-1") if e.kind == "mail.failed"]
    assert len(failed) == 1 and "550" in failed[0].payload


def test_a_relay_that_died_mid_send_is_taken_over_with_the_same_message_id(database_url: str) -> None:
    [row_id] = queue(1)
    with session_scope() as session:  # claimed by a relay that then crashed
        session.execute(
            update(OutboxMessage).values(
                status="sending",
                claimed_at=datetime.now(UTC) - timedelta(minutes=5),
                message_id=f"<outbox-{row_id}@localhost>",
            )
        )
    port = free_port()
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        result = asyncio.run(relay_once(Settings(smtp_port=port, database_url=database_url)))
    finally:
        controller.stop()
    assert result.sent == 1
    assert [m["Message-ID"] for m in inbox.messages] == [f"<outbox-{row_id}@localhost>"]


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # a local test server
def test_smtp_login_from_settings_and_a_refused_login_loses_nothing(database_url: str) -> None:
    """SITEFLOW_SMTP_USERNAME/PASSWORD log in; a wrong password keeps the mail waiting."""
    from aiosmtpd.smtp import AuthResult, LoginPassword
    from pydantic import SecretStr

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"relay", b"s3cret")
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

    ids = queue(2)
    port = free_port()
    inbox = Inbox()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    try:
        wrong = Settings(smtp_port=port, smtp_username="relay", smtp_password=SecretStr("nope"))
        assert asyncio.run(relay_once(wrong)).retried == 2
        assert set(statuses().values()) == {"pending"} and inbox.messages == []
        make_due()
        right = Settings(smtp_port=port, smtp_username="relay", smtp_password=SecretStr("s3cret"))
        assert asyncio.run(relay_once(right)).sent == 2
    finally:
        controller.stop()
    assert [statuses()[i] for i in ids] == ["sent", "sent"] and len(inbox.messages) == 2
