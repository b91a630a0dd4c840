"""Warnings, breaches and escalations of running incidents, each mailed once (INC-4, INC-9).

The gate keeper calls :func:`send_due_notices` on every pass. A handover its receiver leaves
unanswered is chased the same way (:func:`handover_notices`). For each open incident it computes
the clocks (:func:`~siteflow.incidents.clocks.compute_clocks`) and what is due and not yet sent
(:func:`~siteflow.incidents.clocks.due_notices`): owner and PM are warned at 50 % and 75 % of a
target and told of the breach; after a breach the contract's escalation chain is told one step
at a time, each step its delay after the previous one, while the clock still runs (a stopped
clock has nobody left to chase). A problem report that falls overdue is mailed to whoever
raised it, once (:func:`problem_notices`, INC-8). The same pass publishes the clocks artifact
of incidents whose table went stale (:class:`~siteflow.incidents.run_view.ClocksRefresh`).
A notice is an ``incident_notices`` row, unique per incident
and notice key, written in the same transaction as its outbox mails and its audit record: with
several keepers the first insert wins and the others roll back, so each notice goes out once.
Notice keys do not name the severity, so a reclassification sends no second breach notice.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

from pydantic import BaseModel, ConfigDict
from sqlalchemy import literal, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.incident import Incident, IncidentState, ProblemReport
from models.incident_contract import ContractIn
from models.incident_handover import HandoverState, IncidentHandover
from models.incident_input import IncidentEvent, PromiseIn
from models.incident_run import IncidentNotice, NoticeKind
from models.outbox import OutboxMessage
from models.project_input import Role
from models.roster import incident_contacts
from siteflow import audit_chain
from siteflow.clock import Clock, utc_now
from siteflow.db import read_scope, session_scope
from siteflow.incidents import records
from siteflow.incidents.clocks import ClockState, IncidentClocks, MarkKind, due_notices
from siteflow.incidents.handover import pending_handover
from siteflow.incidents.run_view import ClocksRefresh, publish_clocks
from siteflow.site_time import site_time

log = logging.getLogger(__name__)

KEEPER = "system:incident-keeper"


class PlannedNotice(BaseModel):
    """One notice due now: its key (unique per incident), when it fell due, who gets it."""

    model_config = ConfigDict(frozen=True)

    key: str
    kind: NoticeKind
    due_at: datetime
    recipients: list[str]
    title: str
    text: str


def _words(share: MarkKind) -> str:
    return {
        MarkKind.WARNING_50: "50 % of its target used / 已用目标时间 50 %",
        MarkKind.WARNING_75: "75 % of its target used / 已用目标时间 75 %",
        MarkKind.BREACH: "target missed / 已超时",
    }[share]


def planned_notices(
    key: str,
    clocks: IncidentClocks,
    contract: ContractIn,
    sent: set[str],
    staff: list[str],
    now: datetime,
) -> list[PlannedNotice]:
    """What is due for one incident and not in ``sent``: marks (to ``staff``: owner and PM) and
    escalation steps after a breach (each to its own person), oldest first."""
    planned: list[PlannedNotice] = []
    for notice in due_notices(clocks, sent):
        reading = clocks.reading(notice.clock)
        kind = NoticeKind.BREACH if notice.kind is MarkKind.BREACH else NoticeKind.WARNING
        planned.append(
            PlannedNotice(
                key=notice.key,
                kind=kind,
                due_at=notice.at,
                recipients=staff,
                title=f"[{key}] {notice.clock.value} clock: {_words(notice.kind)}",
                text=(
                    f"Incident {key} ({clocks.severity.value}): the {notice.clock.value} clock reached "
                    f"{_words(notice.kind)} at {site_time(notice.at, contract.timezone)} (INC-4).\n"
                    f"Due: {site_time(reading.due_at, contract.timezone) if reading.due_at else '—'}\n"
                    f"`siteflow incidents show {key}`"
                ),
            )
        )
    for reading in clocks.readings:
        breach = next((m for m in reading.marks if m.kind is MarkKind.BREACH), None)
        if breach is None or not breach.reached or breach.at is None:
            continue
        until = reading.stopped_at if reading.state is ClockState.STOPPED and reading.stopped_at else now
        at = breach.at
        for n, step in enumerate(contract.escalation, 1):  # INC-9: one step at a time
            at += timedelta(minutes=step.after_minutes)
            notice_key = f"{reading.clock.value}:escalation-{n}"
            if at > until or notice_key in sent:
                continue
            planned.append(
                PlannedNotice(
                    key=notice_key,
                    kind=NoticeKind.ESCALATION,
                    due_at=at,
                    recipients=[f"{step.name} <{step.email}>"],
                    title=f"[{key}] escalation {n} ({step.role}): {reading.clock.value} target missed",
                    text=(
                        f"Incident {key} missed its {reading.clock.value} target at "
                        f"{site_time(breach.at, contract.timezone)} and is still not handled: escalated "
                        f"to you ({step.role}, step {n} of the contract's chain, INC-9).\n"
                        f"`siteflow incidents show {key}`"
                    ),
                )
            )
    return sorted(planned, key=lambda p: p.due_at)


def handover_notices(
    key: str, handover: IncidentHandover | None, contract: ContractIn, sent: set[str], now: datetime
) -> list[PlannedNotice]:
    """INC-9: a handover its receiver has not answered within the contract's time is chased —
    first the owner, who still owns the incident and keeps following it, then the contract's
    chain one step at a time, each its delay after the previous one. Nothing once answered."""
    if handover is None or handover.state != HandoverState.PENDING.value:
        return []
    waited = contract.handover_answer_minutes
    at = handover.requested_at + timedelta(minutes=waited)
    asked = site_time(handover.requested_at, contract.timezone)
    to = f"{handover.to_name} <{handover.to_email}>"
    chain = [("owner", handover.from_name, handover.from_email, 0)] + [
        (step.role, step.name, step.email, step.after_minutes) for step in contract.escalation
    ]
    planned: list[PlannedNotice] = []
    for n, (role, name, email, delay) in enumerate(chain):
        at += timedelta(minutes=delay)
        notice_key = f"handover-{handover.id[:8]}:escalation-{n}"
        if at > now or notice_key in sent:
            continue
        you = (
            "You still own it: follow it up or hand it to someone else"
            if n == 0
            else f"escalated to you ({role}, step {n} of the contract's chain)"
        )
        planned.append(
            PlannedNotice(
                key=notice_key,
                kind=NoticeKind.ESCALATION,
                due_at=at,
                recipients=[f"{name} <{email}>"],
                title=f"[{key}] 移交未被接受 / handover not accepted within {waited} min",
                text=(
                    f"Incident {key} was handed from {handover.from_name} <{handover.from_email}> to {to} "
                    f"at {asked}; {handover.to_name} has neither accepted nor declined it within "
                    f"{waited} minutes. Until it is accepted the owner is unchanged (INC-9). {you}.\n"
                    f"故障 {key} 的移交尚未被接受，负责人不变 (INC-9)。\n"
                    f"`siteflow incidents show {key}`"
                ),
            )
        )
    return planned


class NextLook(BaseModel):
    """The look time a pass read and the one it sets (only over what it read: a change made
    meanwhile asked for its own look, which must not be overwritten)."""

    model_config = ConfigDict(frozen=True)

    seen: datetime | None
    then: datetime


def _set_next_look(session: Session, key: str, look: NextLook) -> None:
    session.execute(
        update(Incident)
        .where(Incident.key == key, Incident.next_notice_at.is_not_distinct_from(look.seen))
        .values(next_notice_at=look.then)
    )


def promise_notices(
    key: str,
    events: list[IncidentEvent],
    contract: ContractIn,
    sent: set[str],
    owner: list[str],
    now: datetime,
) -> list[PlannedNotice]:
    """COM-2: each promise made to the customer whose time has come reminds the owner, once —
    the promise is on the record, and a service desk does not let one lapse unseen."""
    planned: list[PlannedNotice] = []
    for n, event in enumerate(events, 1):
        if not isinstance(event, PromiseIn) or event.due is None:
            continue
        notice_key = f"promise:{n}"
        if event.due > now or notice_key in sent:
            continue
        planned.append(
            PlannedNotice(
                key=notice_key,
                kind=NoticeKind.PROMISE,
                due_at=event.due,
                recipients=owner,
                title=f"[{key}] 对客户的承诺到期 / promise to the customer due: {event.what}"[:400],
                text=(
                    f"On incident {key}, {event.by} promised the customer at "
                    f"{site_time(event.at, contract.timezone)}: {event.what}\n"
                    f"It was due {site_time(event.due, contract.timezone)} (COM-2). Keep it, or tell the "
                    f"customer what happens instead and record that.\n`siteflow incidents show {key}`"
                ),
            )
        )
    return planned


def _send(key: str, notice: PlannedNotice, now: datetime, look: NextLook | None = None) -> bool:
    """The notice row, its mails and its audit record in one transaction — with the incident's
    next look when it is the pass's last notice for it (one commit, not two); False when another
    keeper recorded it first (the unique key refuses the second insert)."""
    try:
        with session_scope() as session:
            if look is not None:
                _set_next_look(session, key, look)
            session.add(
                IncidentNotice(
                    incident_key=key,
                    notice_key=notice.key,
                    kind=notice.kind.value,
                    due_at=notice.due_at,
                    sent_at=now,
                    recipients=notice.recipients,
                )
            )
            session.flush()
            for recipient in notice.recipients:
                session.add(
                    OutboxMessage(
                        dedup_key=f"incident-notice:{key}:{notice.key}:{recipient}"[:200],
                        subject_ref=key,
                        recipient=recipient,
                        title=notice.title,
                        body_text=notice.text,
                    )
                )
            audit_chain.append(
                session,
                key,
                f"incident.{notice.kind.value}",
                KEEPER,
                {"notice": notice.key, "due_at": notice.due_at.isoformat(), "to": notice.recipients},
            )
    except IntegrityError:
        return False
    return True


RECHECK = timedelta(hours=6)
"""How long an incident with nothing foreseeable due is left alone: a safety net only — every
change that can bring a notice forward already asks for a look (``Incident.next_notice_at``)."""


def next_look(
    key: str,
    clocks: IncidentClocks,
    contract: ContractIn,
    done: set[str],
    staff: list[str],
    waiting: IncidentHandover | None,
    now: datetime,
) -> datetime:
    """When the keeper next needs to look at this incident: the earliest warning, breach,
    escalation step or handover chase still to come, as things stand now."""
    later = now + timedelta(days=3650)  # every step of the chains, as if time had run on
    upcoming = [
        m.at
        for reading in clocks.readings
        if reading.state is ClockState.RUNNING  # a stopped or paused clock reaches no mark
        for m in reading.marks
        if not m.reached and m.at is not None and m.at > now and m.notice_key not in done
    ]
    upcoming += [
        p.due_at for p in planned_notices(key, clocks, contract, done, staff, later) if p.due_at > now
    ]
    upcoming += [p.due_at for p in handover_notices(key, waiting, contract, done, later) if p.due_at > now]
    return min(upcoming, default=now + RECHECK)


def problem_notices(session: Session, on: date, now: datetime) -> list[tuple[str, PlannedNotice]]:
    """INC-8: each problem report that fell overdue (open, past its due date on its incident's
    contract clock) and whose raiser has not been told yet: one mail to them, once (its notice
    row's unique key). ``on`` is the UTC date; a day ahead of it is the most any clock is."""
    rows = session.execute(
        select(ProblemReport)
        .outerjoin(
            IncidentNotice,
            (IncidentNotice.incident_key == ProblemReport.incident_key)
            & (IncidentNotice.notice_key == literal("problem-overdue:") + ProblemReport.id),
        )
        .where(
            ProblemReport.closed_at.is_(None),
            ProblemReport.due <= on,  # past due somewhere on Earth; each is judged on its own clock
            ProblemReport.opened_by_email.is_not(None),
            IncidentNotice.id.is_(None),
        )
    ).scalars()
    days: dict[str, date] = {}
    planned = []
    for row in rows:
        if row.incident_key not in days:
            days[row.incident_key] = records.local_day(session, key=row.incident_key, now=now)
        if not row.due < days[row.incident_key]:
            continue
        planned.append(
            (
                row.incident_key,
                PlannedNotice(
                    key=f"problem-overdue:{row.id}",
                    kind=NoticeKind.PROBLEM_OVERDUE,
                    due_at=now,
                    recipients=[f"{row.opened_by} <{row.opened_by_email}>"],
                    title=f"[{row.incident_key}] 问题报告逾期 / Problem report overdue: {row.title}"[:400],
                    text=(
                        f"{row.opened_by}，您好 / Dear {row.opened_by},\n\n"
                        f"您为故障 {row.incident_key} 提交的问题报告已过期限 {row.due.isoformat()}，"
                        "仍未关闭 / "
                        f"The problem report you raised for {row.incident_key} was due on "
                        f"{row.due.isoformat()} and is still open (INC-8):\n  {row.title}\n"
                        f"  Office: {row.office}\n\n"
                        f"`siteflow problems list --overdue`; `siteflow problems close {row.id}` once fixed."
                    ),
                ),
            )
        )
    return planned


def send_due_notices(clock: Clock = utc_now, refresh: ClocksRefresh | None = None) -> list[tuple[str, str]]:
    """One pass over the open incidents that are due a look; returns the (incident, notice key)
    pairs sent now. Each incident looked at gets its next look time, so a pass costs what is due,
    not what is open (10,000 open incidents: ``benchmarks/incident_warnings.py``). With
    `refresh`, the clocks of those whose table went stale are published again (INC-4), and the
    next refresh is one of the times the incident is looked at."""
    now = clock()
    with session_scope() as session:
        due_a_look = list(
            session.execute(
                select(Incident.key, Incident.next_notice_at).where(
                    Incident.state == IncidentState.OPEN.value,
                    or_(Incident.next_notice_at.is_(None), Incident.next_notice_at <= now),
                )
            ).tuples()
        )
        overdue = problem_notices(session, now.date() + timedelta(days=1), now)
    sent: list[tuple[str, str]] = []
    stale: list[tuple[str, IncidentClocks]] = []
    for key, notice in overdue:
        if _send(key, notice, now):
            log.info("problem report overdue: %s told (%s)", notice.recipients[0], notice.key)
            sent.append((key, notice.key))
    for key, seen in due_a_look:
        with read_scope() as session:
            roster = incident_contacts(session, key)
            if roster is None:  # reserved, its run not yet registered: nobody to tell yet
                continue
            staff = [f"{c.name} <{c.email}>" for c in roster.contacts_with(Role.ENGINEER, Role.PM)]
            record = records.load_incident(session, key=key)
            contract = records.load_contract(session, code=record.contract)
            clocks = records.clocks_of(record, contract, now)
            done = set(
                session.scalars(select(IncidentNotice.notice_key).where(IncidentNotice.incident_key == key))
            )
            waiting = pending_handover(session, key)
            events = record.events
            owner = [f"{c.name} <{c.email}>" for c in roster.contacts_with(Role.ENGINEER)]
            due = planned_notices(key, clocks, contract, done, staff, now)
            due += handover_notices(key, waiting, contract, done, now)
            due += promise_notices(key, events, contract, done, owner, now)
            then = next_look(key, clocks, contract, done | {d.key for d in due}, staff, waiting, now)
            promised = [
                e.due for e in events if isinstance(e, PromiseIn) and e.due is not None and e.due > now
            ]
            then = min([then, *promised])
        if refresh is not None:
            refreshing = refresh.due(key, clocks, now)
            if refreshing:
                stale.append((key, clocks))
            then = min(then, refresh.next_due(key, clocks, now, stale=refreshing))
        look = NextLook(seen=seen, then=then)
        if not due:
            with session_scope() as session:
                _set_next_look(session, key, look)
        due.sort(key=lambda p: p.due_at)
        for n, notice in enumerate(due, 1):
            if _send(key, notice, now, look if n == len(due) else None):
                log.info("incident %s: %s notice %s sent", key, notice.kind.value, notice.key)
                sent.append((key, notice.key))
    if refresh is not None:
        refresh.forget_unseen(now, after=2 * RECHECK)
        for key, clocks in stale:
            if publish_clocks(key):
                refresh.published(key, clocks, now)
    return sent
