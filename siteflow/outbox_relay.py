"""Send the outbox with aiosmtplib (DESIGN.md "Mail").

Rows are claimed with a conditional UPDATE, so several relays never send the same row at
once. Temporary failures (connection refused, 4xx) are retried with exponential backoff and
jitter; permanent ones (5xx) mark the row failed and tell the PM. Every message carries a
stable Message-ID derived from its row: a crash after the SMTP server accepted it but before
the row was marked sent resends the *same* message, which mail systems de-duplicate by
Message-ID — delivery is at-least-once on the wire, once in the mailbox. Nothing is lost while
the server is down: rows simply wait.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, cast

import aiosmtplib
from sqlalchemy import ColumnElement, CursorResult, and_, or_, select, update

from models.outbox import OutboxMessage
from siteflow import audit_chain
from siteflow.approval_links import LINK_PLACEHOLDER, link_url
from siteflow.db import session_scope
from siteflow.settings import Settings, get_settings

log = logging.getLogger(__name__)

BACKOFF_BASE = timedelta(seconds=2)
BACKOFF_MAX = timedelta(minutes=10)
STALE_CLAIM = timedelta(minutes=2)


@dataclass(frozen=True)
class RelayPass:
    sent: int
    retried: int
    failed: int


def message_id(row_id: str, sender: str) -> str:
    domain = sender.rsplit("@", 1)[-1].rstrip(">").strip() or "siteflow.local"
    return f"<outbox-{row_id}@{domain}>"


def build_message(row: OutboxMessage, settings: Settings) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.mail_sender
    msg["To"] = row.recipient
    msg["Subject"] = row.title
    msg["Message-ID"] = row.message_id or message_id(row.id, settings.mail_sender)
    msg["Date"] = formatdate(row.created_at.timestamp(), localtime=False)
    body = row.body_text
    if row.secret:
        body = body.replace(LINK_PLACEHOLDER, link_url(row.secret))
    msg.set_content(body)
    return msg


def backoff(attempts: int) -> timedelta:
    factor: int = 2 ** max(0, attempts - 1)
    delay = min(BACKOFF_MAX, BACKOFF_BASE * factor)
    return delay * random.uniform(0.5, 1.0)


def _claimable(now: datetime) -> ColumnElement[bool]:
    """Pending and due, or claimed by a relay that died before finishing (stale claim)."""
    due = or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now)
    return or_(
        and_(OutboxMessage.status == "pending", due),
        and_(OutboxMessage.status == "sending", OutboxMessage.claimed_at < now - STALE_CLAIM),
    )


def _claim(now: datetime, limit: int) -> list[OutboxMessage]:
    with session_scope() as session:
        candidates = (
            session.execute(
                select(OutboxMessage.id)
                .where(_claimable(now))
                .order_by(OutboxMessage.created_at)
                .limit(limit)
            )
            .scalars()
            .all()
        )
    claimed: list[OutboxMessage] = []
    for row_id in candidates:
        with session_scope() as session:
            result = session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row_id, _claimable(now))
                .values(status="sending", claimed_at=now)
            )
            if cast(CursorResult[Any], result).rowcount:
                row = session.get(OutboxMessage, row_id)
                assert row is not None
                if row.message_id is None:
                    row.message_id = message_id(row.id, get_settings().mail_sender)
                claimed.append(row)
    return claimed


def _finish(row_id: str, *, sent: bool, error: str | None, permanent: bool) -> None:
    now = datetime.now(UTC)
    with session_scope() as session:
        row = session.get(OutboxMessage, row_id)
        assert row is not None
        row.attempts += 1
        if sent:
            row.status, row.sent_at, row.last_error = "sent", now, None
            row.secret = None  # the link token now exists only in the recipient's mailbox
            audit_chain.append(
                session,
                row.subject_ref,
                "mail.sent",
                "system:outbox",
                {"to": row.recipient, "title": row.title, "message_id": row.message_id},
            )
        elif permanent:
            row.status, row.last_error = "failed", error
            audit_chain.append(
                session,
                row.subject_ref,
                "mail.failed",
                "system:outbox",
                {"to": row.recipient, "title": row.title, "error": error},
            )
        else:
            row.status, row.last_error = "pending", error
            row.next_attempt_at = now + backoff(row.attempts)


def _is_permanent(exc: Exception) -> bool:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return all(500 <= r.code < 600 for r in exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return 500 <= exc.code < 600
    return False


async def relay_once(settings: Settings | None = None, limit: int = 50) -> RelayPass:
    s = settings or get_settings()
    rows = _claim(datetime.now(UTC), limit)
    sent = retried = failed = 0
    for row in rows:
        try:
            await aiosmtplib.send(
                build_message(row, s),
                hostname=s.smtp_host,
                port=s.smtp_port,
                timeout=15,
                start_tls=False,
                use_tls=False,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            permanent = _is_permanent(exc)
            _finish(row.id, sent=False, error=f"{type(exc).__name__}: {exc}", permanent=permanent)
            if permanent:
                failed += 1
                log.error("mail to %s refused for good: %s", row.recipient, exc)
            else:
                retried += 1
                log.warning("mail to %s will be retried: %s", row.recipient, exc)
            continue
        _finish(row.id, sent=True, error=None, permanent=False)
        sent += 1
    return RelayPass(sent, retried, failed)


async def run_forever(poll_seconds: float = 1.0) -> None:
    while True:
        try:
            await relay_once()
        except Exception as exc:  # the database may be briefly gone: keep going
            log.warning("outbox relay pass failed: %s", exc)
        await asyncio.sleep(poll_seconds)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per API call drowns the log
    asyncio.run(run_forever())


if __name__ == "__main__":
    main()
