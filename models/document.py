"""Generated documents, versioned and content-hashed (ENG-15: a signed version is immutable)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint, event, inspect
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, UTCDateTime, new_id, utcnow


class DocumentStatus(enum.StrEnum):
    ISSUED = "issued"
    SIGNED = "signed"
    SUPERSEDED = "superseded"


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("subject", "doc_key", "version"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    subject: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(48))
    doc_key: Mapped[str] = mapped_column(String(96))
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(300))
    content: Mapped[str] = mapped_column(Text)
    # the typed body the HTML was rendered from (DocumentBody JSON), so the PDF is rendered from
    # the same data; None for versions issued before it was kept (their PDF uses the HTML)
    body_json: Mapped[str | None] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    body_sha256: Mapped[str] = mapped_column(String(64), index=True)
    copies: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16), default=DocumentStatus.ISSUED.value)
    supersedes_id: Mapped[str | None] = mapped_column(ForeignKey("documents.id"))
    signed_by: Mapped[str | None] = mapped_column(Text)
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SignedDocumentAltered(Exception):
    """ENG-15: an altered (涂改) signed document is invalid; issue a new version instead."""


FROZEN_FIELDS = (
    "content",
    "body_json",
    "sha256",
    "body_sha256",
    "version",
    "doc_key",
    "title",
    "signed_by",
    "signed_at",
)


@event.listens_for(Session, "before_flush")
def _refuse_changes_to_signed_documents(session: Session, *_: object) -> None:
    """ENG-15 at the storage layer: once signed, only the move to superseded is allowed."""
    for obj in session.dirty:
        if not isinstance(obj, Document):
            continue
        insp = inspect(obj)
        signed_at = insp.attrs.signed_at.history
        was_signed = bool(signed_at.deleted and signed_at.deleted[0] is not None) or (
            not signed_at.has_changes() and obj.signed_at is not None
        )
        if not was_signed:
            continue
        status = insp.attrs.status.history
        bad_status = status.has_changes() and obj.status != DocumentStatus.SUPERSEDED.value
        if bad_status or any(insp.attrs[name].history.has_changes() for name in FROZEN_FIELDS):
            raise SignedDocumentAltered(
                f"document {obj.doc_key} v{obj.version} is signed and cannot be altered "
                "(ENG-15); issue a new version and have it signed again"
            )
