"""Reminders before a gate's deadline, and escalation of a silent customer to the PM (issue #4).

A gate waits on people, and people forget a mail. Left alone, a gate with a deadline default
simply lapses to that default and a customer sign-off waits for ever, with nobody owning the
silence. So the gate keeper nudges whoever has not answered before the deadline, and tells the
PM when a customer stays silent (INC-9: whoever owns the customer relationship is told, not
left to notice).

Every mail is written to the outbox with its audit record in one transaction, keyed by a
unique dedup key: the keeper runs this every pass, and several keepers may run at once
(docs/architecture.md "Where it runs"), yet each person hears once per gate. A reminder carries a fresh
single-use link of its own, so it works even after the first link was used up or lost.
A reminder is never sent sooner than halfway through a gate's life: a gate that opens close
to its deadline (an upgrade window's go/no-go) would otherwise send its reminder right after
its first notice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.gate import Gate, GateDecision, GateStatus
from models.outbox import LinkKind, OutboxMessage
from models.project_input import ContactIn, Role
from models.roster import Roster, roster_of
from models.upgrade_plan import UpgradePlanIn
from siteflow import audit_chain
from siteflow.approval_links import LINK_PLACEHOLDER, issue_link
from siteflow.clock import Clock, utc_now
from siteflow.db import session_scope
from siteflow.settings import get_settings
from siteflow.site_time import site_time

log = logging.getLogger(__name__)
ACTOR = "system:gate-keeper"
ATTEMPTS = 3  # a write lost to something other than its own dedup key is tried again


@dataclass(frozen=True)
class _Waiting:
    """Who a gate still waits on: the roles its unfilled slots admit, and who already signed."""

    roles: frozenset[str]
    signed: frozenset[str]

    def waits_for(self, contact: ContactIn) -> bool:
        return contact.role.value in self.roles and contact.email not in self.signed


def _waiting(session: Session, gate: Gate) -> _Waiting:
    signed = session.execute(
        select(GateDecision.party, GateDecision.signer_email).where(GateDecision.gate_id == gate.id)
    ).all()
    filled = {row.party for row in signed}
    roles = {role for p in gate.parties if p["slot"] not in filled for role in p["roles"]}
    return _Waiting(frozenset(roles), frozenset(row.signer_email for row in signed))


@dataclass(frozen=True)
class _Mail:
    dedup_key: str
    gate_id: str
    subject: str
    contact: ContactIn
    title: str
    body: str
    audit_kind: str
    audit_payload: dict[str, Any]
    still_due: Callable[[Session, Gate], bool]
    link_expires: datetime | None = None
    with_link: bool = False


def _already_queued(session: Session, keys: list[str]) -> set[str]:
    if not keys:
        return set()
    return set(
        session.execute(select(OutboxMessage.dedup_key).where(OutboxMessage.dedup_key.in_(keys))).scalars()
    )


def _queued(session: Session, key: str) -> bool:
    return session.execute(select(OutboxMessage.id).where(OutboxMessage.dedup_key == key)).first() is not None


def _queue_once(mail: _Mail) -> bool:
    """Write one mail and its audit record, unless it is queued already or no longer due."""
    for _ in range(ATTEMPTS):
        try:
            with session_scope() as session:
                if _already_queued(session, [mail.dedup_key]):
                    return False
                gate = session.get(Gate, mail.gate_id)
                if gate is None or gate.status != GateStatus.OPEN.value or not mail.still_due(session, gate):
                    return False
                link_id = (
                    issue_link(session, gate.id, mail.contact.name, mail.contact.email, mail.link_expires)
                    if mail.with_link
                    else None
                )
                session.add(
                    OutboxMessage(
                        dedup_key=mail.dedup_key,
                        subject_ref=mail.subject,
                        recipient=f"{mail.contact.name} <{mail.contact.email}>",
                        title=mail.title[:400],
                        body_text=mail.body,
                        link_kind=LinkKind.APPROVAL.value if link_id else None,
                        link_id=link_id,
                        document_id=gate.document_id if mail.with_link else None,  # the document again
                    )
                )
                session.flush()  # a racing keeper's row fails here, before the audit head is locked
                audit_chain.append(session, mail.subject, mail.audit_kind, ACTOR, mail.audit_payload)
            return True
        except IntegrityError:
            with session_scope() as session:
                if _queued(session, mail.dedup_key):
                    return False  # another keeper queued this very mail first
    log.warning("could not queue %s after %d attempts; the next pass tries again", mail.dedup_key, ATTEMPTS)
    return False


def _queue_all(mails: list[_Mail]) -> list[str]:
    """Queue each mail not queued yet, each in its own transaction; returns the keys queued here."""
    if not mails:
        return []
    with session_scope() as session:
        known = _already_queued(session, [m.dedup_key for m in mails])
    queued = []
    for mail in mails:
        if mail.dedup_key not in known and _queue_once(mail):
            queued.append(mail.dedup_key)
            log.info("queued %s to %s", mail.audit_kind, mail.contact.email)
    return queued


def _waits_for(contact: ContactIn) -> Callable[[Session, Gate], bool]:
    return lambda session, gate: _waiting(session, gate).waits_for(contact)


def _waits_for_customer(session: Session, gate: Gate) -> bool:
    return Role.CUSTOMER.value in _waiting(session, gate).roles


def _timezone(form: Roster) -> str:
    return form.window.timezone if isinstance(form, UpgradePlanIn) else form.timezone


def _when(at: datetime, zone: str) -> str:
    """Site time first, the UTC instant beside it (:mod:`siteflow.site_time`)."""
    return site_time(at, zone)


def reminder_text(gate: Gate, name: str, zone: str) -> str:
    """Plain-text reminder, Chinese first with English beside it; the link is filled in at send."""
    assert gate.deadline is not None
    default = (
        f"截止时如无决定，将按默认处理：{gate.default_decision} / "
        f"If nobody decides by then, the default applies: {gate.default_decision}\n"
        if gate.default_decision
        else ""
    )
    return (
        f"{name}，您好 / Dear {name},\n\n"
        f"{gate.subject} 仍在等待您的决定 / {gate.subject} is still waiting for your decision:\n"
        f"  {gate.title} ({gate.rule})\n  {gate.description}\n"
        f"  可选 / Choices: {' / '.join(gate.decisions)}\n\n"
        f"截止时间 / Deadline: {_when(gate.deadline, zone)}\n{default}\n"
        f"请打开您的专用链接确认 / Please confirm through your own link:\n  {LINK_PLACEHOLDER}\n\n"
        "链接仅供您本人使用一次；之前的链接如未使用仍然有效 / The link is yours alone and works once; "
        "an earlier link you have not used still works.\n"
        "感谢您的支持！/ Thank you for your support."
    )


def escalation_text(gate: Gate, pm: str, silent: list[ContactIn], waited: timedelta, zone: str) -> str:
    """Plain-text notice to the PM, Chinese first with English beside it; no link (the PM has their own)."""
    hours = int(waited.total_seconds() // 3600)
    who = (
        "\n".join(f"    {c.name} <{c.email}>" for c in silent)
        or "    （未列出客户联系人 / no customer contact listed）"
    )
    deadline = f"  截止时间 / Deadline: {_when(gate.deadline, zone)}\n" if gate.deadline else ""
    return (
        f"{pm}，您好 / Dear {pm},\n\n"
        f"{gate.subject} 的以下事项客户尚未答复 / A customer has not answered this for {gate.subject}:\n"
        f"  {gate.title} ({gate.rule})\n"
        f"  已等待 / Waiting for: {hours} 小时 / hours (since {_when(gate.opened_at, zone)})\n"
        f"{deadline}"
        f"  尚未答复的客户 / Customers who have not answered:\n{who}\n\n"
        "请联系客户并跟进到底（首问负责制）/ Please contact them and follow it through (INC-9).\n"
        f"关口 / Gate: {gate.id} — `siteflow gates list --project {gate.subject}`"
    )


def send_reminders(clock: Clock = utc_now) -> list[str]:
    """Remind everyone an open gate still waits on, once, before its deadline; returns the keys queued."""
    now = clock()
    before = timedelta(hours=get_settings().reminder_before_hours)
    mails: list[_Mail] = []
    with session_scope() as session:
        gates = session.execute(
            select(Gate)
            .where(
                Gate.status == GateStatus.OPEN.value,
                Gate.deadline.is_not(None),
                Gate.deadline > now,
                Gate.deadline <= now + before,
            )
            .order_by(Gate.deadline)
        ).scalars()
        for gate in gates:
            assert gate.deadline is not None
            halfway = gate.opened_at + (gate.deadline - gate.opened_at) / 2
            if now < halfway or (gate.not_before is not None and now < gate.not_before):
                continue
            form = roster_of(session, gate.subject)
            if form is None:
                continue
            waiting = _waiting(session, gate)
            zone = _timezone(form)
            for contact in form.contacts:
                if not waiting.waits_for(contact):
                    continue
                mails.append(
                    _Mail(
                        dedup_key=f"gate-reminder:{gate.id}:{contact.email}",
                        gate_id=gate.id,
                        subject=gate.subject,
                        contact=contact,
                        title=f"[{gate.subject}] 提醒：待您决定 / Reminder: decision needed: {gate.title}",
                        body=reminder_text(gate, contact.name, zone),
                        audit_kind="gate.reminded",
                        audit_payload={
                            "gate": gate.key,
                            "gate_id": gate.id,
                            "to": contact.email,
                            "role": contact.role.value,
                            "deadline": gate.deadline.isoformat(),
                        },
                        still_due=_waits_for(contact),
                        link_expires=gate.deadline,
                        with_link=True,
                    )
                )
    return _queue_all(mails)


def escalate_silent_customers(clock: Clock = utc_now) -> list[str]:
    """Tell each PM, once, of an open gate a customer left unanswered too long; returns the keys queued."""
    now = clock()
    after = timedelta(hours=get_settings().escalate_after_hours)
    customer = Role.CUSTOMER.value
    mails: list[_Mail] = []
    with session_scope() as session:
        gates = session.execute(
            select(Gate)
            .where(Gate.status == GateStatus.OPEN.value, Gate.opened_at <= now - after)
            .order_by(Gate.opened_at)
        ).scalars()
        for gate in gates:
            since = max(gate.opened_at, gate.not_before or gate.opened_at)  # silence counts once decidable
            if now - since < after or not any(customer in p["roles"] for p in gate.parties):
                continue
            waiting = _waiting(session, gate)
            if customer not in waiting.roles:
                continue
            form = roster_of(session, gate.subject)
            if form is None:
                continue
            silent = [c for c in form.contacts_with(Role.CUSTOMER) if waiting.waits_for(c)]
            zone = _timezone(form)
            for pm in form.contacts_with(Role.PM):
                mails.append(
                    _Mail(
                        dedup_key=f"gate-escalated:{gate.id}:{pm.email}",
                        gate_id=gate.id,
                        subject=gate.subject,
                        contact=pm,
                        title=f"[{gate.subject}] 客户尚未答复 / Customer has not answered: {gate.title}",
                        body=escalation_text(gate, pm.name, silent, now - since, zone),
                        audit_kind="gate.escalated",
                        audit_payload={
                            "gate": gate.key,
                            "gate_id": gate.id,
                            "to": pm.email,
                            "waiting_hours": round((now - since).total_seconds() / 3600, 1),
                            "customers": [c.email for c in silent],
                        },
                        still_due=_waits_for_customer,
                    )
                )
    return _queue_all(mails)
