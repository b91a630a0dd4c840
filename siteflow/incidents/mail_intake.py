"""Email intake: a mail to the support address opens an incident or is added to one (issue #11).

What happens to one mail (:func:`receive_mail`), in this order, so nothing is lost:

1. **Kept first.** The raw bytes are an ``incident_mails`` row before anything reads them
   (:class:`~models.incident_mail.InboundMail`, unique by Message-ID): a mail delivered twice is
   one row and one incident, and a crash while reading leaves it ``received``, not gone: the
   gate keeper reads such a mail again once its attempt is :data:`RETRY_AFTER` old
   (:func:`retry_kept_mail`; a conditional UPDATE lets one intake only take a mail up, and after
   :data:`MAX_ATTEMPTS` it is refused to a person). The SMTP catcher and the IMAP reader
   (:mod:`siteflow.incidents.mailbox_reader`) both come in through :func:`receive_mail`.
2. **Checked as text.** Sender, subject and body are text kinds of :mod:`models.text_kinds`
   (valid Unicode decoded strictly in the mail's own charset, no control characters, lengths)
   before anything reaches Prefect or the incident tables. A mail that fails — not valid
   UTF-8/charset, a body over 4000 characters, no usable Date or sender — is ``refused`` with
   the reason, kept, and its reason is mailed to the duty owner (a person answers it).
3. **Follow-up by key.** A subject naming an existing incident's key (``Re: [INC-2026-0042] …``)
   from a contact of that incident's contract (or its caller) is a
   :class:`~models.incident_input.CustomerMessageIn` on the incident's record — COM-2: requests
   and promises made to the customer are recorded — and the owner is told.
4. **New incident.** Otherwise the sender is looked up among the contracts' customer contacts
   (``ContractIn.customer_contacts``). Known to exactly one contract: the incident is opened
   with channel email and received = the mail's own Date (INC-4; a Date later than the arrival —
   the sender's clock is ahead — is taken as the arrival), owned by the contract's duty person
   or ``SITEFLOW_SUPPORT_DUTY`` (INC-9: an emailed incident's first receiver is the duty rota),
   and its **incident** run is started, which mails the customer the acknowledgement with the key
   (the same one a phoned-in incident gets, COM-1 checked by the relay). A mail answers no
   questionnaire, so nothing clearly applies: the run works to the more severe candidate and asks
   the customer their level (INC-3, ``none_fits``).
5. **Unknown sender** (no contract knows them, or several do): ``unknown-sender``, kept and mailed
   to the duty owner — never dropped; the duty owner opens it by hand or adds the contact.

Automatic replies (``Auto-Submitted`` other than ``no``, RFC 3834) are kept and ``ignored``, so
an auto-responder and our acknowledgement cannot mail each other forever.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import hashlib
import logging
import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import ColumnElement, CursorResult, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.incident import Incident
from models.incident_contract import ContractIn, IncidentContract, PersonIn
from models.incident_input import Channel, CustomerMessageIn, Instant, SeverityQuestionnaire
from models.incident_mail import InboundMail, MailOutcome
from models.incident_run import IncidentReportIn, IncidentRun
from models.outbox import OutboxMessage
from models.project_input import Strict
from models.text_kinds import Email, Line, OptionalLine, Text, problems, safe_text
from siteflow import audit_chain
from siteflow.db import session_scope
from siteflow.incidents import intake, records
from siteflow.incidents.refusals import IncidentRefused
from siteflow.settings import Settings

log = logging.getLogger(__name__)

INTAKE = "system:mail-intake"
KEY_IN_SUBJECT = re.compile(r"(?<![A-Z0-9-])([A-Z][A-Z0-9]{1,9}-[0-9]{4}-[0-9]{1,8})(?![0-9])")
"""An incident key (models.text_kinds.IncidentKey) anywhere in a subject, e.g. ``Re: [INC-2026-0042]``."""


class MailRefused(Exception):
    """A mail that cannot be taken as it is; ``reason`` says why, in words, without its bytes."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SupportMailIn(Strict):
    """A mail's parts as text kinds: what is checked before Prefect or the database sees it."""

    message_id: Line
    sender: Email
    sender_name: OptionalLine = ""
    subject: Line
    text: Text
    sent_at: Instant


