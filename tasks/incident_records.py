"""The incident flow's side effects: intake, the customer's level, closure, mails, the clocks view.

One side effect each, idempotent by the incident key (a suspended run re-runs from the top):
each calls the shell's checked functions (:mod:`siteflow.incidents.intake`), which refuse
with :class:`~siteflow.incidents.refusals.IncidentRefused` and leave nothing written.
"""

from __future__ import annotations

from datetime import UTC, datetime

from models.incident_contract import Severity
from models.incident_input import AttributionAnswer, ClosureIn
from models.incident_run import IncidentReportIn
from siteflow.db import session_scope
from siteflow.incidents import intake, records
from siteflow.incidents.attribution import DisputeRead
from siteflow.incidents.intake import IntakeRead
from siteflow.incidents.run_view import publish_clocks
from tasks import side_effect
from tasks.project_records import notify


def incident_tags(key: str, customer: str, contract: str) -> list[str]:
    return [f"incident:{key}", f"customer:{customer}", f"contract:{contract}"]


@side_effect(name="register-incident")
def register_incident(report: IncidentReportIn, flow_run_id: str) -> IntakeRead:
    """Open the incident (or adopt the one the web API reserved) and tie it to this run."""
    with session_scope() as session:
        return intake.take_intake(session, report=report, now=datetime.now(UTC), flow_run_id=flow_run_id)


@side_effect(name="settle-severity")
def settle_severity(key: str, level: Severity, by: str) -> IntakeRead:
    """INC-3: the customer's level from their gate, final."""
    with session_scope() as session:
        return intake.settle_by_customer(session, key=key, level=level, by=by, now=datetime.now(UTC))


@side_effect(name="read-disputes")
def read_disputes(key: str) -> list[DisputeRead]:
    """INC-7: the incident's outages whose attribution is disputed, waiting or decided."""
    with session_scope() as session:
        return records.disputes_of(session, key=key)


@side_effect(name="decide-attribution")
def decide_attribution(key: str, outage_id: str, answer: AttributionAnswer, by: str) -> DisputeRead:
    """INC-7: the customer's answer at the outage's gate, recorded as final (once)."""
    with session_scope() as session:
        return records.decide_attribution(
            session, key=key, outage_id=outage_id, answer=answer, by=by, now=datetime.now(UTC)
        )


@side_effect(name="close-incident")
def close_incident(key: str, closure: ClosureIn) -> bool:
    """INC-8: the closure the owner gave at the closure gate."""
    with session_scope() as session:
        return intake.close_from_gate(session, key=key, closure=closure, now=datetime.now(UTC))


@side_effect(name="mail-customer")
def mail_customer(key: str, dedup_key: str, recipient: str, title: str, text: str) -> None:
    """A mail to the customer through the outbox (its relay checks COM-1 before sending);
    recorded on the incident's audit chain (COM-2: what we tell the customer is kept)."""
    notify.fn(key, dedup_key, [recipient], title, text)


@side_effect(name="publish-clocks")
def show_clocks(key: str) -> bool:
    """The clocks table on this run (INC-4)."""
    return publish_clocks(key)
