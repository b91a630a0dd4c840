"""Who may decide a subject's gates: a project's contacts, an upgrade window's, an incident's.

Gates belong to a subject — a project code, an upgrade window id or an incident key — and the decision path
asks the subject's own form who its contacts are and what role each holds.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from models.incident import Incident
from models.incident_contract import IncidentContract
from models.incident_run import IncidentContactsIn, IncidentRun
from models.project import Project
from models.project_input import ContactIn, ProjectIn, Role
from models.upgrade import UpgradeWindow
from models.upgrade_plan import UpgradePlanIn, legacy_deadline_day

Roster = ProjectIn | UpgradePlanIn | IncidentContactsIn


def window_plan(window: UpgradeWindow) -> UpgradePlanIn:
    """A window's plan, parsed once per version of the row: a plan of 1,000 elements takes
    ~20 ms to validate, and every gate, decision and element task asks for it. The row's
    ``params`` (deferred) is read from the database only when this process has not parsed
    that version yet — decoding it took milliseconds inside every decision's transaction."""
    return _cached(window.id, window.created_at, window.updated_at, lambda: window.params)


def _cached(
    window_id: str, created_at: datetime, updated_at: datetime, params: Callable[[], dict[str, Any]]
) -> UpgradePlanIn:
    key = (window_id, created_at, updated_at)
    plan = _PLANS.get(key)
    if plan is None:
        plan = UpgradePlanIn.model_validate(legacy_deadline_day(params()))  # rows booked before it
        if len(_PLANS) > 64:
            _PLANS.clear()
        _PLANS[key] = plan
    return plan


_PLANS: dict[tuple[str, datetime, datetime], UpgradePlanIn] = {}


def roster_of(session: Session, subject: str) -> Roster | None:
    project = session.get(Project, subject)
    if project is not None:
        return ProjectIn.model_validate(project.params)
    window = session.get(UpgradeWindow, subject)
    if window is not None:
        return window_plan(window)
    return incident_contacts(session, subject)


def incident_contacts(session: Session, key: str) -> IncidentContactsIn | None:
    """An incident's roster: the caller as its customer contact, the owner (INC-9) as the
    engineer who closes it, the contract's PM (its escalation step of role pm)."""
    run = session.get(IncidentRun, key)
    incident = session.get(Incident, key)
    if run is None or incident is None:
        return None
    contract = session.get(IncidentContract, incident.contract_code)
    terms = contract.terms() if contract is not None else None
    contacts = [
        ContactIn(name=run.owner_name, email=run.owner_email, role=Role.ENGINEER),
        ContactIn(name=run.caller_name, email=run.caller_email, role=Role.CUSTOMER),
    ]
    for step in terms.escalation if terms is not None else []:
        if step.role == Role.PM.value and all(c.email != step.email.lower() for c in contacts):
            contacts.append(ContactIn(name=step.name, email=step.email, role=Role.PM))
    return IncidentContactsIn(
        key=key, timezone=terms.timezone if terms is not None else "UTC", contacts=contacts
    )


def subject_noun(roster: Roster) -> tuple[str, str]:
    """What a subject is called in mails, Chinese and English: a gate's notice says
    "Incident INC-… needs your decision", not "Project INC-…"."""
    if isinstance(roster, UpgradePlanIn):
        return "升级窗口", "Upgrade window"
    if isinstance(roster, IncidentContactsIn):
        return "故障", "Incident"
    return "项目", "Project"
