"""A customer's support contract: what the incident clocks run against (INC-2, INC-4, INC-9).

One typed model (``ContractIn``) holds what the contract says: the customer and whether it is
an *important* customer (a major incident there is an emergency, INC-2), the contract's IANA
zone, its weekly business hours and holidays (major and minor clocks run on them; critical
runs 24×7, INC-4), its SLA targets per severity — versioned, because a renewed contract must
not change the targets of incidents reported under the old one —, the pause reason codes it
allows (the response clock never pauses), the escalation chain with its delays (INC-9), and
the network elements it covers with their units in service (the TL 9000 normalisation base of
the monthly report).

The table ``IncidentContract`` keeps the model as JSON beside the columns a query needs; the
model is read back with :meth:`IncidentContract.terms`.
"""

from __future__ import annotations

import enum
from datetime import date, datetime, time
from typing import Any, Self

from pydantic import Field, field_validator, model_validator
from sqlalchemy import JSON, Boolean, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, utcnow
from models.project_input import Strict, known_zone
from models.text_kinds import ContractCode, ElementName, Email, Label, Name, Phone, ReasonCode


class Severity(enum.StrEnum):
    """INC-1: the TL 9000 severity levels, most severe first."""

    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"


class Weekday(enum.StrEnum):
    MONDAY = "monday"
    TUESDAY = "tuesday"
    WEDNESDAY = "wednesday"
    THURSDAY = "thursday"
    FRIDAY = "friday"
    SATURDAY = "saturday"
    SUNDAY = "sunday"

    @property
    def number(self) -> int:
        """Python's ``date.weekday()`` of this day (Monday 0)."""
        return list(Weekday).index(self)


class BusinessHoursIn(Strict):
    """One stretch of working time on a weekday, on the contract's clock."""

    day: Weekday
    start: time = Field(description="Local start, e.g. 08:30")
    end: time = Field(description="Local end, after the start, e.g. 17:30 (same day)")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end <= self.start:
            raise ValueError(f"business hours on {self.day.value}: the end must be after the start")
        return self


class HolidayIn(Strict):
    """A day (or run of days) without business hours: a public holiday, a contract shutdown."""

    start: date
    end: date | None = Field(default=None, description="Last day, inclusive; default: the start")
    name: Name

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end is not None and self.end < self.start:
            raise ValueError(f"holiday {self.name}: the last day is before the first")
        return self


class SlaTargetIn(Strict):
    """INC-4: the targets for one severity, in minutes of the clock's calendar; none = no target."""

    severity: Severity
    response_minutes: int | None = Field(default=None, gt=0, description="Report → engineer contacts")
    travel_minutes: int | None = Field(default=None, gt=0, description="On-site needed → on site")
    restoration_minutes: int | None = Field(default=None, gt=0, description="Report → restored")


class SlaVersionIn(Strict):
    """A set of SLA targets in force from an instant on; an incident uses the version in force
    when it was reported (received), whatever was signed later."""

    version: int = Field(ge=1)
    effective_from: datetime = Field(description="In force for incidents received from this instant")
    targets: list[SlaTargetIn] = Field(default_factory=list)

    @field_validator("effective_from")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("effective_from needs a time zone offset (e.g. 2026-01-01T00:00:00+08:00)")
        return value

    @model_validator(mode="after")
    def _one_per_severity(self) -> Self:
        seen = [t.severity for t in self.targets]
        if len(seen) != len(set(seen)):
            raise ValueError(f"SLA version {self.version}: one target per severity")
        return self

    def target(self, severity: Severity) -> SlaTargetIn | None:
        return next((t for t in self.targets if t.severity is severity), None)


class EscalationStepIn(Strict):
    """INC-9: who is told next, and how long after the previous step, when nobody acts."""

    role: Label = Field(description="e.g. owner, pm, office management")
    name: Name
    email: Email
    after_minutes: int = Field(gt=0, description="Delay after the previous step (or the trigger)")


