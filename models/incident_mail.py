"""Mail to the support address, each kept as received with what became of it (issue #11, COM-2, INC-9).

Every mail handed to the intake is a row here *before* it is read: its raw bytes, when it
arrived, and then its outcome — an incident opened, a message added to an incident, an unknown
sender routed to the duty owner, or refused with the reason (not valid Unicode, too long, no
Date …). So a malformed mail loses nothing: the bytes stay for a person to read and answer.
``mail_key`` (the SHA-256 of the Message-ID, or of the bytes without one) makes a mail that is
delivered twice one row and one incident.

``attempts`` and ``attempted_at`` say how often and when the intake last took the mail up: a
row still ``received`` whose attempt started long ago was left by a crash between keeping and
reading, and the gate keeper reads it again (:func:`siteflow.incidents.mail_intake.retry_kept_mail`).
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, new_id


class MailOutcome(enum.StrEnum):
    RECEIVED = "received"  # kept, not yet read (a crash in between leaves it here)
    OPENED = "opened"  # a new incident (channel email, received = the mail's Date)
    ADDED = "added"  # a customer message on the incident its subject names (COM-2)
    UNKNOWN_SENDER = "unknown-sender"  # no contract knows the sender: routed to the duty owner
    REFUSED = "refused"  # not valid text or not usable: the reason, routed to the duty owner
    IGNORED = "ignored"  # an automatic reply (RFC 3834 Auto-Submitted): no loop with auto-responders


class InboundMail(Base):
    __tablename__ = "incident_mails"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    mail_key: Mapped[str] = mapped_column(String(64), unique=True)
    arrived_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    envelope_from: Mapped[str] = mapped_column(String(320))
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    outcome: Mapped[str] = mapped_column(String(16), default=MailOutcome.RECEIVED.value, index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    sender: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(String(400))
    incident_key: Mapped[str | None] = mapped_column(String(24), index=True)
    contract_code: Mapped[str | None] = mapped_column(String(64))
    routed_to: Mapped[str | None] = mapped_column(String(400))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    attempted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