class MailResult(BaseModel):
    """What became of one mail."""

    model_config = ConfigDict(frozen=True)

    mail_id: str
    outcome: MailOutcome
    reason: str
    incident_key: str | None
    routed_to: str | None


def mail_key(raw: bytes) -> str:
    """The mail's identity: its Message-ID, or its bytes when it has none."""
    found = re.search(rb"^message-id:\s*(\S+)", raw, re.IGNORECASE | re.MULTILINE)
    return hashlib.sha256(found.group(1) if found else raw).hexdigest()


def _strict_text(part: EmailMessage) -> str:
    """The part's text decoded strictly in its declared charset: a byte that is not valid there
    refuses the mail (``get_content`` would replace it silently and lose what was written)."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        raise MailRefused("the mail has no readable text body")
    charset = part.get_content_charset() or "us-ascii"
    try:
        return payload.decode(charset, errors="strict")
    except LookupError:
        raise MailRefused(f"the mail's charset '{safe_text(charset, 40)}' is unknown") from None
    except UnicodeDecodeError:
        raise MailRefused(f"the mail's body is not valid {safe_text(charset, 40)} text") from None


def parse_mail(raw: bytes) -> SupportMailIn:
    """The mail's sender, subject, text and Date, every one a checked text kind; refused with
    the reason (never echoing the bad characters) otherwise."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    try:
        names = email.utils.getaddresses([str(message.get("From", ""))])
        sent = message.get("Date")
        sent_at = sent.datetime if sent is not None and getattr(sent, "datetime", None) else None
    except (ValueError, TypeError, IndexError):
        raise MailRefused("the mail's From or Date header cannot be read") from None
    if not names or not names[0][1]:
        raise MailRefused("the mail has no sender (From)")
    if sent_at is None or sent_at.tzinfo is None:
        raise MailRefused("the mail has no Date with a time zone: its received time is unknown (INC-4)")
    body = message.get_body(preferencelist=("plain",))
    if not isinstance(body, EmailMessage):
        raise MailRefused("the mail has no plain-text part")
    text = _strict_text(body).replace("\r\n", "\n").strip()
    subject = str(message.get("Subject", "")).strip() or "(no subject)"
    try:
        return SupportMailIn(
            message_id=str(message.get("Message-ID", "")).strip() or f"<{mail_key(raw)}@no-message-id>",
            sender=names[0][1],
            sender_name=names[0][0],
            subject=subject,
            text=text,
            sent_at=sent_at,
        )
    except ValidationError as exc:
        raise MailRefused("; ".join(problems(exc))) from None


def _duty(settings: Settings, contract: ContractIn | None) -> PersonIn | None:
    """INC-9: who owns an emailed incident — the contract's duty person, else the setting."""
    if contract is not None and contract.duty is not None:
        return contract.duty
    if settings.support_duty:
        name, address = email.utils.parseaddr(settings.support_duty)
        if address:
            return PersonIn(name=name or address, email=address)
    return None


def _desk(session: Session, settings: Settings, contract: ContractIn | None) -> list[PersonIn]:
    """Who hears of a mail no incident takes (INC-9: routed, never dropped): the contract's
    duty person or the setting; for a mail no contract claims without the setting, the duty
    person of every contract — someone on duty reads it."""
    one = _duty(settings, contract)
    if one is not None:
        return [one]
    people = {
        t.duty.email.lower(): t.duty
        for t in (r.terms() for r in session.scalars(select(IncidentContract)))
        if t.duty is not None
    }
    return list(people.values())


def _tell(session: Session, row: InboundMail, to: list[PersonIn], title: str, text: str) -> str | None:
    """A staff mail about this support mail through the outbox (once per mail and person)."""
    if not to:
        log.warning("support mail %s (%s): no duty owner to tell; set SITEFLOW_SUPPORT_DUTY", row.id, title)
        return None
    for person in to:
        session.add(
            OutboxMessage(
                dedup_key=f"support-mail:{row.id}:{person.email}"[:200],
                subject_ref=row.incident_key or "support",
                recipient=f"{person.name} <{person.email}>",
                title=title[:400],
                body_text=text,
            )
        )
    return ", ".join(f"{p.name} <{p.email}>" for p in to)[:400]


def _contracts_knowing(session: Session, sender: str) -> list[ContractIn]:
    terms = [r.terms() for r in session.scalars(select(IncidentContract).order_by(IncidentContract.code))]
    return [t for t in terms if t.contact(sender) is not None]


