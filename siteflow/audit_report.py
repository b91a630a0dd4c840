"""Rebuild one project's or upgrade window's whole story from our tables, the hash chain
and Prefect's run state.

`siteflow audit CODE` prints it (JSON for machines, HTML for people); `siteflow audit verify
CODE [--witness FILE]` checks the chain — links, hashes, every record's signature, every
published checkpoint and given witness (:mod:`siteflow.audit_checkpoints`) — and every stored
document's hash, and names the first bad record.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.audit import AuditEvent
from models.document import Document
from models.gate import Gate, GateAttempt, GateDecision
from models.incident import Incident, IncidentEventRow
from models.incident_contract import IncidentContract
from models.incident_run import IncidentRun
from models.memo import Memo, overdue
from models.project import Project
from models.upgrade import UpgradeElement, UpgradeWindow
from siteflow import audit_chain, audit_checkpoints, audit_keys, site_time
from siteflow.audit_checkpoints import Checkpoint
from siteflow.db import session_scope

TEMPLATES = Path(__file__).parent / "templates"
PHASES = ["survey", "installation", "commissioning", "completion"]


class UnknownSubject(LookupError):
    pass


def _prefect_run(flow_run_id: str | None) -> dict[str, Any] | None:
    if not flow_run_id:
        return None
    try:
        from uuid import UUID

        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            run = client.read_flow_run(UUID(flow_run_id))
        return {
            "id": flow_run_id,
            "name": run.name,
            "state": run.state.type.value if run.state else None,
            "state_name": run.state.name if run.state else None,
        }
    except Exception as exc:  # the audit still prints from our own records
        return {"id": flow_run_id, "error": f"Prefect not reachable: {exc}"}


def _window_header(session: Session, window: UpgradeWindow) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An upgrade window in the report's shape: its elements take the place of phases."""
    header = {
        "code": window.id,
        "customer": window.title,
        "size": "upgrade window",
        "timezone": window.timezone,
        "phase": window.state,
        "state": window.state,
        "flow_run_id": window.flow_run_id,
    }
    elements = session.execute(
        select(UpgradeElement).where(UpgradeElement.window_id == window.id).order_by(UpgradeElement.name)
    ).scalars()
    rows = [
        {
            "phase": e.name,
            "state": e.outcome or e.phase,
            "started": None,
            "completed": e.updated_at.isoformat() if e.outcome else None,
            "decided_by": e.decided_by,
            "version_before": e.version_before,
            "version_after": e.version_after,
            "differences": e.differences,
            "note": e.note,
        }
        for e in elements
    ]
    return header, rows


