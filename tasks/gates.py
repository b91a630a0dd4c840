"""Open gates, read their state, and pass Prefect UI answers into the one decision path."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select

from models.gate import Gate, GateDecision, GateStatus
from models.gate_spec import Door, GateSpec
from models.outbox import OutboxMessage
from models.roster import roster_of
from siteflow import audit_chain
from siteflow.approval_links import LINK_PLACEHOLDER, issue_link
from siteflow.db import session_scope
from siteflow.decisions import DecisionRefused, DecisionRequest, Signer, decide
from tasks import side_effect


class SignatureRead(BaseModel):
    slot: str
    decision: str
    signer: str
    role: str
    door: str
    comment: str
    data: dict[str, Any] | None


class GateRead(BaseModel):
    id: str
    key: str
    status: str
    outcome: str | None
    signatures: list[SignatureRead]

    @property
    def closed(self) -> bool:
        return self.status == GateStatus.DECIDED.value

    def data(self) -> dict[str, Any]:
        """The data that came with the deciding signature (data gates have one slot)."""
        for sig in self.signatures:
            if sig.data is not None:
                return sig.data
        return {}

    @property
    def signers(self) -> list[str]:
        return [s.signer for s in self.signatures]


def _signature(s: GateDecision) -> SignatureRead:
    return SignatureRead(
        slot=s.party,
        decision=s.decision,
        signer=f"{s.signer_name} <{s.signer_email}>",
        role=s.role,
        door=s.door,
        comment=s.comment,
        data=s.data,
    )


def _as_read(gate: Gate, signatures: list[GateDecision]) -> GateRead:
    return GateRead(
        id=gate.id,
        key=gate.key,
        status=gate.status,
        outcome=gate.outcome,
        signatures=[_signature(s) for s in signatures],
    )


def _read(session: Any, gate: Gate) -> GateRead:
    return read_gates(session, [gate])[0]


def read_gates(session: Any, gates: list[Gate]) -> list[GateRead]:
    """The gates with their signatures, in one query for all of them (a window has hundreds)."""
    by_gate: dict[str, list[GateDecision]] = {g.id: [] for g in gates}
    ids = list(by_gate)
    for chunk in (ids[i : i + 500] for i in range(0, len(ids), 500)):
        for s in session.execute(
            select(GateDecision).where(GateDecision.gate_id.in_(chunk)).order_by(GateDecision.decided_at)
        ).scalars():
            by_gate[s.gate_id].append(s)
    return [_as_read(g, by_gate[g.id]) for g in gates]


def gate_mail_text(subject: str, spec: GateSpec, name: str) -> str:
    """Plain-text notice, Chinese first with English beside it; the link is filled in at send."""
    choices = " / ".join(d.value for d in spec.decisions)
    return (
        f"{name}，您好 / Dear {name},\n\n"
        f"项目 {subject} 需要您的决定 / Project {subject} needs your decision:\n"
        f"  {spec.title} ({spec.rule})\n  {spec.description}\n"
        f"  可选 / Choices: {choices}\n"
        + (
            f"  截止 / Decide by: {spec.deadline:%Y-%m-%d %H:%M} UTC"
            + (
                f" (到期默认 / then by default: {spec.default_decision.value})"
                if spec.default_decision
                else ""
            )
            + "\n"
            if spec.deadline
            else ""
        )
        + "\n"
        f"请打开您的专用链接确认 / Please confirm through your own link:\n  {LINK_PLACEHOLDER}\n\n"
        "链接仅供您本人使用一次 / The link is yours alone and works once.\n"
        "感谢您的支持！/ Thank you for your support."
    )


@side_effect(name="open-gate")
def open_gate(subject: str, flow_run_id: str, spec: GateSpec) -> GateRead:
    """Create the gate once, with a notice to everyone who may decide it (outbox, same txn)."""
    with session_scope() as session:
        gate = session.execute(
            select(Gate).where(Gate.subject == subject, Gate.key == spec.key)
        ).scalar_one_or_none()
        if gate is not None:
            return _read(session, gate)
        gate = Gate(
            subject=subject,
            key=spec.key,
            kind=spec.kind.value,
            rule=spec.rule,
            title=spec.title,
            description=spec.description,
            parties=[{"slot": p.slot, "roles": [r.value for r in p.roles]} for p in spec.parties],
            decisions=[d.value for d in spec.decisions],
            data_model=spec.data_model,
            data_required_for=[d.value for d in spec.data_required_for],
            ends_at_once=[d.value for d in spec.ends_at_once],
            document_id=spec.document_id,
            flow_run_id=flow_run_id,
            not_before=spec.not_before,
            deadline=spec.deadline,
            default_decision=spec.default_decision.value if spec.default_decision else None,
            accepts_paper=spec.accepts_paper,
        )
        session.add(gate)
        form = roster_of(session, subject)
        session.flush()
        if form is not None:
            roles = {r for p in spec.parties for r in p.roles}
            for contact in form.contacts_with(*roles):
                token = issue_link(session, gate.id, contact.name, contact.email, gate.deadline)
                session.add(
                    OutboxMessage(
                        dedup_key=f"gate-opened:{gate.id}:{contact.email}",
                        subject_ref=subject,
                        recipient=f"{contact.name} <{contact.email}>",
                        title=f"[{subject}] 待您决定 / Decision needed: {spec.title}",
                        body_text=gate_mail_text(subject, spec, contact.name),
                        secret=token,
                        document_id=spec.document_id,
                    )
                )
        audit_chain.append(
            session,
            subject,
            "gate.opened",
            "system:siteflow",
            {
                "gate": spec.key,
                "gate_id": gate.id,
                "kind": spec.kind.value,
                "rule": spec.rule,
                "title": spec.title,
                "parties": gate.parties,
                "decisions": gate.decisions,
                "document_id": spec.document_id,
            },
        )
        return _read(session, gate)


@side_effect(name="read-gate")
def read_gate(gate_id: str) -> GateRead:
    with session_scope() as session:
        gate = session.get(Gate, gate_id)
        if gate is None:
            raise LookupError(f"no gate {gate_id}")
        return _read(session, gate)


@side_effect(name="record-ui-decision")
def record_ui_decision(
    gate_id: str, answer: dict[str, Any], source_ref: str, at: datetime | None = None
) -> str:
    """The Prefect UI's Resume button bypasses our checks, so its answer is decided here.

    The source_ref (run id and pause key) makes a replay after a re-run a no-op. `at` is when
    the answer reached siteflow (Prefect's record of it), not when the re-run got to it: an
    answer given before a deadline is not refused for the time the run took to resume.
    Returns a message for the flow log; a refusal is recorded, never raised.
    """
    signer = Signer(
        name=str(answer.get("signer_name") or "").strip(),
        email=str(answer.get("signer_email") or "").strip().lower(),
    )
    decision = str(answer.get("decision") or "")
    with session_scope() as session:
        gate = session.get(Gate, gate_id)
        carried = (
            gate is not None
            and gate.status == GateStatus.DECIDED.value
            and any(
                s.decision == decision and s.signer_email == signer.email
                for s in session.execute(
                    select(GateDecision).where(GateDecision.gate_id == gate_id)
                ).scalars()
            )
        )
    if carried:  # the resume carried a decision recorded through another door: nothing new
        return f"already recorded: {decision} by {signer}"
    try:
        result = decide(
            DecisionRequest(
                gate_id=gate_id,
                decision=decision,
                signer=signer,
                door=Door.PREFECT_UI,
                comment=str(answer.get("comment") or ""),
                data=answer.get("data"),
                source_ref=source_ref,
                at=at or datetime.now(UTC),
            ),
            resume=False,  # this run is the one that would be resumed: it is running already
        )
    except DecisionRefused as refused:
        return f"refused: {refused.reason}"
    return result.message