def _new_key(session: Session, year: int) -> str:
    """The next free ``INC-<year>-<n>`` (phoned-in incidents choose theirs; taken ones are skipped)."""
    prefix = f"INC-{year}-"
    taken = set(session.scalars(select(Incident.key).where(Incident.key.like(f"{prefix}%"))))
    n = len(taken) + 1
    while f"{prefix}{n:04d}" in taken:
        n += 1
    return f"{prefix}{n:04d}"


def _finish(row: InboundMail, outcome: MailOutcome, reason: str, routed: str | None) -> MailResult:
    row.outcome, row.reason, row.routed_to = outcome.value, reason, routed
    return MailResult(
        mail_id=row.id, outcome=outcome, reason=reason, incident_key=row.incident_key, routed_to=routed
    )


def _refuse(session: Session, row: InboundMail, settings: Settings, reason: str) -> MailResult:
    contract = records.load_contract(session, code=row.contract_code) if row.contract_code else None
    routed = _tell(
        session,
        row,
        _desk(session, settings, contract),
        f"[support] mail refused: {safe_text(row.subject or '(unreadable subject)', 80)}",
        f"A mail to the support address from {safe_text(row.envelope_from, 120)} was refused and kept "
        f"(record {row.id}): {reason}\nAnswer the sender yourself; nothing was opened.",
    )
    audit_chain.append(
        session,
        row.incident_key or "support",
        "support.mail.refused",
        INTAKE,
        {"mail": row.id, "reason": reason},
    )
    return _finish(row, MailOutcome.REFUSED, reason, routed)


def _unknown(
    session: Session,
    row: InboundMail,
    settings: Settings,
    mail: SupportMailIn,
    why: str,
    contract: ContractIn | None,
) -> MailResult:
    """INC-9: recorded and routed to the duty owner, never dropped."""
    routed = _tell(
        session,
        row,
        _desk(session, settings, contract),
        f"[support] mail from an unknown sender: {mail.subject}"[:400],
        f"{mail.sender} wrote to the support address ({why}); the mail is kept as record {row.id}.\n"
        f"Subject: {mail.subject}\n\n{mail.text}\n\n"
        "Open an incident for it with `siteflow incidents open FILE` (you become its owner, INC-9), "
        "or add the sender to the contract's customer_contacts.",
    )
    audit_chain.append(
        session,
        row.incident_key or "support",
        "support.mail.unknown-sender",
        INTAKE,
        {"mail": row.id, "from": mail.sender, "why": why},
    )
    return _finish(row, MailOutcome.UNKNOWN_SENDER, why, routed)


def _follow_up(
    session: Session, row: InboundMail, settings: Settings, mail: SupportMailIn, key: str, now: datetime
) -> MailResult:
    """COM-2: the customer's message on the incident it names, and its owner told."""
    incident = records.load_incident(session, key=key)
    contract = records.load_contract(session, code=incident.contract)
    run = session.get(IncidentRun, key)
    caller = run.caller_email.lower() if run is not None else ""
    contact = contract.contact(mail.sender)
    if contact is None and mail.sender.lower() != caller:
        return _unknown(
            session, row, settings, mail, f"not a contact of contract {contract.code} of {key}", contract
        )
    event = CustomerMessageIn(
        at=min(mail.sent_at, row.arrived_at),
        by=contact.name if contact is not None else (run.caller_name if run is not None else mail.sender),
        sender=mail.sender,
        subject=mail.subject,
        text=mail.text,
        message_id=mail.message_id,
    )
    try:
        records.record_event(session, key=key, event=event, now=now)
    except IncidentRefused as exc:
        return _refuse(session, row, settings, str(exc))
    audit_chain.append(
        session, key, "incident.customer-message", mail.sender, {"mail": row.id, "subject": mail.subject}
    )
    owner = (
        [PersonIn(name=run.owner_name, email=run.owner_email)]
        if run is not None
        else _desk(session, settings, contract)
    )
    routed = _tell(
        session,
        row,
        owner,
        f"[{key}] the customer wrote: {mail.subject}"[:400],
        f"{event.by} <{mail.sender}> wrote on {key} (kept on its record, COM-2):\n\n{mail.text}\n\n"
        f"`siteflow incidents show {key}`",
    )
    return _finish(row, MailOutcome.ADDED, f"added to {key}", routed)