def _incident_header(session: Session, incident: Incident) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An incident in the report's shape (issue #11 item 9): its field events, in the order
    they happened, take the place of phases."""
    run = session.get(IncidentRun, incident.key)
    contract = session.get(IncidentContract, incident.contract_code)
    header = {
        "code": incident.key,
        "customer": incident.customer,
        "size": f"incident, {incident.severity}" + (", emergency" if incident.emergency else ""),
        "timezone": contract.terms().timezone if contract is not None else "UTC",
        "phase": incident.state,
        "state": incident.state,
        "flow_run_id": run.flow_run_id if run is not None else None,
    }
    events = session.execute(
        select(IncidentEventRow)
        .where(IncidentEventRow.incident_key == incident.key)
        .order_by(IncidentEventRow.seq)
    ).scalars()
    rows = [{"phase": e.kind, "state": f"by {e.by}", "started": e.at, "completed": None} for e in events]
    return header, rows


def build(code: str, with_prefect: bool = True, witnesses: tuple[Checkpoint, ...] = ()) -> dict[str, Any]:
    """The story of a project (by code), an upgrade window (by id) or an incident (by key).

    Raises :class:`audit_checkpoints.WitnessRefused` for a witness that proves nothing."""
    with session_scope() as session:
        project = session.get(Project, code)
        window = session.get(UpgradeWindow, code) if project is None else None
        incident = session.get(Incident, code) if project is None and window is None else None
        if project is None and window is None and incident is None:
            raise UnknownSubject(
                f"no project, upgrade window or incident {code!r}; `siteflow projects list`, "
                "`siteflow upgrade list` and `siteflow incidents list` show them"
            )
        events = audit_chain.events_for(session, code)
        keyring = audit_keys.load_keyring()
        problems = [str(p) for p in audit_chain.verify(session, code, keyring)]
        problems += [str(p) for p in audit_checkpoints.check(session, code, witnesses, keyring)]
        checkpoints = audit_checkpoints.published(session, code)
        notes = _chain_notes(events, checkpoints, keyring, len(witnesses))
        phases = []
        if project is not None:
            header = {
                "code": project.code,
                "customer": project.customer,
                "size": project.size,
                "timezone": project.timezone,
                "phase": project.phase,
                "state": project.state,
                "flow_run_id": project.flow_run_id,
            }
            started = {json.loads(e.payload)["phase"]: e.at for e in events if e.kind == "phase.started"}
            done = {json.loads(e.payload)["phase"]: e.at for e in events if e.kind == "phase.completed"}
            for name in PHASES:
                if name in done:
                    state = "completed"
                elif name == project.phase:
                    state = "failed" if project.state == "failed" else "in progress"
                else:
                    state = "not started"
                phases.append(
                    {"phase": name, "state": state, "started": started.get(name), "completed": done.get(name)}
                )
        elif window is not None:
            header, phases = _window_header(session, window)
        else:
            assert incident is not None
            header, phases = _incident_header(session, incident)
        gates = []
        for g in session.execute(select(Gate).where(Gate.subject == code).order_by(Gate.opened_at)).scalars():
            attempts = session.execute(
                select(GateAttempt).where(GateAttempt.gate_id == g.id).order_by(GateAttempt.at)
            ).scalars()
            sigs = session.execute(select(GateDecision).where(GateDecision.gate_id == g.id)).scalars()
            gates.append(
                {
                    "id": g.id,
                    "key": g.key,
                    "kind": g.kind,
                    "rule": g.rule,
                    "title": g.title,
                    "status": g.status,
                    "outcome": g.outcome,
                    "opened_at": g.opened_at.isoformat(),
                    "decided_at": g.decided_at.isoformat() if g.decided_at else None,
                    "deadline": g.deadline.isoformat() if g.deadline else None,
                    "signatures": [
                        {
                            "slot": s.party,
                            "decision": s.decision,
                            "by": s.signer,
                            "role": s.role,
                            "door": s.door,
                            "proof": s.proof,
                            "how": s.provenance,
                            "comment": s.comment,
                            "data": s.data,
                            "at": s.decided_at.isoformat(),
                        }
                        for s in sigs
                    ],
                    "attempts": [
                        {
                            "accepted": a.accepted,
                            "decision": a.decision,
                            "by": a.signer,
                            "door": a.door,
                            "reason": a.reason,
                            "at": a.at.isoformat(),
                        }
                        for a in attempts
                    ],
                }
            )
        chained: dict[str, str] = {}
        for e in events:
            if e.kind in ("document.issued", "document.signed"):
                body = json.loads(e.payload)
                chained[body["document_id"]] = body["sha256"]
        documents = [
            {
                "id": d.id,
                "doc_key": d.doc_key,
                "kind": d.kind,
                "title": d.title,
                "version": d.version,
                "sha256": d.sha256,
                "status": d.status,
                "copies": d.copies,
                "signed_by": d.signed_by,
                "signed_at": d.signed_at.isoformat() if d.signed_at else None,
                "hash_ok": hashlib.sha256(d.content.encode()).hexdigest() == d.sha256 == chained.get(d.id),
            }
            for d in session.execute(
                select(Document).where(Document.subject == code).order_by(Document.created_at)
            ).scalars()
        ]
        memos = [
            {
                "memo": m.memo_key,
                "kind": m.kind,
                "description": m.description,
                "resolution_date": m.resolution_date.isoformat() if m.resolution_date else None,
                "status": m.status,
                "overdue": overdue(m.status, m.resolution_date, datetime.now(UTC).date()),  # ENG-28
            }
            for m in session.execute(
                select(Memo).where(Memo.subject == code).order_by(Memo.created_at)
            ).scalars()
        ]
        for d in documents:
            if not d["hash_ok"]:
                problems.append(f"document {d['doc_key']} v{d['version']}: content does not match its hash")
        if incident is not None:
            problems += incident_event_problems(session, code, events)
        report = {
            "project": header,
            "prefect_run": _prefect_run(header["flow_run_id"]) if with_prefect else None,
            "phases": phases,
            "gates": gates,
            "documents": documents,
            "memos": memos,
            "chain": {
                "records": len(events),
                "verified": not problems,
                "problems": problems,
                "head": events[-1].hash if events else None,
                "notes": notes,
                "checkpoints": [
                    {
                        "seq": c.seq,
                        "hash": c.hash,
                        "signed_at": c.signed_at,
                        "key_id": c.key_id,
                        "by": c.published_by,
                    }
                    for c in checkpoints
                ],
            },
            "events": [
                {
                    "seq": e.seq,
                    "kind": e.kind,
                    "actor": e.actor,
                    "at": e.at,
                    "payload": json.loads(e.payload),
                    "hash": e.hash,
                }
                for e in events
            ],
        }
    return report


def _chain_notes(
    events: list[Any], checkpoints: list[Checkpoint], keyring: audit_keys.Keyring, witnessed: int
) -> list[str]:
    """What a verified chain rests on, in words: the keys, the checkpoints, legacy records."""
    notes = []
    legacy = audit_chain.unsigned_before(events)
    began = keyring.signing_began
    if legacy:
        covered = any(c.seq >= legacy for c in checkpoints) or len(events) > legacy
        notes.append(
            f"records #1–#{legacy} unsigned: written before signing began"
            + (f" on {began:%Y-%m-%d %H:%M} UTC" if began else "")
            + (
                "; the hash chain ties them to signed records after them"
                if covered
                else "; run `siteflow audit checkpoint` to sign their head"
            )
        )
    keys = sorted({e.key_id for e in events if e.key_id})
    if keys:
        notes.append(f"records signed by {', '.join(keys)}")
    if checkpoints:
        last = checkpoints[-1]
        notes.append(
            f"{len(checkpoints)} checkpoint(s) published, the last of record #{last.seq} at {last.signed_at}"
        )
    if witnessed:
        notes.append(f"{witnessed} witness(es) given and checked against the chain")
    return notes


def verify(code: str, witnesses: tuple[Checkpoint, ...] = ()) -> list[str]:
    return list(build(code, with_prefect=False, witnesses=witnesses)["chain"]["problems"])


def incident_event_problems(session: Session, key: str, events: list[AuditEvent]) -> list[str]:
    """The incident's stored events against their ``incident.event`` chain records: the clocks
    and the month's SLA figures are computed from the stored rows, so a row whose time, kind or
    author was edited, a row slipped in, or a row removed is named. Rows older than the first
    chained event (recorded before events were chained) are not judged."""
    chained: dict[int, dict[str, Any]] = {}
    for ev in events:
        if ev.kind == "incident.event":
            payload = json.loads(ev.payload)
            chained[int(payload.pop("seq"))] = payload
    rows = session.scalars(
        select(IncidentEventRow).where(IncidentEventRow.incident_key == key).order_by(IncidentEventRow.seq)
    ).all()
    if not chained:
        return []
    first = min(chained)
    problems: list[str] = []
    for row in rows:
        kept = chained.pop(row.seq, None)
        if kept is None:
            if row.seq > first:
                problems.append(
                    f"event #{row.seq} ({row.kind}): not in the audit chain (inserted afterwards?)"
                )
            continue
        if kept != row.data or (row.kind, row.by) != (kept.get("kind"), kept.get("by")):
            problems.append(f"event #{row.seq} ({row.kind}): differs from its audit record (altered)")
        elif datetime.fromisoformat(kept["at"]) != row.at:
            problems.append(
                f"event #{row.seq} ({row.kind}): its time differs from its audit record (altered)"
            )
    problems += [
        f"event #{seq} ({p.get('kind')}): in the audit chain but deleted" for seq, p in chained.items()
    ]
    return problems


def verify_with_notes(code: str, witnesses: tuple[Checkpoint, ...] = ()) -> tuple[list[str], list[str]]:
    """Problems (empty when the trail holds) and what the verdict rests on."""
    chain = build(code, with_prefect=False, witnesses=witnesses)["chain"]
    return list(chain["problems"]), list(chain["notes"])


@lru_cache(maxsize=1)
def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    return site_time.install(env)  # times on the subject's clock, UTC beside


def render_html(report: dict[str, Any]) -> str:
    return _env().get_template("audit.html.j2").render(r=report)
