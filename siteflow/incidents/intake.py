"""An incident's run-level records: intake, the customer's level, closure from its gate (INC-1 … INC-9).

Each function takes the caller's session and clock, checks everything through the core
(:mod:`siteflow.incidents.records`, :mod:`~siteflow.incidents.severity`) before writing, and is
idempotent by the incident key — the flow re-runs from the top after each gate, and the web
API reserves the incident before the run exists (as `projects start` reserves a project).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from models.incident_contract import Severity
from models.incident_input import ClosureIn, IncidentIn, ReclassifiedIn
from models.incident_run import IncidentReportIn, IncidentRun
from siteflow import audit_chain
from siteflow.incidents import records
from siteflow.incidents.refusals import IncidentRefused
from siteflow.incidents.severity import SeverityProposal, is_emergency, propose_severity, settle_severity


class IntakeRead(BaseModel):
    """What intake settled: the level (provisional while the customer is asked, INC-3)."""

    model_config = ConfigDict(frozen=True)

    key: str
    customer: str
    contract: str
    zone: str
    severity: Severity
    emergency: bool
    settled: bool
    candidates: list[Severity]
    because: list[str]
    owner: str
    caller: str


def _provisional(proposal: SeverityProposal) -> Severity:
    """The level the clocks run on until the customer answers: the most severe candidate, so
    no target is missed while we wait for them (their level then recomputes the clocks)."""
    return proposal.severity or proposal.candidates[0]


def _read(run: IncidentRun, record: records.IncidentRecord, zone: str) -> IntakeRead:
    proposal = propose_severity(IncidentReportIn.model_validate(run.params).questionnaire)
    return IntakeRead(
        key=record.key,
        customer=record.customer,
        contract=record.contract,
        zone=zone,
        severity=record.severity,
        emergency=record.emergency,
        settled=run.severity_settled,
        candidates=proposal.candidates,
        because=[q.value for q in proposal.because],
        owner=f"{run.owner_name} <{run.owner_email}>",
        caller=f"{run.caller_name} <{run.caller_email}>",
    )


def take_intake(
    session: Session, *, report: IncidentReportIn, now: datetime, flow_run_id: str | None = None
) -> IntakeRead:
    """Open the incident (INC-4, INC-9) with the level the rules propose (INC-1 … INC-3), or
    adopt the one reserved earlier under this key by the same report (the run's first task).

    Refused (nothing written): no first receiver named, an unknown contract, a customer not
    the contract's, a report received in the future, a key used by another report or run.
    """
    if report.owner_name is None or report.owner_email is None:
        raise IncidentRefused("INC-9", "name the first receiver (owner_name and owner_email): they own it")
    contract = records.load_contract(session, code=report.contract)
    run = session.get(IncidentRun, report.key)
    if run is not None:
        same = IncidentReportIn.model_validate(run.params) == report
        if not same or (flow_run_id and run.flow_run_id not in (None, flow_run_id)):
            raise IncidentRefused("INC-9", f"incident {report.key} already exists")
        if flow_run_id and run.flow_run_id is None:
            run.flow_run_id = flow_run_id
            session.flush()
        return _read(run, records.load_incident(session, key=report.key), contract.timezone)
    proposal = propose_severity(report.questionnaire)
    severity = _provisional(proposal)
    record = records.open_incident(
        session,
        incident=IncidentIn(
            key=report.key,
            received_at=report.received_at,
            channel=report.channel,
            contract=report.contract,
            customer=report.customer,
            caller_name=report.caller_name,
            caller_contact=report.caller_contact,
            elements=report.elements,
            reported=report.reported,
            severity=severity,
            emergency=is_emergency(severity, important_customer=contract.important_customer),
            affects_operation=proposal.affects_operation,
            owner=f"{report.owner_name} <{report.owner_email}>",
        ),
        now=now,
    )
    run = IncidentRun(
        key=report.key,
        flow_run_id=flow_run_id,
        owner_name=report.owner_name,
        owner_email=report.owner_email,
        caller_name=report.caller_name,
        caller_email=report.caller_email,
        severity_settled=proposal.severity is not None,
        params=report.model_dump(mode="json"),
    )
    session.add(run)
    session.flush()
    audit_chain.append(
        session,
        report.key,
        "incident.opened",
        run.owner_email,
        {
            "received_at": report.received_at.isoformat(),
            "channel": report.channel.value,
            "contract": report.contract,
            "severity": severity.value,
            "provisional": proposal.severity is None,
            "because": [q.value for q in proposal.because],
            "owner": f"{run.owner_name} <{run.owner_email}>",
        },
    )
    return _read(run, record, contract.timezone)


def settle_by_customer(session: Session, *, key: str, level: Severity, by: str, now: datetime) -> IntakeRead:
    """INC-3: the customer's level, final; recorded as a reclassification (who and why) when it
    differs from the provisional one, so the clocks recompute from the report time (INC-4)."""
    run = _run(session, key)
    record = records.load_incident(session, key=key)
    contract = records.load_contract(session, code=record.contract)
    if not run.severity_settled:
        proposal = propose_severity(IncidentReportIn.model_validate(run.params).questionnaire)
        level = settle_severity(proposal, level)
        if level is not record.severity:
            record = records.record_event(
                session,
                key=key,
                event=ReclassifiedIn(
                    at=now,
                    by=by,
                    severity=level,
                    emergency=is_emergency(level, important_customer=contract.important_customer),
                    why="INC-3: no level clearly applied; the customer's level is final",
                ),
                now=now,
            )
        run.severity_settled = True
        session.flush()
    return _read(run, record, contract.timezone)


def close_from_gate(session: Session, *, key: str, closure: ClosureIn, now: datetime) -> bool:
    """INC-8: close with the five parts the owner gave at the closure gate; False when it was
    already closed (a re-run passing through)."""
    record = records.load_incident(session, key=key)
    if record.closed_at is not None:
        return False
    records.close_incident(session, key=key, closure=closure, now=now)
    audit_chain.append(session, key, "incident.closed", closure.by, closure.model_dump(mode="json"))
    return True


def _run(session: Session, key: str) -> IncidentRun:
    run = session.get(IncidentRun, key)
    if run is None:
        raise IncidentRefused("INC-9", f"unknown incident '{key}'")
    return run
