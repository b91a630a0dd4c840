"""Mail waiting to be sent, written in the same transaction as the event that causes it.

A mail that carries a personal link names the link (``link_kind``, ``link_id``), never its
token: the relay derives the token when it renders the mail (:mod:`siteflow.link_keys`), so no
database file ever holds it (issue #10 item 3).
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, new_id, utcnow


class LinkKind(enum.StrEnum):
    """Which kind of single-use link a mail carries; part of what the token is derived from."""

    APPROVAL = "approval"  # models.approval_link.ApprovalLink, /a/<token>
    PASSWORD = "password"  # models.staff.PasswordLink, /reset/<token>


class OutboxMessage(Base):
    __tablename__ = "outbox"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    dedup_key: Mapped[str] = mapped_column(String(200), unique=True)
    subject_ref: Mapped[str] = mapped_column(String(64), index=True)
    recipient: Mapped[str] = mapped_column(String(320))
    title: Mapped[str] = mapped_column(String(400))
    body_text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(String(200))
    link_kind: Mapped[str | None] = mapped_column(String(16))  # LinkKind
    link_id: Mapped[str | None] = mapped_column(String(36))
    document_id: Mapped[str | None] = mapped_column(String(36))  # attached to the mail
    calendar_ics: Mapped[str | None] = mapped_column(Text)  # an invite (text/calendar part)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
