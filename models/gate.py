"""Gates: every human decision, whatever door it comes through (docs/architecture.md "The gate").

A gate row says what is decided and by whom; `gate_decisions` holds the accepted
signature per party slot (unique, so the first valid decision wins); `gate_attempts` holds
every attempt, accepted or refused, with the reason, so refusals are part of the record.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, new_id, utcnow


class GateStatus(enum.StrEnum):
    OPEN = "open"
    DECIDED = "decided"


class Gate(Base):
    __tablename__ = "gates"
    __table_args__ = (UniqueConstraint("subject", "key"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    subject: Mapped[str] = mapped_column(String(64), index=True)
    key: Mapped[str] = mapped_column(String(96))
    kind: Mapped[str] = mapped_column(String(48))
    rule: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    parties: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    decisions: Mapped[list[str]] = mapped_column(JSON)
    data_model: Mapped[str | None] = mapped_column(String(64))
    data_required_for: Mapped[list[str]] = mapped_column(JSON, default=list)
    ends_at_once: Mapped[list[str]] = mapped_column(JSON, default=list)
    document_id: Mapped[str | None] = mapped_column(ForeignKey("documents.id"))
    flow_run_id: Mapped[str | None] = mapped_column(String(36), index=True)
    status: Mapped[str] = mapped_column(String(16), default=GateStatus.OPEN.value)
    outcome: Mapped[str | None] = mapped_column(String(32))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deadline: Mapped[datetime | None] = mapped_column(UTCDateTime())
    default_decision: Mapped[str | None] = mapped_column(String(32))  # taken at the deadline (UPG-10)
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime())
    accepts_paper: Mapped[bool] = mapped_column(default=False)  # door paper for customer slots


class GateDecision(Base):
    __tablename__ = "gate_decisions"
    __table_args__ = (UniqueConstraint("gate_id", "party"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    gate_id: Mapped[str] = mapped_column(ForeignKey("gates.id"), index=True)
    party: Mapped[str] = mapped_column(String(16))
    decision: Mapped[str] = mapped_column(String(32))
    signer_name: Mapped[str] = mapped_column(String(200))
    signer_email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(32))
    comment: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    door: Mapped[str] = mapped_column(String(16))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    proof: Mapped[str] = mapped_column(String(16), default="unverified")  # Proof
    recorded_by: Mapped[str | None] = mapped_column(String(600))  # door paper: the staff member
    evidence_sha256: Mapped[str | None] = mapped_column(String(64))  # door paper: the scan's hash

    @property
    def signer(self) -> str:
        return f"{self.signer_name} <{self.signer_email}>"

    @property
    def provenance(self) -> str:
        """How this signature was made, for people: the door and what proved the signer."""
        if self.proof == "unverified":
            return f"{self.door}, identity not verified"
        if self.proof == "paper":
            scan = f"scan sha256 {self.evidence_sha256}"
            return f"recorded by {self.recorded_by} from a paper signed by {self.signer} ({scan})"
        return f"{self.door}, proven by {self.proof}"


class GateAttempt(Base):
    __tablename__ = "gate_attempts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    gate_id: Mapped[str] = mapped_column(ForeignKey("gates.id"), index=True)
    accepted: Mapped[bool] = mapped_column()
    reason: Mapped[str] = mapped_column(Text, default="")
    decision: Mapped[str] = mapped_column(String(64))
    signer: Mapped[str] = mapped_column(String(600))
    role: Mapped[str] = mapped_column(String(32))
    door: Mapped[str] = mapped_column(String(16))
    source_ref: Mapped[str | None] = mapped_column(String(160), unique=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    proof: Mapped[str] = mapped_column(String(16), default="unverified")  # Proof the door gave
