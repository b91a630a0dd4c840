"""Send the outbox with aiosmtplib (docs/architecture.md "Mail").

Every text to a customer passes the COM-1 service-language check first: a forbidden phrase
holds the message (status ``stopped``), names the phrase and tells the PM. Rows are claimed
with a conditional UPDATE, so several relays never send the same row at
once. Temporary failures (connection refused, 4xx) are retried with exponential backoff and
jitter; permanent ones (5xx) mark the row failed and tell the PM. Every message carries a
stable Message-ID derived from its row: a crash after the SMTP server accepted it but before
the row was marked sent resends the *same* message, which mail systems de-duplicate by
Message-ID — delivery is at-least-once on the wire, once in the mailbox. Nothing is lost while
the server is down: rows simply wait.

Every mail to a customer carries the audit witness (:mod:`siteflow.mail_witness`): the head of
its subject's audit chain, signed, in a header and a short block at the end of the text.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

import aiosmtplib
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import ColumnElement, CursorResult, and_, func, or_, select, update

from models.document import Document
from models.gate import Gate, GateDecision
from models.outbox import OutboxMessage
from models.project_input import ROLE_SIDE, Role, Side
from models.roster import roster_of
from models.service_language import check_service_language
from siteflow import audit_chain, audit_checkpoints, mail_witness, site_time
from siteflow.db import get_engine, session_scope
from siteflow.mail_body import html_fragment, plain_text
from siteflow.mailed_links import LinkUnavailable, MailLink, link_for, tend_keys
from siteflow.settings import Settings, get_settings
from siteflow.sqlite_erasure import truncate_wal

log = logging.getLogger(__name__)

BACKOFF_BASE = timedelta(seconds=2)
BACKOFF_MAX = timedelta(minutes=10)
STALE_CLAIM = timedelta(minutes=2)
KEY_TENDING = 60.0  # seconds between looks at the link keys (rotate when due, delete unneeded)


@dataclass(frozen=True)
class RelayPass:
    sent: int
    retried: int
    failed: int


def message_id(row_id: str, sender: str) -> str:
    domain = sender.rsplit("@", 1)[-1].rstrip(">").strip() or "siteflow.local"
    return f"<outbox-{row_id}@{domain}>"


def build_message(row: OutboxMessage, settings: Settings, link: MailLink | None = None) -> EmailMessage:
    """Plain text and HTML (Chinese first, English beside it), both rendered from the row's
    Markdown (:mod:`siteflow.mail_body`: no ``###`` or ``| --- |`` reaches a reader), the
    personal link (derived by :func:`siteflow.mailed_links.link_for`, never read from the row)
    in place of its placeholder, the document the mail is about as an attachment, and a
    calendar invite as a text/calendar part."""
    msg = EmailMessage()
    msg["From"] = settings.mail_sender
    msg["To"] = row.recipient
    msg["Subject"] = row.title
    msg["Message-ID"] = row.message_id or message_id(row.id, settings.mail_sender)
    msg["Date"] = formatdate(row.created_at.timestamp(), localtime=False)
    body = row.body_text
    if link is not None:
        body = body.replace(link.placeholder, link.url)
    witness = _witness(row)
    if witness is not None:
        msg[audit_checkpoints.WITNESS_HEADER] = witness.header_value()
        body += mail_witness.block(witness, site_time.subject_zone(row.subject_ref))
    document = _document(row.document_id)
    msg.set_content(plain_text(body))
    msg.add_alternative(
        _html(row.title, body, link.url if link else None, document[0] if document else None),
        subtype="html",
        charset="utf-8",
    )
    if row.calendar_ics:
        method = "CANCEL" if "METHOD:CANCEL" in row.calendar_ics else "REQUEST"
        msg.add_alternative(row.calendar_ics, subtype="calendar", params={"method": method})
        msg.add_attachment(
            row.calendar_ics.encode(), maintype="text", subtype="calendar", filename="invite.ics"
        )
    if document:
        name, html = document
        msg.add_attachment(html, subtype="html", charset="utf-8", filename=name)
        pdf = _document_pdf(row.document_id or "")
        if pdf is not None:
            msg.add_attachment(
                pdf, maintype="application", subtype="pdf", filename=name[: -len(".html")] + ".pdf"
            )
    return msg


def _document(document_id: str | None) -> tuple[str, str] | None:
    if not document_id:
        return None
    with session_scope() as session:
        doc = session.get(Document, document_id)
        if doc is None:
            return None
        return f"{doc.subject}-{doc.doc_key}-v{doc.version}.html", doc.content


_PDFS: dict[tuple[str, str], bytes] = {}


def _document_pdf(document_id: str) -> bytes | None:
    """The document's PDF (issue #12: the paper to print, with its verification code), made
    once per version and state in this process — a gate mails it to several people, and a
    PDF takes most of a second to lay out. The stored HTML stays attached beside it: it is
    what the SHA-256 in the mail and the trail is of. Without the CJK font the mail goes
    without the PDF (and the relay's log says why) rather than not at all."""
    from siteflow.documents.fonts import CjkFontMissing

    with session_scope() as session:
        doc = session.get(Document, document_id)
        if doc is None:
            return None
        signatures = session.scalar(  # each signature adds a block: the second signer's mail shows the first
            select(func.count(GateDecision.id))
            .join(Gate, Gate.id == GateDecision.gate_id)
            .where(Gate.document_id == doc.id)
        )
        key = (doc.id, f"{doc.status}:{doc.signed_at}:{signatures}")
    if key not in _PDFS:
        try:
            from siteflow.documents.pdf import render_pdf  # WeasyPrint and its system libraries

            pdf = render_pdf(document_id)
        except CjkFontMissing as missing:
            log.warning("mail without the document's PDF: %s", missing)
            return None
        except Exception:  # a layout failure must not hold up the mail, nor the outbox behind it
            log.exception("mail without the document's PDF: rendering %s failed", document_id)
            return None
        if len(_PDFS) > 32:
            _PDFS.clear()
        _PDFS[key] = pdf
    return _PDFS[key]


@lru_cache(maxsize=1)
def _templates() -> Environment:
    return Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape(["j2"])
    )


def _html(title: str, body: str, link: str | None, document: str | None) -> str:
    """The HTML part: the body rendered from Markdown, the personal link as a button-like
    anchor (its text bilingual) instead of a long address."""
    if link:
        body = body.replace(link, f"[打开链接 / Open your link](<{link}>)")
    return (
        _templates()
        .get_template("mail.html.j2")
        .render(title=title, body=html_fragment(body), document=document)
    )


def _to_customer(row: OutboxMessage) -> bool:
    with session_scope() as session:
        roster = roster_of(session, row.subject_ref)
    address = row.recipient.rsplit("<", 1)[-1].rstrip(">").strip()
    contact = roster.contact(address) if roster is not None else None
    # the customer's side, construction department included (ENG-8 copies): COM-1 and a witness
    return contact is not None and ROLE_SIDE.get(contact.role) is Side.CUSTOMER


def _witness(row: OutboxMessage) -> audit_checkpoints.Checkpoint | None:
    """The signed head of the subject's chain, for a mail to a customer (published as a checkpoint)."""
    if not _to_customer(row):
        return None
    with session_scope() as session:
        return audit_checkpoints.sign_head(session, row.subject_ref, "mail")


def stop_reason(row: OutboxMessage) -> str | None:
    """COM-1: a text to a customer with a forbidden phrase is stopped, with the phrase named."""
    if not _to_customer(row):
        return None
    violations = check_service_language(f"{row.title}\n{row.body_text}")
    return "; ".join(str(v) for v in violations) or None


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


def _stop(row: OutboxMessage, reason: str) -> None:
    """Hold the message (never sent), record why, and tell the PMs so the text is rewritten."""
    log.error("mail to %s stopped: %s", row.recipient, reason)
    with session_scope() as session:
        held = session.get(OutboxMessage, row.id)
        assert held is not None
        held.status, held.last_error = "stopped", reason
        audit_chain.append(
            session,
            held.subject_ref,
            "mail.stopped",
            "system:outbox",
            {"to": held.recipient, "title": held.title, "reason": reason},
        )
        roster = roster_of(session, held.subject_ref)
        for pm in roster.contacts_with(Role.PM) if roster is not None else []:
            session.add(
                OutboxMessage(
                    dedup_key=f"mail-stopped:{held.id}:{pm.email}",
                    subject_ref=held.subject_ref,
                    recipient=f"{pm.name} <{pm.email}>",
                    title=f"[{held.subject_ref}] 邮件未发出 / A mail to the customer was stopped (COM-1)",
                    body_text=(
                        f"To: {held.recipient}\nSubject: {held.title}\n\n{reason}\n\n"
                        "请修改措辞后重新发送 / Please rewrite the text and send it again."
                    ),
                )
            )


def _is_permanent(exc: Exception) -> bool:
    """Only the message's own fault is permanent; our login being refused is a setting to fix,
    and the mail waits for it (never dropped)."""
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return False
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
        stopped = stop_reason(row)
        if stopped:
            _stop(row, stopped)
            failed += 1
            continue
        try:
            link = link_for(row)
        except LinkUnavailable as unavailable:
            _finish(row.id, sent=False, error=str(unavailable), permanent=True)
            log.error("mail to %s not sent: %s", row.recipient, unavailable)
            failed += 1
            continue
        except OSError as unreadable:  # the key directory unreadable for now: this row waits, not the outbox
            _finish(
                row.id, sent=False, error=f"its link key could not be read: {unreadable}", permanent=False
            )
            log.error(
                "mail to %s not sent yet: its link key could not be read (%s)", row.recipient, unreadable
            )
            failed += 1
            continue
        try:
            await aiosmtplib.send(
                build_message(row, s, link),
                hostname=s.smtp_host,
                port=s.smtp_port,
                timeout=15,
                start_tls=s.smtp_tls == "starttls",
                use_tls=s.smtp_tls == "tls",
                username=s.smtp_username,
                password=s.smtp_password.get_secret_value() if s.smtp_password else None,
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
    """Send; once a minute tend the link keys (a new one when due, old ones deleted once no
    unsent mail needs them: after that a sent token cannot be derived from anything on the host).

    After any pass that sent or failed a mail, SQLite's WAL is emptied too (retried each pass
    until it completes: a reader holding an old snapshot keeps the WAL for a while). No token is
    written to the database any more (:mod:`siteflow.link_keys`); this is for what an upgrade
    left — a pre-upgrade row's random token, re-keyed before it was mailed."""
    erased = False
    tended = -KEY_TENDING
    while True:
        try:
            done = await relay_once()
            erased = erased or done.sent > 0 or done.failed > 0
            if erased:
                erased = not truncate_wal(get_engine())
            if time.monotonic() - tended >= KEY_TENDING:
                tended = time.monotonic()
                for key_id in tend_keys():
                    log.info("link key %s deleted: every mail derived from it was sent", key_id)
        except Exception as exc:  # the database may be briefly gone: keep going
            log.warning("outbox relay pass failed: %s", exc)
        await asyncio.sleep(poll_seconds)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per API call drowns the log
    asyncio.run(run_forever())


if __name__ == "__main__":
    main()