class PersonIn(Strict):
    """Someone the contract names: the duty person who owns emailed incidents (INC-9)."""

    name: Name
    email: Email


class CustomerContactIn(PersonIn):
    """A customer's person entitled to report incidents under the contract: a mail from this
    address to the support address opens or adds to an incident (issue #11, COM-2)."""

    phone: Phone = ""


class CoveredElementIn(Strict):
    """A network element under the contract, with the units it has in service (TL 9000 base)."""

    name: ElementName
    units_in_service: int = Field(gt=0)


class ContractIn(Strict):
    """What a support contract says, as its incident clocks and reports need it."""

    code: ContractCode
    customer: Name
    important_customer: bool = Field(
        default=False, description="A major incident at this customer is an emergency (INC-2)"
    )
    timezone: Label = Field(description="IANA zone of the business hours, e.g. Europe/Berlin")
    business_hours: list[BusinessHoursIn] = Field(
        min_length=1, description="Weekly working time for major and minor clocks (INC-4)"
    )
    holidays: list[HolidayIn] = Field(default_factory=list)
    sla: list[SlaVersionIn] = Field(default_factory=list, description="Versioned targets; none = no SLA")
    pause_reasons: list[ReasonCode] = Field(
        default_factory=list, description="Reason codes for which travel and restoration clocks pause"
    )
    escalation: list[EscalationStepIn] = Field(default_factory=list)
    handover_answer_minutes: int = Field(
        default=30,
        gt=0,
        le=7 * 24 * 60,
        description="INC-9: how long a handover may wait for its receiver before the owner is told "
        "and the escalation chain follows, step by step",
    )
    customer_contacts: list[CustomerContactIn] = Field(
        default_factory=list, description="Who may report by mail; an unknown sender goes to the duty owner"
    )
    duty: PersonIn | None = Field(
        default=None, description="Owner of incidents opened by mail (INC-9); else SITEFLOW_SUPPORT_DUTY"
    )
    elements: list[CoveredElementIn] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return known_zone(value)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        versions = [v.version for v in self.sla]
        if len(versions) != len(set(versions)):
            raise ValueError("each SLA version number once")
        starts = [v.effective_from for v in self.sla]
        if len(starts) != len(set(starts)):
            raise ValueError("two SLA versions take effect at the same instant")
        names = [e.name for e in self.elements]
        if len(names) != len(set(names)):
            raise ValueError("each covered element once")
        by_day: dict[Weekday, list[BusinessHoursIn]] = {}
        for hours in self.business_hours:
            by_day.setdefault(hours.day, []).append(hours)
        for day, stretches in by_day.items():
            stretches.sort(key=lambda h: h.start)
            for before, after in zip(stretches, stretches[1:], strict=False):
                if after.start < before.end:
                    raise ValueError(f"business hours on {day.value} overlap")
        return self

    def sla_in_force(self, received_at: datetime) -> SlaVersionIn | None:
        """The SLA version in force when an incident was received (INC-4); None without one."""
        versions = [v for v in self.sla if v.effective_from <= received_at]
        return max(versions, key=lambda v: v.effective_from) if versions else None

    def contact(self, email: str) -> CustomerContactIn | None:
        """The customer contact with this address (case-insensitive), if the contract names one."""
        wanted = email.strip().lower()
        return next((c for c in self.customer_contacts if c.email.lower() == wanted), None)

    def units_in_service(self, element: str) -> int | None:
        return next((e.units_in_service for e in self.elements if e.name == element), None)


class IncidentContract(Base):
    __tablename__ = "incident_contracts"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer: Mapped[str] = mapped_column(String(200), index=True)
    important_customer: Mapped[bool] = mapped_column(Boolean, default=False)
    timezone: Mapped[str] = mapped_column(String(100))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    def terms(self) -> ContractIn:
        """The contract as it was stored (validated again: a stored row is input too)."""
        return ContractIn.model_validate(self.params)
