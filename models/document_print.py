"""What a printed document carries beside its version: the verification code on the paper and
the scans of the signed, stamped paper that came back (issue #12; ENG-13, ENG-15, ENG-31).

A code is random and stored, not derived: anyone holding the paper reads it (or scans the QR)
and the public verify page looks it up by its index; nothing about the document can be
computed from it, and codes cannot be enumerated (60 random bits, and unknown codes are
throttled per address). A scan is kept by its SHA-256 beside the version it is a paper of.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, new_id, utcnow


class DocumentCode(Base):
    """One verification code per document version, made the first time it is needed."""

    __tablename__ = "document_codes"

    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)  # canonical: 12 base32 characters
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DocumentScan(Base):
    """A scan of the signed (and stamped) paper of one version, uploaded by a staff member."""

    __tablename__ = "document_scans"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    media_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer)
    uploaded_by: Mapped[str] = mapped_column(String(600))  # "Name <email>" of the staff account
    door: Mapped[str] = mapped_column(String(16))  # web (session) or cli (token)
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
