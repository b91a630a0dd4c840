"""Incidents in siteflow's tables: contracts, intake, field events, outages, closure, problem reports.

Each function takes the caller's session (keyword-only arguments, one transaction per call site
— a flow task, a web request, the CLI) and checks everything before it writes anything, so a
refusal (:class:`~siteflow.incidents.refusals.IncidentRefused`) leaves the database as it was.
Time comes from the caller's clock (``now``), so tests and the keeper drive it. The rules are
the pure modules' (timeline, presence, outages, closure, clocks); this module only loads and
stores.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from models.base import utcnow
from models.incident import (
    Attribution,
    Incident,
    IncidentEventRow,
    IncidentState,
    Outage,
    OutageCause,
    ProblemReport,
)
from models.incident_contract import ContractIn, IncidentContract, Severity
from models.incident_input import (
    AttributionAnswer,
    Cause,
    CauseSegmentIn,
    ClosureIn,
    IncidentEvent,
    IncidentIn,
    OutageIn,
    OutageType,
    ProblemReportIn,
    ReclassifiedIn,
)
from siteflow import audit_chain
from siteflow.incidents.attribution import DisputeRead, check_dispute, final_segments
from siteflow.incidents.clocks import IncidentClocks, compute_clocks
from siteflow.incidents.closure import check_closure
from siteflow.incidents.refusals import IncidentRefused
from siteflow.incidents.timeline import IncidentFacts, check_event


class IncidentRecord(BaseModel):
    """One incident as stored, with its events: what the report and the pages read."""

    model_config = ConfigDict(frozen=True)

    key: str
    contract: str
    customer: str
    received_at: datetime
    reported_severity: Severity
    severity: Severity
    emergency: bool
    affects_operation: bool
    elements: list[str]
    state: IncidentState
    closed_at: datetime | None
    events: list[IncidentEvent]

    @property
    def facts(self) -> IncidentFacts:
        return IncidentFacts(
            key=self.key,
            received_at=self.received_at,
            reported_severity=self.reported_severity,
            emergency=self.emergency,
            affects_operation=self.affects_operation,
            closed=self.state is IncidentState.CLOSED,
        )


class ProblemRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    incident_key: str
    title: str
    office: str = ""
    detail: str = ""
    due: date
    opened_by: str = ""
    opened_by_email: str | None = None
    opened_at: datetime
    closed_at: datetime | None

    def overdue(self, on: date) -> bool:
        """Counted overdue from the day after its due date until it is closed."""
        return self.closed_at is None and on > self.due


def save_contract(session: Session, *, contract: ContractIn) -> None:
    """Store a contract or replace its terms (new SLA versions keep old incidents' targets)."""
    row = session.get(IncidentContract, contract.code)
    params = contract.model_dump(mode="json")
    if row is None:
        session.add(
            IncidentContract(
                code=contract.code,
                customer=contract.customer,
                important_customer=contract.important_customer,
                timezone=contract.timezone,
                params=params,
            )
        )
    else:
        row.customer, row.important_customer = contract.customer, contract.important_customer
        row.timezone, row.params = contract.timezone, params
        session.execute(  # new targets, hours or chain: the keeper looks at its incidents again
            update(Incident)
            .where(Incident.contract_code == contract.code, Incident.state == IncidentState.OPEN.value)
            .values(next_notice_at=utcnow())
        )
    session.flush()


def look_again(row: Incident, now: datetime) -> None:
    """Ask the keeper to look at this incident on its next pass: something changed that can
    bring a warning, breach or escalation forward (``Incident.next_notice_at``)."""
    row.next_notice_at = now


def load_contract(session: Session, *, code: str) -> ContractIn:
    row = session.get(IncidentContract, code)
    if row is None:
        raise IncidentRefused("INC-4", f"unknown contract '{code}': record the contract first")
    return row.terms()


def open_incident(session: Session, *, incident: IncidentIn, now: datetime) -> IncidentRecord:
    """Intake (INC-4, INC-9): refused for an unknown contract, a customer not the contract's, a
    report received in the future, or a key already used."""
    contract = load_contract(session, code=incident.contract)
    if incident.customer != contract.customer:
        raise IncidentRefused(
            "INC-4", f"contract {contract.code} is {contract.customer}'s, not {incident.customer}'s"
        )
    if incident.received_at > now:
        raise IncidentRefused(
            "INC-4", f"received at {incident.received_at.isoformat()} is in the future: give the call's time"
        )
    if session.get(Incident, incident.key) is not None:
        raise IncidentRefused("INC-9", f"incident {incident.key} already exists")
    session.add(
        Incident(
            key=incident.key,
            contract_code=incident.contract,
            customer=incident.customer,
            received_at=incident.received_at,
            channel=incident.channel.value,
            caller_name=incident.caller_name,
            caller_contact=incident.caller_contact,
            elements=list(incident.elements),
            reported=incident.reported,
            severity=incident.severity.value,
            initial_severity=incident.severity.value,
            emergency=incident.emergency,
            affects_operation=incident.affects_operation,
            owner=incident.owner,
        )
    )
    session.flush()
    return load_incident(session, key=incident.key)


def _row(session: Session, key: str) -> Incident:
    row = session.get(Incident, key)
    if row is None:
        raise IncidentRefused("INC-9", f"unknown incident '{key}'")
    return row


def _events(session: Session, key: str) -> list[IncidentEvent]:
    rows = session.scalars(
        select(IncidentEventRow).where(IncidentEventRow.incident_key == key).order_by(IncidentEventRow.seq)
    )
    return [r.event() for r in rows]


def _record(row: Incident, events: list[IncidentEvent]) -> IncidentRecord:
    return IncidentRecord(
        key=row.key,
        contract=row.contract_code,
        customer=row.customer,
        received_at=row.received_at,
        reported_severity=Severity(row.initial_severity),
        severity=Severity(row.severity),
        emergency=row.emergency,
        affects_operation=row.affects_operation,
        elements=list(row.elements),
        state=IncidentState(row.state),
        closed_at=row.closed_at,
        events=events,
    )


def load_incident(session: Session, *, key: str) -> IncidentRecord:
    return _record(_row(session, key), _events(session, key))


def record_event(
    session: Session, *, key: str, event: IncidentEvent, now: datetime, actor: str = ""
) -> IncidentRecord:
    """Add one field event after the timeline's checks (INC-4, COM-8 …); a reclassification
    also updates the incident's current severity and emergency (INC-1 … INC-3). The event goes
    into the incident's audit chain in the same transaction, as ``actor`` (the signed-in
    person's email; ``event.by`` when the system records it): the SLA figures of the month's
    report rest on these times, so an edited time must not pass ``audit verify``."""
    row = _row(session, key)
    history = _events(session, key)
    record = _record(row, history)
    contract = load_contract(session, code=row.contract_code)
    check_event(record.facts, history, event, contract, now)
    seq = (
        session.scalar(select(func.max(IncidentEventRow.seq)).where(IncidentEventRow.incident_key == key))
        or 0
    ) + 1
    session.add(
        IncidentEventRow(
            incident_key=key,
            seq=seq,
            kind=event.kind.value,
            at=event.at,
            by=event.by,
            data=event.model_dump(mode="json"),
            recorded_at=now,
        )
    )
    if isinstance(event, ReclassifiedIn):
        row.severity, row.emergency = event.severity.value, event.emergency
    look_again(row, now)
    session.flush()
    audit_chain.append(
        session, key, "incident.event", actor or event.by, {"seq": seq, **event.model_dump(mode="json")}
    )
    return _record(row, [*history, event])


def incident_clocks(session: Session, *, key: str, now: datetime) -> IncidentClocks:
    """The three clocks of one incident as of ``now`` (INC-4)."""
    record = load_incident(session, key=key)
    return clocks_of(record, load_contract(session, code=record.contract), now)


def clocks_of(record: IncidentRecord, contract: ContractIn, now: datetime) -> IncidentClocks:
    """The clocks of an incident already read, on its contract (a caller that needs the record
    and the contract too reads each once)."""
    return compute_clocks(
        received_at=record.received_at,
        reported_severity=record.reported_severity,
        events=record.events,
        contract=contract,
        now=now,
    )


def record_outage(session: Session, *, key: str, outage: OutageIn, now: datetime, actor: str = "") -> str:
    """An outage of the incident (INC-5 … INC-7); short ones are kept too (they just don't count).
    One recorded as disputed (INC-7) is disputed by ``actor`` at once: the incident's run
    opens its customer gate. Returns the outage's id."""
    row = _row(session, key)
    if outage.disputed and row.state == IncidentState.CLOSED.value:
        check_dispute(key=key, outage_id="(new)", attribution=Attribution.RECORDED, incident_closed=True)
    if outage.end > now:
        raise IncidentRefused("INC-7", f"the outage end {outage.end.isoformat()} is in the future")
    if row.elements and outage.element not in row.elements:
        raise IncidentRefused(
            "INC-7", f"{outage.element} is not an affected element of {key} ({', '.join(row.elements)})"
        )
    stored = Outage(
        incident_key=key,
        element=outage.element,
        type=outage.type.value,
        start=outage.start,
        end=outage.end,
        affected_units=outage.affected_units,
        units_in_service=outage.units_in_service,
        our_work=outage.our_work,
        work_ref=outage.work_ref,
        note=outage.note,
        recorded_at=now,
    )
    session.add(stored)
    session.flush()
    for segment in outage.causes:
        session.add(
            OutageCause(
                outage_id=stored.id,
                cause=segment.cause.value,
                start=segment.start,
                end=segment.end,
                agreed_by_customer=segment.agreed_by_customer,
            )
        )
    session.flush()
    if outage.disputed:
        dispute_outage(
            session,
            key=key,
            outage_id=stored.id,
            reason=outage.dispute_reason,
            by=actor or "unknown",
            now=now,
        )
    return stored.id


def _outage_of(session: Session, key: str, outage_id: str) -> Outage:
    outage = session.get(Outage, outage_id)
    if outage is None or outage.incident_key != key:
        raise IncidentRefused(
            "INC-7", f"{key} has no outage '{outage_id}': give the id `siteflow incidents outage` printed"
        )
    return outage


def dispute_outage(
    session: Session, *, key: str, outage_id: str, reason: str, by: str, now: datetime
) -> None:
    """INC-7: the outage's attribution is disputed; its customer gate opens from the incident's
    run. Refused when the customer already decided it (final), when a dispute already waits,
    or when the incident is closed."""
    row = _row(session, key)
    outage = _outage_of(session, key, outage_id)
    check_dispute(
        key=key,
        outage_id=outage_id,
        attribution=Attribution(outage.attribution),
        incident_closed=row.state == IncidentState.CLOSED.value,
        decided_by=outage.decided_by,
        decided_at=outage.decided_at,
    )
    if not reason.strip():
        raise IncidentRefused("INC-7", "a dispute needs its reason: what is disputed, and by whom")
    outage.attribution = Attribution.DISPUTED.value
    outage.disputed_by, outage.disputed_at, outage.dispute_reason = by, now, reason
    session.flush()
    audit_chain.append(session, key, "incident.outage-disputed", by, {"outage": outage_id, "reason": reason})


def _segments(session: Session, outage_ids: list[str]) -> dict[str, list[CauseSegmentIn]]:
    """The counting segments of each outage (the customer's final ones replace those they superseded)."""
    causes: dict[str, list[CauseSegmentIn]] = {i: [] for i in outage_ids}
    for chunk in (outage_ids[i : i + 500] for i in range(0, len(outage_ids), 500)):
        for c in session.scalars(
            select(OutageCause)
            .where(OutageCause.outage_id.in_(chunk), OutageCause.superseded.is_(False))
            .order_by(OutageCause.start)
        ):
            causes[c.outage_id].append(
                CauseSegmentIn(
                    cause=Cause(c.cause), start=c.start, end=c.end, agreed_by_customer=c.agreed_by_customer
                )
            )
    return causes


def _dispute_read(outage: Outage, segments: list[CauseSegmentIn]) -> DisputeRead:
    assert outage.disputed_at is not None
    return DisputeRead(
        outage_id=outage.id,
        element=outage.element,
        start=outage.start,
        end=outage.end,
        segments=segments,
        reason=outage.dispute_reason or "",
        disputed_by=outage.disputed_by or "",
        disputed_at=outage.disputed_at,
        attribution=Attribution(outage.attribution),
        decided_by=outage.decided_by,
    )


def disputes_of(session: Session, *, key: str) -> list[DisputeRead]:
    """The incident's outages whose attribution was disputed, waiting or decided, oldest dispute first."""
    rows = list(
        session.scalars(
            select(Outage)
            .where(Outage.incident_key == key, Outage.disputed_at.is_not(None))
            .order_by(Outage.disputed_at, Outage.id)
        )
    )
    causes = _segments(session, [o.id for o in rows])
    return [_dispute_read(o, causes[o.id]) for o in rows]


def decide_attribution(
    session: Session, *, key: str, outage_id: str, answer: AttributionAnswer, by: str, now: datetime
) -> DisputeRead:
    """INC-7: the customer's answer at the outage's gate, final. The recorded segments stay
    (superseded, as evidence) when the customer attributes the outage otherwise. Idempotent:
    a re-run of the flow finds it decided and changes nothing."""
    outage = _outage_of(session, key, outage_id)
    if outage.attribution == Attribution.DECIDED.value:
        return _dispute_read(outage, _segments(session, [outage_id])[outage_id])
    recorded = list(
        session.scalars(
            select(OutageCause)
            .where(OutageCause.outage_id == outage_id, OutageCause.superseded.is_(False))
            .order_by(OutageCause.start)
        )
    )
    segments = [CauseSegmentIn(cause=Cause(c.cause), start=c.start, end=c.end) for c in recorded]
    final = final_segments(outage.start, outage.end, segments, answer)
    if answer is AttributionAnswer.RECORDED:
        for c in recorded:
            c.agreed_by_customer = True
    else:
        for c in recorded:
            c.superseded = True
        for segment in final:
            session.add(
                OutageCause(
                    outage_id=outage_id,
                    cause=segment.cause.value,
                    start=segment.start,
                    end=segment.end,
                    agreed_by_customer=True,
                )
            )
    outage.attribution = Attribution.DECIDED.value
    outage.decided_by, outage.decided_at = by, now
    session.flush()
    audit_chain.append(
        session,
        key,
        "incident.outage-attribution-decided",
        by,
        {
            "outage": outage_id,
            "answer": answer.value,
            "segments": [s.model_dump(mode="json") for s in final],
        },
    )
    return _dispute_read(outage, final)


def runs_awaiting_dispute_gates(session: Session) -> list[tuple[str, str]]:
    """(incident key, flow run id) of open incidents with a disputed outage whose customer gate
    is not open yet: their runs are woken to open it (the keeper's pass, when the web's wake
    came while the run was not paused). Usually none; one query."""
    from models.gate import Gate
    from models.incident_run import IncidentRun
    from siteflow.incidents.attribution import gate_key

    rows = session.execute(
        select(Outage.incident_key, Outage.id, IncidentRun.flow_run_id)
        .join(Incident, Incident.key == Outage.incident_key)
        .join(IncidentRun, IncidentRun.key == Outage.incident_key)
        .where(
            Outage.attribution == Attribution.DISPUTED.value,
            Incident.state == IncidentState.OPEN.value,
            IncidentRun.flow_run_id.is_not(None),
        )
    ).all()
    if not rows:
        return []
    opened = set(
        session.execute(select(Gate.subject, Gate.key).where(Gate.subject.in_({r[0] for r in rows}))).tuples()
    )
    return sorted(
        {(key, str(run_id)) for key, outage_id, run_id in rows if (key, gate_key(outage_id)) not in opened}
    )


class OutageRecord(BaseModel):
    """An outage as stored, with the incident and customer it belongs to."""

    model_config = ConfigDict(frozen=True)

    id: str
    incident_key: str
    customer: str
    contract: str
    outage: OutageIn
    attribution: Attribution = Attribution.RECORDED
    """INC-7: while disputed, ``outage.causes`` are the recorded segments (the report marks the
    outage disputed); once the customer decided, they are the final ones."""


def close_incident(
    session: Session, *, key: str, closure: ClosureIn | dict[str, object], now: datetime
) -> None:
    """INC-8: closed only with description, cause, solution, process and summary."""
    row = _row(session, key)
    done = check_closure(
        dict(closure) if isinstance(closure, dict) else closure,
        already_closed=row.state == IncidentState.CLOSED.value,
    )
    row.description, row.cause, row.solution = done.description, done.cause, done.solution
    row.process, row.summary, row.closed_by = done.process, done.summary, done.by
    row.state, row.closed_at = IncidentState.CLOSED.value, now
    session.flush()


def local_day(session: Session, *, key: str, now: datetime) -> date:
    """Today on the incident's contract clock: a problem report due "yesterday" there is past
    due there, whatever the UTC date says (INC-8)."""
    from zoneinfo import ZoneInfo

    row = _row(session, key)
    return now.astimezone(ZoneInfo(load_contract(session, code=row.contract_code).timezone)).date()


def raise_problem_report(
    session: Session, *, key: str, report: ProblemReportIn, now: datetime, actor: str = ""
) -> str:
    """A problem report to the office, tracked apart from the incident (TL 9000, INC-8)."""
    _row(session, key)
    row = ProblemReport(
        incident_key=key,
        title=report.title,
        office=report.office,
        detail=report.detail,
        due=report.due,
        opened_by=report.by,
        opened_by_email=actor or None,
        opened_at=now,
    )
    session.add(row)
    session.flush()
    audit_chain.append(
        session,
        key,
        "incident.problem-raised",
        actor or report.by,
        {"problem": row.id, **report.model_dump(mode="json")},
    )
    return row.id


def close_problem_report(session: Session, *, report_id: str, now: datetime, actor: str = "") -> str:
    """Close a problem report (its root cause fixed); returns its incident's key."""
    row = session.get(ProblemReport, report_id)
    if row is None:
        raise IncidentRefused(
            "INC-8", f"unknown problem report '{report_id}'; `siteflow problems list` shows them"
        )
    if row.closed_at is not None:
        raise IncidentRefused("INC-8", f"problem report {report_id} is already closed")
    row.closed_at = now
    session.flush()
    audit_chain.append(
        session, row.incident_key, "incident.problem-closed", actor or "system:siteflow", {"problem": row.id}
    )
    return row.incident_key


def incidents_received(session: Session, *, start: datetime, end: datetime) -> list[IncidentRecord]:
    """Incidents received in [start, end), with their events, in time order."""
    rows = session.scalars(
        select(Incident)
        .where(Incident.received_at >= start, Incident.received_at < end)
        .order_by(Incident.received_at)
    ).all()
    events: dict[str, list[IncidentEvent]] = {r.key: [] for r in rows}
    in_range = select(Incident.key).where(Incident.received_at >= start, Incident.received_at < end)
    for ev in session.scalars(  # a subquery, not a list of keys: a month may hold 100,000 of them
        select(IncidentEventRow)
        .where(IncidentEventRow.incident_key.in_(in_range))
        .order_by(IncidentEventRow.incident_key, IncidentEventRow.seq)
    ):
        events[ev.incident_key].append(ev.event())
    return [_record(r, events[r.key]) for r in rows]


def outages_started(session: Session, *, start: datetime, end: datetime) -> list[OutageRecord]:
    """Outages that started in [start, end), with their cause segments."""
    return _outage_records(session, (Outage.start >= start, Outage.start < end))


def outages_of(session: Session, *, key: str) -> list[OutageRecord]:
    """One incident's outages, in time order, with their counting cause segments (its page)."""
    return _outage_records(session, (Outage.incident_key == key,))


def _outage_records(session: Session, where: tuple[Any, ...]) -> list[OutageRecord]:
    rows: Sequence[tuple[Outage, Incident]] = (
        session.execute(
            select(Outage, Incident)
            .join(Incident, Incident.key == Outage.incident_key)
            .where(*where)
            .order_by(Outage.start)
        )
        .tuples()
        .all()
    )
    causes = _segments(session, [o.id for o, _ in rows])
    return [
        OutageRecord(
            id=o.id,
            incident_key=o.incident_key,
            customer=i.customer,
            contract=i.contract_code,
            attribution=Attribution(o.attribution),
            outage=OutageIn(
                element=o.element,
                type=OutageType(o.type),
                start=o.start,
                end=o.end,
                affected_units=o.affected_units,
                units_in_service=o.units_in_service,
                causes=causes[o.id],
                our_work=o.our_work,
                work_ref=o.work_ref,
                note=o.note,
            ),
        )
        for o, i in rows
    ]


def _problem(r: ProblemReport) -> ProblemRecord:
    return ProblemRecord(
        id=r.id,
        incident_key=r.incident_key,
        title=r.title,
        office=r.office,
        detail=r.detail,
        due=r.due,
        opened_by=r.opened_by,
        opened_by_email=r.opened_by_email,
        opened_at=r.opened_at,
        closed_at=r.closed_at,
    )


def problem_reports(session: Session, *, opened_before: datetime) -> list[ProblemRecord]:
    rows = session.scalars(select(ProblemReport).where(ProblemReport.opened_at < opened_before))
    return [_problem(r) for r in rows]


def problem_report(session: Session, *, report_id: str) -> ProblemRecord:
    row = session.get(ProblemReport, report_id)
    if row is None:
        raise IncidentRefused(
            "INC-8", f"unknown problem report '{report_id}'; `siteflow problems list` shows them"
        )
    return _problem(row)


def list_problem_reports(
    session: Session,
    *,
    on: date,
    open_only: bool = False,
    overdue_only: bool = False,
    incident_key: str | None = None,
) -> list[ProblemRecord]:
    """Problem reports by due date; ``overdue_only``: open and past due on ``on`` (ProblemRecord.overdue);
    ``incident_key``: one incident's (its page)."""
    query = select(ProblemReport).order_by(ProblemReport.due, ProblemReport.opened_at)
    if incident_key is not None:
        query = query.where(ProblemReport.incident_key == incident_key)
    if open_only or overdue_only:
        query = query.where(ProblemReport.closed_at.is_(None))
    if overdue_only:
        query = query.where(ProblemReport.due < on)
    return [_problem(r) for r in session.scalars(query)]


def contracts(session: Session) -> list[ContractIn]:
    return [r.terms() for r in session.scalars(select(IncidentContract).order_by(IncidentContract.code))]
