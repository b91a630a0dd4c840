"""What must hold before an upgrade gate accepts a decision, whatever door it came through.

UPG-3: go only when every pre-check passed and every operator is qualified (or replaced by
a qualified one, UPG-2). UPG-8/9: commit only when the success criteria passed; otherwise the
element is rolled back. These rules live at the decision path so that the Prefect UI, the
CLI and email links all refuse the same way.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.gate import Gate, GateDecision, GateStatus
from models.gate_spec import GateKind
from models.roster import window_plan
from models.upgrade import JournalEntry, Stage, StepResult, UpgradeWindow
from models.upgrade_plan import UpgradePlanIn

OPERATORS = "operators"  # journal "element" of the whole-window checks (UPG-2)
BASELINE = "baseline-"  # pre-upgrade readings kept for the comparison (UPG-11), not checks


def gate_key_for(element: str) -> str:
    return "decision-" + re.sub(r"[^a-z0-9-]+", "-", element.lower()).strip("-")


def latest_results(
    session: Session, window_id: str, stage: Stage, element: str | None = None
) -> dict[tuple[str, str], JournalEntry]:
    """The last attempt of each (element, item) in one stage."""
    query = select(JournalEntry).where(JournalEntry.window_id == window_id, JournalEntry.stage == stage.value)
    if element is not None:
        query = query.where(JournalEntry.element == element)
    latest: dict[tuple[str, str], JournalEntry] = {}
    for row in session.execute(query.order_by(JournalEntry.attempt)).scalars():
        latest[(row.element, row.item)] = row
    return latest


def unqualified(plan: UpgradePlanIn) -> list[str]:
    need = plan.runbook.required_qualification
    return [o.name for o in plan.operators if need not in o.qualifications]


def failed_prechecks(session: Session, window_id: str) -> list[str]:
    """Element pre-checks that failed (UPG-1); any one of them rules out go for the window."""
    return [
        f"{el}: {row.title} — {row.note or row.output[:120]}"
        for (el, item), row in latest_results(session, window_id, Stage.PRECHECK).items()
        if row.result != StepResult.PASSED.value and el != OPERATORS and not item.startswith(BASELINE)
    ]


def blocking_reasons(session: Session, gate: Gate, decision: str, data: dict[str, Any] | None) -> list[str]:
    window = session.get(UpgradeWindow, gate.subject)
    if window is None:
        return []
    plan = window_plan(window)
    if gate.kind == GateKind.GO_NO_GO.value and decision == "go":
        failed = failed_prechecks(session, window.id)
        replaced = {
            r["replaces"]: r
            for r in (data or {}).get("replacements", [])
            if plan.runbook.required_qualification in r.get("qualifications", [])
        }
        missing = [n for n in unqualified(plan) if n not in replaced]
        failed += [
            f"operator {n} lacks the qualification {plan.runbook.required_qualification!r} (UPG-2): "
            "replace them in the form's replacements"
            for n in missing
        ]
        return failed
    if gate.kind == GateKind.ROLLBACK_DECISION.value and decision == "commit":
        element = next((e.name for e in plan.elements if gate_key_for(e.name) == gate.key), None)
        tests = latest_results(session, window.id, Stage.TEST, element)
        criteria = plan.runbook.criteria()
        return [
            f"success criterion {t} did not pass on {element}: roll back (UPG-9)"
            for t in criteria
            if (row := tests.get((element or "", t))) is None or row.result != StepResult.PASSED.value
        ]
    return []


class ElementDecision(BaseModel):
    decision: str
    by: str
    door: str


def element_decisions(session: Session, window_ids: list[str]) -> dict[tuple[str, str], ElementDecision]:
    """Each decided gate of these windows by (window, gate key): an element's decision and who
    took it show the moment it is recorded, before the run has carried it out."""
    rows = session.execute(
        select(
            Gate.subject,
            Gate.key,
            Gate.outcome,
            GateDecision.signer_name,
            GateDecision.signer_email,
            GateDecision.door,
        )
        .join(GateDecision, GateDecision.gate_id == Gate.id)
        .where(Gate.subject.in_(window_ids), Gate.status == GateStatus.DECIDED.value)
        .order_by(GateDecision.decided_at)
    ).all()
    found: dict[tuple[str, str], ElementDecision] = {}
    for r in rows:
        found[(r.subject, r.key)] = ElementDecision(
            decision=r.outcome or "", by=f"{r.signer_name} <{r.signer_email}>", door=r.door
        )
    return found
