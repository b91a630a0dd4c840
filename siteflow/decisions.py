"""The one door every decision goes through (docs/architecture.md "The gate").

The Prefect UI form, the CLI, email links and the deadline enforcer all call :func:`decide`.
It validates the decider and the data, writes the accepted signature under a uniqueness
rule (first valid decision wins), records every refused attempt with its reason, appends
both to the audit chain, and only after the commit resumes the waiting flow run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.gate import Gate, GateAttempt, GateDecision, GateStatus
from models.gate_data import GATE_DATA_MODELS
from models.gate_spec import Door, GateKind, Proof
from models.incident_run import IncidentContactsIn
from models.project_input import ROLE_SIDE, Side
from models.roster import Roster, roster_of
from models.service_language import check_service_language, check_topics
from models.text_kinds import Label, Note, problems, safe_text, text_problem
from models.upgrade_evidence import blocking_reasons
from models.upgrade_plan import UpgradePlanIn
from siteflow import audit_chain
from siteflow.db import session_scope
from siteflow.settings import get_settings
from siteflow.signature_proof import Evidence, Proven, UnprovenSignature, check, prefect_ui_refusal

DEADLINE_ACTOR = "system:deadline"
DEADLINE_SIGNER_EMAIL = "deadline@system.siteflow"
SIGNER_RE = re.compile(r"^\s*(?P<name>[^<>\s][^<>]*?)\s*<(?P<email>[^<>\s]+@[^<>\s]+)>\s*$")


class DecisionRefused(Exception):
    """A decision that was not accepted; the message says why and what to do."""

    def __init__(self, reason: str, gate_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.gate_id = gate_id


@dataclass(frozen=True)
class Signer:
    name: str
    email: str

    @classmethod
    def parse(cls, text: str) -> Signer:
        """Parse ``"Name <email>"`` (plans and tests name people this way)."""
        m = SIGNER_RE.match(text)
        if not m:
            raise ValueError(f'a signer must look like "Name <name@example.com>", got {text!r}')
        return cls(name=m["name"], email=m["email"].lower())

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


@dataclass(frozen=True)
class DecisionRequest:
    gate_id: str
    decision: str
    signer: Signer
    door: Door
    role: str | None = None
    comment: str = ""
    data: dict[str, Any] | None = None
    source_ref: str | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    evidence: Evidence = Evidence(Proof.UNVERIFIED)  # what the door proved (signature_proof)


@dataclass(frozen=True)
class DecisionResult:
    gate_id: str
    gate_key: str
    subject: str
    slot: str
    complete: bool
    outcome: str | None
    flow_run_id: str | None
    message: str
    replayed: bool = False  # the same request (source_ref) was recorded before; nothing new
    kind: str = ""

    @property
    def pause_wait(self) -> float:
        """How long a resumer should wait for the run to pause. An upgrade window's run watches
        its element decisions while it works (it is not paused and needs no resume), so waiting
        would only cost the Prefect server a poll every 0.1 s; a pause a moment later is the
        gate keeper's to resume. Other runs suspend right after opening their gate."""
        return 0.0 if self.kind == GateKind.ROLLBACK_DECISION.value else 1.0


def _presales() -> str | None:
    return get_settings().presales_contact


def decide(request: DecisionRequest, resume: bool = True) -> DecisionResult:
    """Record a decision or raise :class:`DecisionRefused` (after recording the refusal).

    A decision that completes its gate resumes the waiting run, unless the caller says
    `resume=False`: the web resumes it after its page is sent, and the Prefect UI door is
    recorded by the resumed run itself.
    """
    bad_text = _bad_text(request)
    if bad_text is not None:  # refused before any of it is stored, and recorded made safe
        _record_refusal(replace(request, decision=safe_text(request.decision, 64), comment=""), bad_text)
        raise DecisionRefused(bad_text, request.gate_id)
    try:
        with session_scope() as session:
            result = _accept(session, request)
    except _Refusal as refusal:
        _record_refusal(request, refusal.reason)
        raise DecisionRefused(refusal.reason, request.gate_id) from None
    except _Replay as replay:
        if replay.result is None:
            raise DecisionRefused(replay.reason, request.gate_id) from None
        return replay.result
    except IntegrityError:
        reason = "another decision for this gate was recorded at the same moment; it won"
        _record_refusal(request, reason)
        raise DecisionRefused(reason, request.gate_id) from None
    if resume and result.complete and result.flow_run_id:
        from siteflow.resumer import resume_run

        resume_run(result.flow_run_id, wait_seconds=result.pause_wait)
    return result