def _open(
    session: Session, row: InboundMail, settings: Settings, mail: SupportMailIn, now: datetime
) -> tuple[MailResult, IncidentReportIn | None]:
    knowing = _contracts_knowing(session, mail.sender)
    if len(knowing) != 1:
        why = (
            "no contract names this sender"
            if not knowing
            else "several contracts name this sender: " + ", ".join(c.code for c in knowing)
        )
        return _unknown(session, row, settings, mail, why, None), None
    contract = knowing[0]
    contact = contract.contact(mail.sender)
    assert contact is not None
    owner = _duty(settings, contract)
    row.contract_code = contract.code
    if owner is None:
        return _refuse(
            session,
            row,
            settings,
            f"INC-9: contract {contract.code} names no duty person and SITEFLOW_SUPPORT_DUTY is "
            "not set: nobody would own it",
        ), None
    try:
        report = IncidentReportIn(
            key=_new_key(session, mail.sent_at.astimezone(UTC).year),
            received_at=min(mail.sent_at, row.arrived_at),
            channel=Channel.EMAIL,
            contract=contract.code,
            customer=contract.customer,
            caller_name=contact.name,
            caller_contact=contact.phone or contact.email,
            caller_email=contact.email,
            reported=f"{mail.subject}\n\n{mail.text}",
            questionnaire=SeverityQuestionnaire(none_fits=True),
            owner_name=owner.name,
            owner_email=owner.email,
        )
        taken = intake.take_intake(session, report=report, now=now)
    except ValidationError as exc:
        return _refuse(session, row, settings, "; ".join(problems(exc))), None
    except IncidentRefused as exc:
        return _refuse(session, row, settings, str(exc)), None
    row.incident_key = report.key
    audit_chain.append(
        session,
        report.key,
        "incident.opened-by-mail",
        mail.sender,
        {"mail": row.id, "message_id": mail.message_id},
    )
    return _finish(
        row,
        MailOutcome.OPENED,
        f"opened {taken.key} ({taken.severity.value}, provisional)",
        f"{owner.name} <{owner.email}>",
    ), report


RETRY_AFTER = timedelta(minutes=2)
"""A mail still ``received`` whose last attempt began this long ago was left by a crash (reading
one takes well under a second): the keeper takes it up again. Until then it is someone's."""
MAX_ATTEMPTS = 3
"""After this many attempts that did not finish, the mail is refused and a person reads it: a
mail that crashes the reader every time must not crash it forever."""


def _claim(where: ColumnElement[bool], now: datetime) -> int | None:
    """Take up a kept, unread mail that nobody is at (conditional UPDATE: of two intakes only one
    wins); the number of this attempt, or None when it is read or someone is at it."""
    with session_scope() as session:
        taken = session.execute(
            update(InboundMail)
            .where(
                where,
                InboundMail.outcome == MailOutcome.RECEIVED.value,
                or_(InboundMail.attempted_at.is_(None), InboundMail.attempted_at < now - RETRY_AFTER),
            )
            .values(attempted_at=now, attempts=InboundMail.attempts + 1)
            .execution_options(synchronize_session=False)
        )
        if cast(CursorResult[Any], taken).rowcount != 1:
            return None
        return session.scalars(select(InboundMail.attempts).where(where)).one()


def _result(row: InboundMail) -> MailResult:
    return MailResult(
        mail_id=row.id,
        outcome=MailOutcome(row.outcome),
        reason=row.reason,
        incident_key=row.incident_key,
        routed_to=row.routed_to,
    )


def _decide(
    session: Session, row: InboundMail, settings: Settings, now: datetime
) -> tuple[MailResult, IncidentReportIn | None]:
    """Steps 2–5 of the module's docstring, for a kept mail this intake has taken up."""
    raw = row.raw
    auto = str(email.message_from_bytes(raw, policy=email.policy.default).get("Auto-Submitted", "no"))
    try:
        mail = parse_mail(raw)
    except MailRefused as exc:
        return _refuse(session, row, settings, exc.reason), None
    row.sender, row.subject = mail.sender.lower(), mail.subject
    named = KEY_IN_SUBJECT.search(mail.subject)
    if auto.strip().lower() != "no":
        return _finish(
            row, MailOutcome.IGNORED, f"an automatic reply (Auto-Submitted: {safe_text(auto, 40)})", None
        ), None
    if named and session.get(Incident, named.group(1)) is not None:
        row.incident_key = named.group(1)
        return _follow_up(session, row, settings, mail, named.group(1), now), None
    return _open(session, row, settings, mail, now)


