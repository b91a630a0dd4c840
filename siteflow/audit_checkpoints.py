"""Signed heads of the audit chain, published outside the database, and checked against it.

Signing each record (:mod:`siteflow.audit_chain`) catches a record rewritten by someone who
can write the tables but has no key. Two rewrites remain that signatures on records alone
cannot see: cutting records off the end (every remaining record is still validly signed), and
rebuilding the chain from some record on by someone who also holds the key. Both are caught
by a *checkpoint*: the chain's head (stream, record number, hash) signed at a moment, kept
where that insider cannot reach it. A checkpoint names a record that must stay in the chain
with exactly that hash, forever.

Checkpoints are published in three places:

- the checkpoints file, ``SITEFLOW_HOME/audit/checkpoints.jsonl`` (``SITEFLOW_AUDIT_CHECKPOINTS_FILE``):
  one JSON line each, only ever appended. It is outside the database, so a database-only
  insider cannot remove one; ship copies off the host (it is not secret) and give a copy to
  ``siteflow audit verify CODE --witness FILE``;
- the ``audit_checkpoints`` table, so the report can list them when the file is lost;
- every mail to a customer (:mod:`siteflow.mail_witness`): the customer keeps a witness that
  no one at the contractor can take back. ``--witness`` reads that mail (.eml) as it is.

``siteflow audit checkpoint`` publishes the head of every chain (or of one) after verifying it,
so it never vouches for a chain already broken; that is also how chains written before
signing existed get vouched for once (migration 0010).
"""

from __future__ import annotations

import email
import email.policy
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.audit import AuditCheckpoint, AuditEvent, AuditHead
from siteflow import audit_chain, audit_keys
from siteflow.audit_chain import ChainProblem
from siteflow.settings import Settings, get_settings

WITNESS_HEADER = "X-Siteflow-Audit-Witness"


class WitnessRefused(ValueError):
    """A witness given to verification that proves nothing: not signed by a siteflow key, for
    another chain, or unreadable. Said apart from a broken chain: the chain is not at fault."""


