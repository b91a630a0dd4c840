"""INC-9 handovers: a request to take over an incident, which only its receiver can accept.

The first receiver owns an incident until it is closed; handing it to the office or another
engineer is a request, and until the receiver accepts it the owner is unchanged (a handover
nobody took is how incidents get lost). One request waits at a time; each is kept, with who
asked, whom, why, and how it ended.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, new_id, utcnow


class HandoverState(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"


class IncidentHandover(Base):
    __tablename__ = "incident_handovers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    incident_key: Mapped[str] = mapped_column(ForeignKey("incidents.key"), index=True)
    from_name: Mapped[str] = mapped_column(String(200))
    from_email: Mapped[str] = mapped_column(String(320))
    to_name: Mapped[str] = mapped_column(String(200))
    to_email: Mapped[str] = mapped_column(String(320))
    note: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(16), default=HandoverState.PENDING.value)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
