"""What a staff member does to an incident, the same for every door: raise a problem report
(INC-8), dispute an outage's attribution (INC-7), close it through its closure gate (INC-8).

Why one module: the web API (what the CLI calls, as a token's user) and the workspace pages
(as a session's user) must apply the very same checks — who may (:mod:`siteflow.incidents.rights`),
every rule, the one decision path for closure — so a door only says who is acting and how it
proved it. Each act checks everything before it writes; a refusal is
:class:`~siteflow.incidents.refusals.IncidentRefused` (or :class:`~siteflow.decisions.DecisionRefused`
from the decision path) with the rule id first, and nothing changed. Nothing here wakes or
resumes a run: the act returns what happened and the caller does that after its answer is sent.
Field events (:func:`siteflow.incidents.records.record_event`) and handovers
(:mod:`siteflow.incidents.handover`) are core functions of their own, called as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.gate import Gate, GateStatus
from models.gate_spec import Decision, Door, Proof
from models.incident_input import ProblemReportIn
from models.incident_run import IncidentRun
from siteflow.db import read_scope
from siteflow.decisions import DecisionRequest, DecisionResult, Signer, decide
from siteflow.identity.sessions import SignedIn
from siteflow.incidents import records, rights
from siteflow.incidents.closure import check_closure
from siteflow.incidents.records import ProblemRecord
from siteflow.incidents.refusals import IncidentRefused
from siteflow.signature_proof import Evidence

CLOSURE_GATE = "closure"  # flows.incident.CLOSURE_GATE (the web service does not import flows)


def run_of(session: Session, key: str, rule: str = "INC-9") -> IncidentRun:
    """The incident's run row, or a refusal under ``rule`` naming the unknown key."""
    run = session.get(IncidentRun, key)
    if run is None:
        raise IncidentRefused(rule, f"unknown incident '{key}'")
    return run


def raise_problem(
    session: Session,
    *,
    key: str,
    title: str,
    office: str,
    due: date,
    detail: str,
    user: SignedIn,
    now: datetime,
) -> ProblemRecord:
    """INC-8: a problem report to the office, raised by the incident's owner or the office, due
    today or later; a record of the incident's audit chain signed as `user`."""
    run = run_of(session, key, "INC-8")
    rights.check_may_raise_problem(key=key, email=user.email, roles=user.roles, owner_email=run.owner_email)
    if due < records.local_day(session, key=key, now=now):
        raise IncidentRefused(
            "INC-8", f"the due date {due.isoformat()} has passed: give today or a later date"
        )
    report = ProblemReportIn(title=title, office=office, due=due, detail=detail, by=user.name)
    report_id = records.raise_problem_report(session, key=key, report=report, now=now, actor=user.email)
    return records.problem_report(session, report_id=report_id)


def dispute_outage(
    session: Session, *, key: str, outage_id: str, reason: str, user: SignedIn, now: datetime
) -> str | None:
    """INC-7: the owner or the office disputes a recorded outage's attribution; returns the
    incident's run id, which the caller wakes so the run opens the customer's gate."""
    run = run_of(session, key, "INC-9")
    rights.check_may_dispute(key=key, email=user.email, roles=user.roles, owner_email=run.owner_email)
    records.dispute_outage(session, key=key, outage_id=outage_id, reason=reason, by=user.email, now=now)
    return run.flow_run_id


@dataclass(frozen=True)
class Closing:
    """A closure recorded at the gate; ``resume`` names the run to resume once answered."""

    result: DecisionResult
    resume: str | None


def close(*, key: str, parts: dict[str, Any], user: SignedIn, door: Door, proof: Proof) -> Closing:
    """INC-8 through the closure gate: the core's check first (every missing part named, a
    disputed outage still waiting for the customer refuses it), then the one decision path,
    where only the incident's owner fills the gate's slot."""
    with read_scope() as session:
        record = records.load_incident(session, key=key)
        closure = check_closure(parts | {"by": user.name}, already_closed=record.closed_at is not None)
        gate_id = session.scalar(
            select(Gate.id).where(
                Gate.subject == key, Gate.key == CLOSURE_GATE, Gate.status == GateStatus.OPEN.value
            )
        )
        pending = [d for d in records.disputes_of(session, key=key) if d.pending]
        if pending:
            raise IncidentRefused(
                "INC-7",
                f"the attribution of outage {pending[0].outage_id} ({pending[0].element}) is "
                f"disputed and waits for the customer's answer (gate {pending[0].gate_key}); "
                f"close {key} after it",
            )
    if gate_id is None:
        raise IncidentRefused("INC-8", f"{key} is not waiting for closure yet (its customer gate is open?)")
    result = decide(
        DecisionRequest(
            gate_id=gate_id,
            decision=Decision.CLOSE.value,
            signer=Signer(user.name, user.email),
            door=door,
            data=closure.model_dump(mode="json", exclude={"by"}),
            evidence=Evidence(proof, account=user.user_id),
        ),
        resume=False,
    )
    resume = result.flow_run_id if result.complete and result.flow_run_id else None
    return Closing(result=result, resume=resume)