@dataclass(frozen=True)
class Checkpoint:
    stream: str
    seq: int
    hash: str
    signed_at: str
    key_id: str
    signature: str
    published_by: str  # "checkpoint" (the command) or "mail" (a customer's witness)

    def message(self) -> bytes:
        return signed_message(self.stream, self.seq, self.hash, self.signed_at)

    def json_line(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @property
    def signed(self) -> datetime:
        return datetime.fromisoformat(self.signed_at).astimezone(UTC)

    def header_value(self) -> str:
        """The witness as a mail header: ``name=value`` pairs, none of which holds ``;``."""
        return "; ".join(
            f"{k}={v}"
            for k, v in (
                ("stream", self.stream),
                ("seq", self.seq),
                ("hash", self.hash),
                ("signed_at", self.signed_at),
                ("key_id", self.key_id),
                ("signature", self.signature),
            )
        )


def parse_header(value: str) -> Checkpoint:
    """A witness header back into its checkpoint (a folded header arrives unfolded)."""
    pairs = dict(part.strip().partition("=")[::2] for part in "".join(value.split()).split(";") if part)
    return _from_json({**pairs, "published_by": "mail"})


def signed_message(stream: str, seq: int, digest: str, signed_at: str) -> bytes:
    """What a checkpoint's signature covers; the domain tag keeps it apart from a record's."""
    return audit_chain.canonical(["siteflow-audit-checkpoint/1", stream, seq, digest, signed_at]).encode()


def checkpoints_file(settings: Settings | None = None) -> Path:
    s = settings or get_settings()
    return s.audit_checkpoints_file or s.home / "audit" / "checkpoints.jsonl"


def _from_row(row: AuditCheckpoint) -> Checkpoint:
    return Checkpoint(
        row.stream, row.seq, row.hash, row.signed_at, row.key_id, row.signature, row.published_by
    )


def _from_json(body: object) -> Checkpoint:
    if not isinstance(body, dict):
        raise WitnessRefused(
            "a witness is a JSON object with stream, seq, hash, signed_at, key_id, signature"
        )
    try:
        return Checkpoint(
            stream=str(body["stream"]),
            seq=int(body["seq"]),
            hash=str(body["hash"]),
            signed_at=str(body["signed_at"]),
            key_id=str(body["key_id"]),
            signature=str(body["signature"]),
            published_by=str(body.get("published_by", "witness")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise WitnessRefused(f"a witness lacks or garbles {exc}") from None


def sign_head(session: Session, stream: str, published_by: str) -> Checkpoint | None:
    """The chain's current head, signed and published (file and table); None for no chain.

    A head already published is given again rather than signed anew, so a mail retried or
    resent (same Message-ID) carries the same witness.
    """
    head = session.get(AuditHead, stream)
    if head is None or head.seq == 0:
        return None
    row = session.execute(
        select(AuditCheckpoint)
        .where(
            AuditCheckpoint.stream == stream,
            AuditCheckpoint.seq == head.seq,
            AuditCheckpoint.hash == head.hash,
        )
        .order_by(AuditCheckpoint.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if row is not None:
        return _from_row(row)
    key = audit_keys.signing_key()
    signed_at = datetime.now(UTC).isoformat(timespec="microseconds")
    signature = key.sign(signed_message(stream, head.seq, head.hash, signed_at))
    checkpoint = Checkpoint(stream, head.seq, head.hash, signed_at, key.key_id, signature, published_by)
    _append_to_file(checkpoint)
    session.add(
        AuditCheckpoint(
            stream=stream,
            seq=head.seq,
            hash=head.hash,
            signed_at=signed_at,
            key_id=key.key_id,
            signature=signature,
            published_by=published_by,
        )
    )
    session.flush()
    return checkpoint


def _append_to_file(checkpoint: Checkpoint) -> None:
    """One line, appended with O_APPEND (lines from several processes never interleave)."""
    path = checkpoints_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (checkpoint.json_line() + "\n").encode("utf-8"))
    finally:
        os.close(fd)


def read_witnesses(path: Path) -> list[Checkpoint]:
    """The signed heads in a file: a mail (.eml, its witness header), a JSON object or list,
    or JSON lines (a copy of the checkpoints file)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise WitnessRefused(f"cannot read {path}: {exc.strerror}") from None
    if path.suffix.lower() == ".eml" or raw.lstrip()[:1] not in (b"{", b"["):
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        values = msg.get_all(WITNESS_HEADER) or []
        if not values:
            raise WitnessRefused(f"{path.name} carries no {WITNESS_HEADER} header: not a witnessed mail")
        return [parse_header(str(v)) for v in values]
    text = raw.decode("utf-8")
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        return [_from_json(json.loads(line)) for line in text.splitlines() if line.strip()]
    return [_from_json(b) for b in body] if isinstance(body, list) else [_from_json(body)]


def published(session: Session, stream: str) -> list[Checkpoint]:
    """Every checkpoint of a stream, from the file and the table (either may have lost some)."""
    found = [
        _from_row(r)
        for r in session.execute(
            select(AuditCheckpoint).where(AuditCheckpoint.stream == stream).order_by(AuditCheckpoint.id)
        ).scalars()
    ]
    path = checkpoints_file()
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                cp = _from_json(json.loads(line))
            except (json.JSONDecodeError, WitnessRefused):
                continue  # a torn last line after a crash; the table has it
            if cp.stream == stream:
                found.append(cp)
    unique: dict[tuple[int, str, str], Checkpoint] = {}
    for cp in found:
        unique.setdefault((cp.seq, cp.hash, cp.signature), cp)
    return sorted(unique.values(), key=lambda cp: (cp.seq, cp.signed_at))


def check(
    session: Session,
    stream: str,
    witnesses: Iterable[Checkpoint] = (),
    keyring: audit_keys.Keyring | None = None,
) -> list[ChainProblem]:
    """Each published checkpoint and given witness must be genuine and still in the chain.

    A witness that is not genuine, or is for another chain, is refused (:class:`WitnessRefused`)
    rather than reported against the chain; a stored checkpoint that is not genuine is itself
    a tampered record and is reported.
    """
    keys = keyring if keyring is not None else audit_keys.load_keyring()
    given = list(witnesses)
    for w in given:
        if w.stream != stream:
            raise WitnessRefused(f"the witness is for {w.stream}, not {stream}")
        forged = keys.problem(w.key_id, w.message(), w.signature, w.signed)
        if forged:
            raise WitnessRefused(
                f"the witness of record #{w.seq} is not genuine ({forged}): it proves nothing"
            )
    events = {
        e.seq: e for e in session.execute(select(AuditEvent).where(AuditEvent.stream == stream)).scalars()
    }
    last = max(events, default=0)
    problems: list[ChainProblem] = []
    for cp in published(session, stream):
        forged = keys.problem(cp.key_id, cp.message(), cp.signature, cp.signed)
        if forged:
            problems.append(ChainProblem(cp.seq, "checkpoint", f"published checkpoint {forged}"))
        else:
            problems.extend(_against_chain(cp, events, last, "checkpoint published"))
    for w in given:
        problems.extend(_against_chain(w, events, last, "witness signed"))
    return problems


def _against_chain(cp: Checkpoint, events: dict[int, AuditEvent], last: int, what: str) -> list[ChainProblem]:
    when = f"{what} {cp.signed:%Y-%m-%d %H:%M:%S} UTC"
    record = events.get(cp.seq)
    if record is None:
        return [
            ChainProblem(
                cp.seq,
                "witness",
                f"missing: the {when} holds record #{cp.seq}, but the chain ends at #{last}: "
                "records were cut off the end or the chain was rebuilt",
            )
        ]
    if record.hash != cp.hash:
        return [
            ChainProblem(
                cp.seq,
                record.kind,
                f"not the record held by the {when} (hash {cp.hash[:12]}…, now {record.hash[:12]}…): "
                "the chain was rebuilt from here or earlier",
            )
        ]
    return []


def streams(session: Session) -> list[str]:
    return list(session.execute(select(AuditHead.stream).order_by(AuditHead.stream)).scalars())