def _bad_text(req: DecisionRequest) -> str | None:
    """Why the request's own texts cannot be recorded (issue #10): a decision value is one
    short line, a comment a note; a lone surrogate or a control character would break the
    database write, the audit chain or Prefect's run state that quote them."""
    for kind, value, name in (
        (Label, req.decision, "Decision"),
        (Note, req.comment, "Comment"),
        (Label, req.role or "", "Role"),
    ):
        problem = text_problem(kind, value, name) if value else None
        if problem is not None:
            return f"nothing was decided: {problem}"
    return None


class _Refusal(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Replay(Exception):
    def __init__(self, result: DecisionResult | None, reason: str = "") -> None:
        super().__init__(reason)
        self.result = result
        self.reason = reason


def _lock_gate(session: Session, gate_id: str) -> Gate:
    gate = session.execute(select(Gate).where(Gate.id == gate_id).with_for_update()).scalar_one_or_none()
    if gate is None:
        raise DecisionRefused(
            f"no gate with id {gate_id!r}: list open gates with `siteflow gates list`", gate_id
        )
    return gate


def _result(gate: Gate, slot: str, message: str) -> DecisionResult:
    return DecisionResult(
        gate_id=gate.id,
        gate_key=gate.key,
        subject=gate.subject,
        slot=slot,
        complete=gate.status == GateStatus.DECIDED.value,
        outcome=gate.outcome,
        flow_run_id=gate.flow_run_id,
        message=message,
        kind=gate.kind,
    )


def _accept(session: Session, req: DecisionRequest) -> DecisionResult:
    gate = _lock_gate(session, req.gate_id)
    if req.source_ref:
        earlier = session.execute(
            select(GateAttempt).where(GateAttempt.source_ref == req.source_ref)
        ).scalar_one_or_none()
        if earlier is not None:
            replay = (
                replace(_result(gate, "", "already recorded"), replayed=True) if earlier.accepted else None
            )
            raise _Replay(replay, earlier.reason)
    if req.door is Door.PREFECT_UI and gate.status == GateStatus.OPEN.value:
        raise _Refusal(prefect_ui_refusal(gate))
    if req.door is not Door.SYSTEM and gate_has_passed(gate, req.at):
        raise _Refusal(_too_late(session, gate, req.at))
    signed = list(session.execute(select(GateDecision).where(GateDecision.gate_id == gate.id)).scalars())

    if gate.status != GateStatus.OPEN.value:
        by = ", ".join(f"{d.signer_name} <{d.signer_email}> ({d.door})" for d in signed)
        raise _Refusal(
            f"gate {gate.key} is already decided: {gate.outcome} by {by} at "
            f"{gate.decided_at:%Y-%m-%d %H:%M:%S} UTC; nothing was changed"
        )
    if not req.decision or not req.signer.name or not req.signer.email:
        raise _Refusal(
            f"gate {gate.key}: a decision needs a decision value, the signer's name and email; "
            "nothing was decided — fill all three and try again"
        )
    if req.decision not in gate.decisions:
        raise _Refusal(
            f"unknown decision {req.decision!r} for gate {gate.key}; allowed: " + ", ".join(gate.decisions)
        )
    if gate.not_before is not None and datetime.now(UTC) < gate.not_before:  # server clock
        raise _Refusal(
            f"too early: gate {gate.key} can be decided from {gate.not_before:%Y-%m-%d %H:%M} UTC "
            f"({gate.rule}); try again then"
        )

    if req.door is Door.SYSTEM:
        return _accept_default(session, gate, signed, req)
    form = roster_of(session, gate.subject)
    if form is None:
        raise _Refusal(f"gate {gate.key} belongs to unknown subject {gate.subject}")
    contact = form.contact(req.signer.email)
    if contact is None:
        raise _Refusal(
            f"{req.signer} is not a contact of {_kind_of(form)} {gate.subject}; only its listed contacts "
            "may decide its gates"
        )
    try:  # proof first: someone who cannot prove they are this contact learns nothing more
        proven = check(session, gate, req.door, req.evidence, contact.email, contact)
    except UnprovenSignature as unproven:
        raise _Refusal(unproven.reason) from None
    if ROLE_SIDE.get(contact.role) is Side.CONTRACTOR and req.comment:
        # COM-1 and COM-5: our people's words reach customers (mails, documents, the trail)
        violations = [*check_service_language(req.comment), *check_topics(req.comment, _presales())]
        if violations:
            raise _Refusal(f"the comment was not recorded: {'; '.join(str(v) for v in violations)}")
    if req.role is not None and req.role != contact.role.value:
        raise _Refusal(f"{req.signer} is listed as {contact.role.value}, not {req.role}")

    if any(d.signer_email == contact.email for d in signed):
        raise _Refusal(
            f"{req.signer} has already signed gate {gate.key}; a two-party gate needs two "
            "different people, one from each side"
        )
    allowed_slots = [p for p in gate.parties if contact.role.value in p["roles"]]
    if not allowed_slots:
        wanted = sorted({r for p in gate.parties for r in p["roles"]})
        raise _Refusal(
            f"{req.signer} is listed as {contact.role.value}; gate {gate.key} is decided by "
            + " and ".join(wanted)
        )
    filled = {d.party for d in signed}
    free = [p for p in allowed_slots if p["slot"] not in filled]
    if not free:
        other = next(d for d in signed if d.party == allowed_slots[0]["slot"])
        raise _Refusal(
            f"the {allowed_slots[0]['slot']} side of gate {gate.key} was already decided by "
            f"{other.signer_name} <{other.signer_email}>; a later decision cannot replace it"
        )
    slot = free[0]["slot"]

    data = _validated_data(gate, req, form)
    blocked = blocking_reasons(session, gate, req.decision, data)
    if blocked:
        raise _Refusal(f"{req.decision} on {gate.key} refused: " + "; ".join(blocked))

    return _record(session, gate, signed, req, slot, contact.email, contact.role.value, data, proven=proven)


def gate_has_passed(gate: Gate, at: datetime) -> bool:
    """A gate with a deadline default is closed to people once its deadline has passed (UPG-10):
    the decision path enforces it, whoever reaches the gate first — a person's decision
    stamped after it is refused even when the deadline enforcer has not come by yet."""
    return gate.deadline is not None and gate.default_decision is not None and at > gate.deadline


def _too_late(session: Session, gate: Gate, at: datetime) -> str:
    assert gate.deadline is not None
    form = roster_of(session, gate.subject)
    zone = ZoneInfo(form.window.timezone if isinstance(form, UpgradePlanIn) else "UTC")
    local = gate.deadline.astimezone(zone)
    late = (at - gate.deadline).total_seconds()
    return (
        f"too late for gate {gate.key}: its deadline was {local:%Y-%m-%d %H:%M:%S} {zone.key} "
        f"({gate.deadline:%H:%M:%S} UTC) and this decision reached siteflow {late:.1f} s after it. "
        f"After the deadline only the gate's default is taken: {gate.default_decision} by "
        f"{DEADLINE_ACTOR} (UPG-10); this decision was not recorded"
    )


def _accept_default(
    session: Session, gate: Gate, signed: list[GateDecision], req: DecisionRequest
) -> DecisionResult:
    """The deadline's default (UPG-10): only the system, only the gate's default, never early."""
    if req.signer.name != DEADLINE_ACTOR:
        raise _Refusal(f"the system door takes only {DEADLINE_ACTOR}, not {req.signer}")
    if req.evidence.proof is not Proof.SYSTEM:
        raise _Refusal("the system door is the deadline enforcer's own; a request from outside it is refused")
    if gate.default_decision is None or gate.deadline is None:
        raise _Refusal(f"gate {gate.key} has no deadline default; a person must decide it")
    if req.decision != gate.default_decision:
        raise _Refusal(
            f"the deadline default of gate {gate.key} is {gate.default_decision}, not {req.decision}"
        )
    if req.at < gate.deadline:
        raise _Refusal(f"gate {gate.key}: its deadline {gate.deadline:%H:%M:%S} UTC has not passed yet")
    filled = {d.party for d in signed}
    slot = next(p["slot"] for p in gate.parties if p["slot"] not in filled)
    return _record(
        session, gate, signed, req, slot, req.signer.email, "system", None, settle=True, proven=SYSTEM_PROOF
    )


SYSTEM_PROOF = Proven(Proof.SYSTEM)


def _signature_rows(
    gate: Gate,
    req: DecisionRequest,
    slot: str,
    email: str,
    role: str,
    data: dict[str, Any] | None,
    proven: Proven,
) -> list[GateDecision | GateAttempt]:
    """The accepted signature and its attempt row."""
    return [
        GateDecision(
            gate_id=gate.id,
            party=slot,
            decision=req.decision,
            signer_name=req.signer.name,
            signer_email=email,
            role=role,
            comment=req.comment,
            data=data,
            door=req.door.value,
            decided_at=req.at,
            proof=proven.proof.value,
            recorded_by=proven.recorded_by,
            evidence_sha256=proven.scan_sha256,
        ),
        GateAttempt(
            gate_id=gate.id,
            accepted=True,
            decision=req.decision,
            signer=str(req.signer),
            role=role,
            door=req.door.value,
            source_ref=req.source_ref,
            at=req.at,
            proof=proven.proof.value,
        ),
    ]


def _record(
    session: Session,
    gate: Gate,
    signed: list[GateDecision],
    req: DecisionRequest,
    slot: str,
    email: str,
    role: str,
    data: dict[str, Any] | None,
    *,
    proven: Proven,
    settle: bool = False,
) -> DecisionResult:
    session.add_all(_signature_rows(gate, req, slot, email, role, data, proven))
    decisions = {d.party: d.decision for d in signed} | {slot: req.decision}
    settle = settle or req.decision in gate.ends_at_once
    if settle or len(decisions) == len(gate.parties):
        gate.status = GateStatus.DECIDED.value
        gate.outcome = req.decision
        gate.decided_at = req.at
    session.flush()
    audit_chain.append_many(session, gate.subject, _audit_records(gate, req, slot, role, data, proven))
    waiting = [p["slot"] for p in gate.parties if p["slot"] not in decisions]
    message = f"recorded: {req.decision} on {gate.key} by {req.signer} ({slot})" + (
        f"; still waiting for the {', '.join(waiting)} side" if waiting and not settle else ""
    )
    return _result(gate, slot, message)


def _audit_records(
    gate: Gate, req: DecisionRequest, slot: str, role: str, data: dict[str, Any] | None, proven: Proven
) -> list[tuple[str, str, dict[str, Any]]]:
    """The chain records of one accepted signature, and of the gate closing if it did."""
    records: list[tuple[str, str, dict[str, Any]]] = [
        (
            "gate.decision",
            str(req.signer),
            {
                "gate": gate.key,
                "gate_id": gate.id,
                "slot": slot,
                "decision": req.decision,
                "role": role,
                "door": req.door.value,
                "proof": proven.proof.value,
                **({"recorded_by": proven.recorded_by} if proven.recorded_by else {}),
                **({"scan_sha256": proven.scan_sha256} if proven.scan_sha256 else {}),
                "comment": req.comment,
                "data": data,
                "gate_complete": gate.status == GateStatus.DECIDED.value,
            },
        )
    ]
    if gate.status == GateStatus.DECIDED.value:
        records.append(
            ("gate.closed", str(req.signer), {"gate": gate.key, "gate_id": gate.id, "outcome": gate.outcome})
        )
    return records


def deadline_request(gate_id: str, default: str, at: datetime) -> DecisionRequest:
    """The deadline enforcer's request: the gate's default, by the system, once (source_ref)."""
    return DecisionRequest(
        gate_id=gate_id,
        decision=default,
        signer=Signer(DEADLINE_ACTOR, DEADLINE_SIGNER_EMAIL),
        door=Door.SYSTEM,
        comment="no decision by the deadline: the safe default (UPG-10)",
        source_ref=f"system:deadline:{gate_id}",
        at=at,
        evidence=Evidence(Proof.SYSTEM),
    )


def apply_deadline_defaults(gate_ids: list[str], at: datetime) -> list[DecisionResult]:
    """Record the deadline default of every one of these gates still open, in one transaction.

    A night's elements share one deadline; one transaction per gate cannot record a thousand
    defaults within a second or two. The rows are locked as the one-gate path locks them
    (PostgreSQL skips rows another keeper holds, so keepers split the work), each gate is
    checked again under the lock, and the same signature, attempt and chain records are
    written as :func:`decide` writes. A conflict falls back to :func:`decide`, gate by gate.
    """
    try:
        with session_scope() as session:
            gates = list(
                session.execute(
                    select(Gate)
                    .where(Gate.id.in_(gate_ids), Gate.status == GateStatus.OPEN.value)
                    .with_for_update(skip_locked=True)
                ).scalars()
            )
            signed: dict[str, list[GateDecision]] = {g.id: [] for g in gates}
            for d in session.execute(
                select(GateDecision).where(GateDecision.gate_id.in_(list(signed)))
            ).scalars():
                signed[d.gate_id].append(d)
            results: list[DecisionResult] = []
            chains: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
            rows: list[Any] = []
            for gate in gates:
                if gate.default_decision is None or gate.deadline is None or at < gate.deadline:
                    continue
                req = deadline_request(gate.id, gate.default_decision, at)
                filled = {d.party for d in signed[gate.id]}
                slot = next(p["slot"] for p in gate.parties if p["slot"] not in filled)
                rows += _signature_rows(gate, req, slot, DEADLINE_SIGNER_EMAIL, "system", None, SYSTEM_PROOF)
                gate.status, gate.outcome, gate.decided_at = GateStatus.DECIDED.value, req.decision, at
                chains.setdefault(gate.subject, []).extend(
                    _audit_records(gate, req, slot, "system", None, SYSTEM_PROOF)
                )
                results.append(_result(gate, slot, f"recorded: {req.decision} on {gate.key} by {req.signer}"))
            session.add_all(rows)
            session.flush()
            for subject, records in chains.items():
                audit_chain.append_many(session, subject, records)
            return results
    except IntegrityError:  # a person's or another keeper's decision at the same moment
        return _defaults_one_by_one(gate_ids, at)


def _defaults_one_by_one(gate_ids: list[str], at: datetime) -> list[DecisionResult]:
    results = []
    with session_scope() as session:
        due = [
            (g.id, g.default_decision)
            for g in session.execute(select(Gate).where(Gate.id.in_(gate_ids))).scalars()
            if g.status == GateStatus.OPEN.value and g.default_decision
        ]
    for gate_id, default in due:
        assert default is not None
        try:
            result = decide(deadline_request(gate_id, default, at), resume=False)
        except DecisionRefused:  # a person (or another keeper) decided first
            continue
        if not result.replayed:
            results.append(result)
    return results


def _kind_of(form: Roster) -> str:
    if isinstance(form, UpgradePlanIn):
        return "upgrade window"
    return "incident" if isinstance(form, IncidentContactsIn) else "project"


def _validated_data(gate: Gate, req: DecisionRequest, form: Roster) -> dict[str, Any] | None:
    if req.data is None:
        if req.decision in gate.data_required_for:
            raise _Refusal(
                f"decision {req.decision!r} on gate {gate.key} needs data ({gate.data_model}); "
                "fill the form fields or pass --data FILE.json"
            )
        return None
    if gate.data_model is None:
        raise _Refusal(f"gate {gate.key} takes no data; leave the data out")
    model = GATE_DATA_MODELS[gate.data_model]
    try:
        parsed = model.model_validate(req.data)
        parsed.check_against(form)
        parsed.check_for(req.decision)
    except ValidationError as exc:
        raise _Refusal(f"data for gate {gate.key} is not valid: {'; '.join(problems(exc))}") from None
    except ValueError as exc:
        raise _Refusal(f"data for gate {gate.key} is not valid: {exc}") from None
    return parsed.model_dump(mode="json")


def _record_refusal(req: DecisionRequest, reason: str) -> None:
    """A refused attempt is part of the record (issue #2: refused attempts too)."""
    with session_scope() as session:
        gate = session.get(Gate, req.gate_id)
        if gate is None:
            return
        if (
            req.source_ref
            and session.execute(
                select(GateAttempt.id).where(GateAttempt.source_ref == req.source_ref)
            ).first()
        ):
            return
        session.add(
            GateAttempt(
                gate_id=gate.id,
                accepted=False,
                reason=reason,
                decision=req.decision[:64],
                signer=str(req.signer)[:600],
                role=(req.role or "")[:32],
                door=req.door.value,
                source_ref=req.source_ref,
                at=req.at,
                proof=req.evidence.proof.value,
            )
        )
        audit_chain.append(
            session,
            gate.subject,
            "gate.refused",
            str(req.signer),
            {
                "gate": gate.key,
                "gate_id": gate.id,
                "decision": req.decision,
                "door": req.door.value,
                "proof": req.evidence.proof.value,
                "reason": reason,
            },
        )
