"""Memos with a resolution date that are tracked to closure (ENG-7 survey memos, ENG-28)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, new_id, utcnow


class Memo(Base):
    __tablename__ = "memos"
    __table_args__ = (UniqueConstraint("subject", "memo_key"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    subject: Mapped[str] = mapped_column(String(64), index=True)
    memo_key: Mapped[str] = mapped_column(String(96))
    kind: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(200), default="")
    resolution_date: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="open")
    document_id: Mapped[str | None] = mapped_column(ForeignKey("documents.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


def overdue(status: str, resolution_date: date | None, today: date) -> bool:
    """ENG-28: an open memo is tracked to its resolution date; after that day it is overdue."""
    return status == "open" and resolution_date is not None and today > resolution_date
