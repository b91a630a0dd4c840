"""Open gates, read their state, and pass Prefect UI answers into the one decision path."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select

from models.gate import Gate, GateAttempt, GateDecision, GateStatus
from models.gate_spec import Door, GateSpec, Proof
from models.outbox import LinkKind, OutboxMessage
from models.roster import roster_of, subject_noun
from siteflow import audit_chain
from siteflow.approval_links import LINK_PLACEHOLDER, issue_link
from siteflow.db import session_scope
from siteflow.decisions import DecisionRefused, DecisionRequest, Signer, decide
from siteflow.site_time import site_time, zone_of
from tasks import side_effect


class SignatureRead(BaseModel):
    slot: str
    decision: str
    signer: str
    role: str
    door: str
    comment: str
    data: dict[str, Any] | None
    paper: str | None = None  # door paper: who recorded it and the scan's hash (issue #9 item 5)

    @property
    def signed_as(self) -> str:
        """The signer as a signed document names them: a paper's record with its scan's hash."""
        return f"{self.signer} ({self.paper})" if self.paper else self.signer


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
        return [s.signed_as for s in self.signatures]


def _signature(s: GateDecision) -> SignatureRead:
    return SignatureRead(
        slot=s.party,
        decision=s.decision,
        signer=f"{s.signer_name} <{s.signer_email}>",
        role=s.role,
        door=s.door,
        comment=s.comment,
        data=s.data,
        paper=f"paper recorded by {s.recorded_by}, scan sha256 {s.evidence_sha256}"
        if s.proof == Proof.PAPER.value
        else None,
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


def gate_mail_text(
    subject: str,
    spec: GateSpec,
    name: str,
    zone: str | None = None,
    noun: tuple[str, str] = ("项目", "Project"),
) -> str:
    """Plain-text notice, Chinese first with English beside it; the link is filled in at send.
    The deadline is on the site's clock with the UTC instant beside it; `noun` says what the
    subject is (project, upgrade window, incident)."""
    choices = " / ".join(d.value for d in spec.decisions)
    zh, en = noun
    return (
        f"{name}，您好 / Dear {name},\n\n"
        f"{zh} {subject} 需要您的决定 / {en} {subject} needs your decision:\n"
        f"  {spec.title} ({spec.rule})\n  {spec.description}\n"
        f"  可选 / Choices: {choices}\n"
        + (
            f"  截止 / Decide by: {site_time(spec.deadline, zone) if spec.deadline else ''}"
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
                link_id = issue_link(session, gate.id, contact.name, contact.email, gate.deadline)
                session.add(
                    OutboxMessage(
                        dedup_key=f"gate-opened:{gate.id}:{contact.email}",
                        subject_ref=subject,
                        recipient=f"{contact.name} <{contact.email}>",
                        title=f"[{subject}] 待您决定 / Decision needed: {spec.title}",
                        body_text=gate_mail_text(
                            subject, spec, contact.name, zone_of(session, subject), subject_noun(form)
                        ),
                        link_kind=LinkKind.APPROVAL.value,
                        link_id=link_id,
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


UNKNOWN_UI_SIGNER = Signer(name="unknown (Prefect UI)", email="nobody@prefect-ui.invalid")


class UiAnswer(BaseModel):
    """What became of one Prefect-UI answer: `refused` with its `reason`, or taken (a resume
    that carried a decision recorded through a proven door). `replayed` when an earlier
    (re-)run already took this very answer: nothing new happened, nothing to tell again."""

    message: str
    refused: bool = False
    reason: str = ""
    replayed: bool = False


@side_effect(name="record-ui-decision")
def record_ui_decision(
    gate_id: str, answer: dict[str, Any], source_ref: str, at: datetime | None = None
) -> UiAnswer:
    """Pass a Prefect-UI answer into the one decision path, where no signature is taken from it.

    Prefect's open-source UI (and its API's resume) cannot say who pressed Resume, so an answer
    that would decide an open gate is refused and recorded as refused (door prefect-ui) with
    the reason, whoever it names (COM-6: a signature is made by the person it names). A resume
    carrying the decision already recorded for the gate through a proven door is what the
    resumer sends to wake the run: taken as it is, not counted as an attempt. Any other answer
    to a decided gate goes to :func:`decide`, which refuses it as already decided.

    The source_ref (run id and pause key) makes a replay after a re-run a no-op. `at` is when
    the answer reached siteflow (Prefect's record of it), not when the re-run got to it.
    A refusal is recorded and returned, never raised.
    """
    named = Signer(
        name=str(answer.get("signer_name") or "").strip(),
        email=str(answer.get("signer_email") or "").strip().lower(),
    )
    signer = named if named.name or named.email else UNKNOWN_UI_SIGNER
    decision = str(answer.get("decision") or "")
    request = DecisionRequest(
        gate_id=gate_id,
        decision=decision,
        signer=signer,
        door=Door.PREFECT_UI,
        comment=str(answer.get("comment") or ""),
        data=answer.get("data") if isinstance(answer.get("data"), dict) else None,
        source_ref=source_ref,
        at=at or datetime.now(UTC),
    )
    with session_scope() as session:
        gate = session.get(Gate, gate_id)
        if gate is None:
            return UiAnswer(message=f"refused: no gate {gate_id}", refused=True, reason=f"no gate {gate_id}")
        earlier = session.execute(
            select(GateAttempt).where(GateAttempt.source_ref == source_ref)
        ).scalar_one_or_none()
        if earlier is not None:
            if earlier.accepted:
                return UiAnswer(message="already recorded", replayed=True)
            reason = earlier.reason or ""
            return UiAnswer(message=f"refused: {reason}", refused=True, reason=reason, replayed=True)
        signatures = list(
            session.execute(select(GateDecision).where(GateDecision.gate_id == gate_id)).scalars()
        )
        is_open = gate.status == GateStatus.OPEN.value
    if not is_open and any(s.decision == decision for s in signatures):
        by = ", ".join(f"{s.signer_name} <{s.signer_email}> ({s.door})" for s in signatures)
        return UiAnswer(message=f"already recorded: {decision} by {by}")
    try:  # decide refuses the Prefect UI on an open gate before any check of the person named
        result = decide(request, resume=False)  # the run that would be resumed is this one
    except DecisionRefused as refused:
        return UiAnswer(message=f"refused: {refused.reason}", refused=True, reason=refused.reason)
    return UiAnswer(message=result.message)  # not reached: decide refuses the door on any gate
