"""Append to and verify the hash-chained audit log (docs/architecture.md "The audit trail").

Prefect's records can be edited by anyone with API access, so every decision, refusal,
phase transition and document is also appended here. Each record's hash covers its
content and the previous record's hash; the per-stream head row catches a deleted tail.

Hashes alone protect only against naive edits: someone who can write the tables can change
a record and recompute every hash after it and the head (issue #10 item 4; COM-6 asks for
access control on audit data). So each record's hash is also signed with an Ed25519 key kept
outside the database (:mod:`siteflow.audit_keys`): a rewritten record no longer carries a
valid signature, and :func:`verify` names it. A truncated or wholesale rebuilt chain (by
someone who also holds the key) is caught by the signed heads published outside the
database — checkpoints and the witnesses in customers' mails (:mod:`siteflow.audit_checkpoints`).

Records written before signing existed carry no signature; they verify as "unsigned, written
before signing began", and an unsigned record dated after that, or after a signed record, is
a removed signature.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.audit import AuditEvent, AuditHead
from siteflow import audit_keys

GENESIS = "0" * 64


def canonical(payload: Any) -> str:
    return json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def record_hash(prev_hash: str, stream: str, seq: int, kind: str, actor: str, at: str, payload: str) -> str:
    body = canonical([prev_hash, stream, seq, kind, actor, at, payload])
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def signed_message(stream: str, seq: int, digest: str) -> bytes:
    """What a record's signature covers: its hash (which covers its content and everything before
    it), bound to its place, with a domain tag so it can never pass for a checkpoint's."""
    return canonical(["siteflow-audit-record/1", stream, seq, digest]).encode("utf-8")


def recorded_at(at: str) -> datetime:
    return datetime.fromisoformat(at).astimezone(UTC)


def append(session: Session, stream: str, kind: str, actor: str, payload: dict[str, Any]) -> AuditEvent:
    """Append one record inside the caller's transaction (so it lands with the change it logs)."""
    return append_many(session, stream, [(kind, actor, payload)])[-1]


def append_many(
    session: Session, stream: str, records: list[tuple[str, str, dict[str, Any]]]
) -> list[AuditEvent]:
    """Append records (kind, actor, payload) in order, locking the stream's head once: a
    night's deadline defaults land as one write instead of one per gate."""
    head = session.execute(
        select(AuditHead).where(AuditHead.stream == stream).with_for_update()
    ).scalar_one_or_none()
    if head is None:
        head = AuditHead(stream=stream, seq=0, hash=GENESIS)
        session.add(head)
    events = []
    key = audit_keys.signing_key()
    seq, prev = head.seq, head.hash
    for kind, actor, payload in records:
        seq += 1
        at = datetime.now(UTC).isoformat(timespec="microseconds")
        body = canonical(payload)
        digest = record_hash(prev, stream, seq, kind, actor, at, body)
        events.append(
            AuditEvent(
                stream=stream,
                seq=seq,
                kind=kind,
                actor=actor,
                at=at,
                payload=body,
                prev_hash=prev,
                hash=digest,
                key_id=key.key_id,
                signature=key.sign(signed_message(stream, seq, digest)),
            )
        )
        prev = digest
    session.add_all(events)
    head.seq, head.hash = seq, prev
    session.flush()
    return events


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    kind: str
    message: str

    def __str__(self) -> str:
        return f"record #{self.seq} ({self.kind}): {self.message}"


def verify(session: Session, stream: str, keyring: audit_keys.Keyring | None = None) -> list[ChainProblem]:
    """Every way the stored chain differs from an untouched one, in order: links and hashes,
    then each record's signature against the keyring (outside the database)."""
    keys = keyring if keyring is not None else audit_keys.load_keyring()
    events = (
        session.execute(select(AuditEvent).where(AuditEvent.stream == stream).order_by(AuditEvent.id))
        .scalars()
        .all()
    )
    head = session.get(AuditHead, stream)
    problems: list[ChainProblem] = []
    prev = GENESIS
    expected_seq = 1
    signed_seen = False
    for ev in events:
        if ev.seq != expected_seq:
            problems.append(
                ChainProblem(
                    ev.seq,
                    ev.kind,
                    f"out of place: expected record #{expected_seq} here (deleted or reordered)",
                )
            )
        if ev.prev_hash != prev:
            problems.append(
                ChainProblem(ev.seq, ev.kind, "does not follow the record before it (deleted or reordered)")
            )
        if record_hash(ev.prev_hash, ev.stream, ev.seq, ev.kind, ev.actor, ev.at, ev.payload) != ev.hash:
            problems.append(ChainProblem(ev.seq, ev.kind, "content altered: hash does not match"))
        signature = _signature_problem(ev, keys, signed_seen)
        if signature:
            problems.append(ChainProblem(ev.seq, ev.kind, signature))
        signed_seen = signed_seen or ev.signature is not None
        prev = ev.hash
        expected_seq = ev.seq + 1
    if head is None:
        if events:
            problems.append(ChainProblem(0, "head", "the chain head record is missing"))
    elif head.seq != (events[-1].seq if events else 0) or head.hash != prev:
        problems.append(
            ChainProblem(
                head.seq,
                "head",
                f"the chain ends at #{events[-1].seq if events else 0} but its head says #{head.seq}: "
                "records were deleted from the end or the head was altered",
            )
        )
    return problems


def _signature_problem(ev: AuditEvent, keys: audit_keys.Keyring, signed_seen: bool) -> str | None:
    try:
        at = recorded_at(ev.at)
    except ValueError:
        return f"its time {ev.at!r} is not a time"
    if ev.signature is None and ev.key_id is None:
        began = keys.signing_began
        if signed_seen:
            return "unsigned after signed records: its signature was removed"
        if began is not None and at >= began:
            return (
                f"unsigned, but written after signing began on {began:%Y-%m-%d %H:%M:%S} UTC: "
                "its signature was removed"
            )
        return None  # written before signing existed (see unsigned_before)
    return keys.problem(ev.key_id, signed_message(ev.stream, ev.seq, ev.hash), ev.signature, at)


def unsigned_before(events: list[AuditEvent]) -> int:
    """How many records at the chain's start were written before signing existed (migration
    0010): they are vouched for only by the hash chain up to the first signed record or a
    signed checkpoint."""
    count = 0
    for ev in events:
        if ev.signature is not None:
            break
        count += 1
    return count


def events_for(session: Session, stream: str) -> list[AuditEvent]:
    return list(
        session.execute(
            select(AuditEvent).where(AuditEvent.stream == stream).order_by(AuditEvent.seq)
        ).scalars()
    )
