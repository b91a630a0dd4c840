"""Read models for the CLI, the web service and the demo: projects, gates and upgrade windows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select

from models.gate import Gate, GateDecision, GateStatus
from models.project import Project
from models.upgrade import UpgradeElement, UpgradeWindow
from models.upgrade_evidence import element_decisions, gate_key_for
from siteflow.db import read_scope


class ProjectRow(BaseModel):
    code: str
    customer: str
    phase: str
    state: str
    waiting_at: str | None
    flow_run_id: str | None
    updated_at: datetime


class GateRow(BaseModel):
    id: str
    project: str
    key: str
    kind: str
    rule: str
    title: str
    status: str
    outcome: str | None
    decided_by: list[str]
    waiting_for: list[str]
    decisions: list[str]
    data_model: str | None
    opened_at: datetime
    not_before: datetime | None
    deadline: datetime | None = None


def list_projects() -> list[ProjectRow]:
    with read_scope() as session:
        projects = session.execute(select(Project).order_by(Project.created_at)).scalars().all()
        open_gates: dict[str, str] = {}
        for subject, key in session.execute(
            select(Gate.subject, Gate.key).where(Gate.status == GateStatus.OPEN.value)
        ):
            open_gates[subject] = key
        return [
            ProjectRow(
                code=p.code,
                customer=p.customer,
                phase=p.phase,
                state="waiting" if p.state == "running" and p.code in open_gates else p.state,
                waiting_at=open_gates.get(p.code),
                flow_run_id=p.flow_run_id,
                updated_at=p.updated_at,
            )
            for p in projects
        ]


def list_gates(project: str | None = None, include_closed: bool = False) -> list[GateRow]:
    with read_scope() as session:
        q = select(Gate).order_by(Gate.opened_at)
        if project:
            q = q.where(Gate.subject == project)
        if not include_closed:
            q = q.where(Gate.status == GateStatus.OPEN.value)
        gates = session.execute(q).scalars().all()
        signatures: dict[str, list[GateDecision]] = {}
        for i in range(0, len(gates), 500):  # one query per 500 gates, not one per gate
            batch = [g.id for g in gates[i : i + 500]]
            for d in session.execute(
                select(GateDecision).where(GateDecision.gate_id.in_(batch)).order_by(GateDecision.decided_at)
            ).scalars():
                signatures.setdefault(d.gate_id, []).append(d)
        rows = []
        for g in gates:
            sigs = signatures.get(g.id, [])
            filled = {s.party for s in sigs}
            rows.append(
                GateRow(
                    id=g.id,
                    project=g.subject,
                    key=g.key,
                    kind=g.kind,
                    rule=g.rule,
                    title=g.title,
                    status=g.status,
                    outcome=g.outcome,
                    decided_by=[f"{s.signer} ({s.party}: {s.decision}; {s.provenance})" for s in sigs],
                    waiting_for=[
                        f"{p['slot']} ({'/'.join(p['roles'])})"
                        for p in g.parties
                        if p["slot"] not in filled and g.status == GateStatus.OPEN.value
                    ],
                    decisions=list(g.decisions),
                    data_model=g.data_model,
                    opened_at=g.opened_at,
                    not_before=g.not_before,
                    deadline=g.deadline,
                )
            )
        return rows


def as_json(rows: list[Any]) -> list[dict[str, Any]]:
    return [r.model_dump(mode="json") for r in rows]


class WindowRow(BaseModel):
    id: str
    title: str
    local_date: str
    timezone: str
    state: str
    starts_at: str
    deadline: str
    flow_run_id: str | None
    elements: list[dict[str, Any]]


def list_windows(window_id: str | None = None) -> list[WindowRow]:
    """Upgrade windows, newest night first, with each element's phase, outcome and decider."""
    with read_scope() as session:
        query = select(UpgradeWindow).order_by(UpgradeWindow.local_date.desc(), UpgradeWindow.id)
        if window_id is not None:
            query = query.where(UpgradeWindow.id == window_id)
        windows = list(session.execute(query).scalars())
        elements = session.execute(
            select(UpgradeElement)
            .where(UpgradeElement.window_id.in_([w.id for w in windows]))
            .order_by(UpgradeElement.name)
        ).scalars()
        decisions = element_decisions(session, [w.id for w in windows])
        by_window: dict[str, list[dict[str, Any]]] = {}
        for e in elements:
            decided = decisions.get((e.window_id, gate_key_for(e.name)))
            by_window.setdefault(e.window_id, []).append(
                {
                    "element": e.name,
                    "phase": e.phase,
                    "outcome": e.outcome,
                    "decision": decided.decision if decided else None,
                    "decided_by": e.decided_by or (decided.by if decided else None),
                    "door": e.decision_door or (decided.door if decided else None),
                    "version_before": e.version_before,
                    "version_after": e.version_after,
                    "differences": e.differences or [],
                    "note": e.note,
                }
            )
        return [
            WindowRow(
                id=w.id,
                title=w.title,
                local_date=w.local_date.isoformat(),
                timezone=w.timezone,
                state=w.state,
                starts_at=w.starts_at.isoformat(),
                deadline=w.deadline.isoformat(),
                flow_run_id=w.flow_run_id,
                elements=by_window.get(w.id)
                or [
                    {"element": e["name"], "phase": "waiting", "outcome": None} for e in w.params["elements"]
                ],
            )
            for w in windows
        ]
