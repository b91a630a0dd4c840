"""Incidents, their field events, outages with cause segments, problem reports (INC-1 … INC-10).

The incident row holds what intake recorded and the current severity; every field event is a
row of ``incident_events`` in the order it was recorded (``seq``), with its typed model kept as
JSON — the clocks are recomputed from these rows, never stored, so a reclassification or a
late pause changes every figure consistently (INC-4). Outages and their cause segments are
rows of their own so the monthly report can sum them in SQL when it has to.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy import false as sa_false
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, new_id, utcnow
from models.incident_input import EVENT_ADAPTER, IncidentEvent


class IncidentState(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Attribution(enum.StrEnum):
    """Where an outage's cause attribution stands (INC-7): as recorded, disputed (its customer
    gate waits for the customer's answer), or decided by the customer — final."""

    RECORDED = "recorded"
    DISPUTED = "disputed"
    DECIDED = "decided"


class Incident(Base):
    __tablename__ = "incidents"

    key: Mapped[str] = mapped_column(String(24), primary_key=True)
    contract_code: Mapped[str] = mapped_column(ForeignKey("incident_contracts.code"), index=True)
    customer: Mapped[str] = mapped_column(String(200), index=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    caller_name: Mapped[str] = mapped_column(String(200))
    caller_contact: Mapped[str] = mapped_column(String(400))
    elements: Mapped[list[str]] = mapped_column(JSON)
    reported: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(16))
    initial_severity: Mapped[str] = mapped_column(String(16))
    emergency: Mapped[bool] = mapped_column(Boolean, default=False)
    affects_operation: Mapped[bool] = mapped_column(Boolean, default=True)
    owner: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16), default=IncidentState.OPEN.value, index=True)
    description: Mapped[str | None] = mapped_column(Text)
    cause: Mapped[str | None] = mapped_column(Text)
    solution: Mapped[str | None] = mapped_column(Text)
    process: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[str | None] = mapped_column(Text)
    closed_by: Mapped[str | None] = mapped_column(String(200))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    next_notice_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    """When the keeper next needs to look (its next warning, breach or escalation step is due);
    empty = look now. A change that can move a notice (an event, a handover, a new contract)
    sets it to the change's time, so the pass is only as long as what is due (issue #11)."""


class IncidentEventRow(Base):
    __tablename__ = "incident_events"
    __table_args__ = (UniqueConstraint("incident_key", "seq"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    incident_key: Mapped[str] = mapped_column(ForeignKey("incidents.key"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(24))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    by: Mapped[str] = mapped_column(String(200))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def event(self) -> IncidentEvent:
        """The typed event as it was recorded."""
        return EVENT_ADAPTER.validate_python(self.data)


class Outage(Base):
    __tablename__ = "incident_outages"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    incident_key: Mapped[str] = mapped_column(ForeignKey("incidents.key"), index=True)
    element: Mapped[str] = mapped_column(String(64), index=True)
    type: Mapped[str] = mapped_column(String(24))
    start: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    end: Mapped[datetime] = mapped_column(UTCDateTime())
    affected_units: Mapped[int] = mapped_column(Integer)
    units_in_service: Mapped[int] = mapped_column(Integer)
    our_work: Mapped[bool] = mapped_column(Boolean, default=False)
    work_ref: Mapped[str | None] = mapped_column(String(40))
    note: Mapped[str] = mapped_column(Text, default="")
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    attribution: Mapped[str] = mapped_column(
        String(16), default=Attribution.RECORDED.value, server_default=Attribution.RECORDED.value
    )
    disputed_by: Mapped[str | None] = mapped_column(String(320))
    disputed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    dispute_reason: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[str | None] = mapped_column(String(600))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class OutageCause(Base):
    __tablename__ = "incident_outage_causes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    outage_id: Mapped[str] = mapped_column(ForeignKey("incident_outages.id"), index=True)
    cause: Mapped[str] = mapped_column(String(16))
    start: Mapped[datetime] = mapped_column(UTCDateTime())
    end: Mapped[datetime] = mapped_column(UTCDateTime())
    agreed_by_customer: Mapped[bool] = mapped_column(Boolean, default=False)
    superseded: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    """A recorded segment the customer's final attribution replaced (INC-7): kept as evidence,
    left out of every figure."""


class ProblemReport(Base):
    __tablename__ = "problem_reports"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    incident_key: Mapped[str] = mapped_column(ForeignKey("incidents.key"), index=True)
    title: Mapped[str] = mapped_column(String(400))
    office: Mapped[str] = mapped_column(String(200))
    detail: Mapped[str] = mapped_column(Text, default="")
    due: Mapped[date] = mapped_column(Date, index=True)
    opened_by: Mapped[str] = mapped_column(String(200))
    opened_by_email: Mapped[str | None] = mapped_column(String(320))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