def _read(where: ColumnElement[bool], attempt: int, settings: Settings, now: datetime) -> MailResult:
    """Read a mail this intake has taken up (attempt ``attempt``); a failure leaves it
    ``received`` with the reason, for the keeper's next attempt after :data:`RETRY_AFTER`."""
    report: IncidentReportIn | None = None
    try:
        with session_scope() as session:
            row = session.scalars(select(InboundMail).where(where)).one()
            if attempt > MAX_ATTEMPTS:
                result = _refuse(
                    session,
                    row,
                    settings,
                    f"it could not be read in {MAX_ATTEMPTS} attempts ({safe_text(row.reason, 200)}); "
                    "its bytes are kept",
                )
            else:
                result, report = _decide(session, row, settings, now)
    except Exception as exc:  # kept: the keeper reads it again (RETRY_AFTER), nothing is lost
        log.exception("support mail: attempt %d to read it failed; it is kept and read again", attempt)
        with session_scope() as session:
            row = session.scalars(select(InboundMail).where(where)).one()
            row.reason = f"attempt {attempt} failed: {safe_text(str(exc), 200)}"
            return _result(row)
    if report is not None:  # after the commit: the run adopts the reserved incident
        from siteflow.incidents.run_start import start_incident_run

        try:
            start_incident_run(report)
        except Exception as exc:  # kept and reserved: the reason is on the mail's record
            log.exception("incident %s from mail %s: its run did not start", report.key, result.mail_id)
            with session_scope() as session:
                kept = session.get(InboundMail, result.mail_id)
                if kept is not None:
                    kept.reason += f"; its run did not start ({safe_text(str(exc), 200)})"
    log.info("support mail %s: %s (%s)", result.mail_id, result.outcome.value, result.reason)
    return result


def receive_mail(
    raw: bytes,
    *,
    envelope_from: str,
    settings: Settings,
    now: datetime | None = None,
    arrived_at: datetime | None = None,
) -> MailResult:
    """Take one mail addressed to the support address (see the module's docstring): the SMTP
    catcher's and the IMAP reader's one way in. ``arrived_at`` is when it reached the mailbox
    (IMAP's INTERNALDATE), ``now`` by default. Raises only when the mail could not be kept;
    once this returns, the mail is siteflow's (read now, or by the keeper after a crash)."""
    now = now or datetime.now(UTC)
    key = mail_key(raw)
    where = InboundMail.mail_key == key
    try:
        with session_scope() as session:  # 1. kept before it is read, and taken up at once
            session.add(
                InboundMail(
                    mail_key=key,
                    arrived_at=min(arrived_at or now, now),
                    envelope_from=envelope_from[:320],
                    raw=raw,
                    attempts=1,
                    attempted_at=now,
                )
            )
        attempt: int | None = 1
    except IntegrityError:  # delivered before: read already, being read, or left by a crash
        attempt = _claim(where, now)
    if attempt is None:
        with session_scope() as session:
            return _result(session.scalars(select(InboundMail).where(where)).one())
    return _read(where, attempt, settings, now)


def retry_kept_mail(settings: Settings, now: datetime | None = None, limit: int = 50) -> list[MailResult]:
    """Read again each kept mail that a crash left unread (still ``received``, its last attempt
    older than :data:`RETRY_AFTER`): the gate keeper calls this on every pass. Each is taken up
    by one intake only (:func:`_claim`) and, read, is never read again."""
    now = now or datetime.now(UTC)
    with session_scope() as session:
        left = list(
            session.scalars(
                select(InboundMail.id)
                .where(
                    InboundMail.outcome == MailOutcome.RECEIVED.value,
                    or_(InboundMail.attempted_at.is_(None), InboundMail.attempted_at < now - RETRY_AFTER),
                )
                .order_by(InboundMail.arrived_at)
                .limit(limit)
            )
        )
    results = []
    for mail_id in left:
        where = InboundMail.id == mail_id
        attempt = _claim(where, now)
        if attempt is not None:
            results.append(_read(where, attempt, settings, now))
    return results
