"""Single-use approval links for people who answer by email (docs/architecture.md "Mail", issue #4).

Only the SHA-256 of the token is stored, for lookups; the token itself is never stored: it is
derived from the link's id under the link key `key_id` (kept outside the database,
:mod:`siteflow.link_keys`) when the mail is rendered. `key_id` is NULL only for a link issued
before derived tokens (migration 0018); the relay gives it a derived token before mailing it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, new_id, utcnow


class ApprovalLink(Base):
    __tablename__ = "approval_links"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    gate_id: Mapped[str] = mapped_column(ForeignKey("gates.id"), index=True)
    recipient_name: Mapped[str] = mapped_column(String(200))
    recipient_email: Mapped[str] = mapped_column(String(320))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    key_id: Mapped[str | None] = mapped_column(String(40))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class BadLinkCount(Base):
    """Bad approval-link tokens seen from one client address in one minute.

    Kept in the database, not in a web process's memory, so that several web processes
    behind one address throttle together (issue #4).
    """

    __tablename__ = "bad_link_counts"

    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    minute: Mapped[int] = mapped_column(Integer, primary_key=True, index=True)  # seconds since epoch // 60
    count: Mapped[int] = mapped_column(Integer, default=0)
