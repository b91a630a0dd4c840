"""Append-only, hash-chained event log (docs/architecture.md "The audit trail").

Each stream (a project code, later an upgrade window) is its own chain; `audit_heads`
holds the last sequence number and hash of each stream so that a deleted tail is caught too.
Each record is signed (Ed25519, key outside the database: ``siteflow.audit_keys``); records
written before signing existed have no signature. `audit_checkpoints` holds signed heads as
they were published (``siteflow audit checkpoint``, and every mail to a customer).
"""

from __future__ import annotations

from sqlalchemy import Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (UniqueConstraint("stream", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    stream: Mapped[str] = mapped_column(String(64), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(400))
    at: Mapped[str] = mapped_column(String(40))
    payload: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str | None] = mapped_column(String(32))
    signature: Mapped[str | None] = mapped_column(String(100))


class AuditHead(Base):
    __tablename__ = "audit_heads"

    stream: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpoint(Base):
    """A signed head as published: the file copy (outside the database) is the one that counts
    against an insider; this row lets the report list them and survives a lost file."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    stream: Mapped[str] = mapped_column(String(64), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[str] = mapped_column(String(40))
    key_id: Mapped[str] = mapped_column(String(32))
    signature: Mapped[str] = mapped_column(String(100))
    published_by: Mapped[str] = mapped_column(String(16))
