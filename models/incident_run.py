"""An incident as a running capability: the intake form, its run, who decides, notices sent.

- :class:`IncidentReportIn` is the one intake form (the Prefect UI deployment **incident**,
  `siteflow incidents open FILE`, the web API): what the first receiver records (INC-4,
  INC-9), with INC-1's questionnaire instead of a level, so the rules propose the severity
  and the customer is asked only where none clearly applies (INC-3).
- :class:`IncidentRun` ties an incident to its flow run and names its people: the owner
  (INC-9, the logged-in user who opened it) and the customer contact the acknowledgement and
  the customer gates go to.
- :class:`IncidentContactsIn` is the incident's roster for the one decision path: who may
  decide its gates, in which role (the caller as ``customer``, the owner as ``engineer``, the
  contract's PM as ``pm``).
- :class:`IncidentNotice` records each warning, breach and escalation mailed (INC-4, INC-9),
  unique per incident and notice key, so several keepers send each one once.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, new_id, utcnow
from models.incident_input import Channel, Instant, SeverityQuestionnaire
from models.project_input import ContactIn, Role, Strict
from models.text_kinds import ContractCode, ElementName, Email, IncidentKey, Line, Name, Text


class IncidentReportIn(Strict):
    """Intake (INC-4, INC-9): the report as received, and INC-1's questions about it.

    ``owner_*`` is the first receiver; the CLI and the web API fill it with the logged-in user
    (whatever the file says), the Prefect UI form must name them (it proves nobody).
    """

    key: IncidentKey
    received_at: Instant = Field(description="When the report was actually received (the call's time)")
    channel: Channel
    contract: ContractCode
    customer: Name
    caller_name: Name
    caller_contact: Line = Field(description="Phone number of the caller (or how to reach them)")
    caller_email: Email = Field(
        description="Where the acknowledgement, the customer's gates and the summary go"
    )
    elements: list[ElementName] = Field(default_factory=list, description="Affected network elements")
    reported: Text = Field(description="What the caller reported, in their words")
    questionnaire: SeverityQuestionnaire = Field(
        default_factory=SeverityQuestionnaire, description="INC-1's examples: yes, no or not sure"
    )
    owner_name: Name | None = Field(default=None, description="The first receiver (INC-9)")
    owner_email: Email | None = Field(default=None, description="The first receiver's staff email")


class IncidentRun(Base):
    """One incident's run and people (INC-9); the incident's own row stays the core's."""

    __tablename__ = "incident_runs"

    key: Mapped[str] = mapped_column(ForeignKey("incidents.key"), primary_key=True)
    flow_run_id: Mapped[str | None] = mapped_column(String(36), index=True)
    owner_name: Mapped[str] = mapped_column(String(200))
    owner_email: Mapped[str] = mapped_column(String(320))
    caller_name: Mapped[str] = mapped_column(String(200))
    caller_email: Mapped[str] = mapped_column(String(320))
    severity_settled: Mapped[bool] = mapped_column(default=True)  # False while the customer is asked
    reassignments: Mapped[int] = mapped_column(Integer, default=0)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)  # the intake form as received
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class NoticeKind(enum.StrEnum):
    """What an incident notice is (INC-4 warnings and breach, INC-9 escalation steps)."""

    WARNING = "warning"
    BREACH = "breach"
    ESCALATION = "escalation"
    PROMISE = "promise"  # COM-2: a promise to the customer has come due
    PROBLEM_OVERDUE = "problem-overdue"  # INC-8: the raiser of a problem report past its due date


class IncidentNotice(Base):
    """A warning, breach or escalation mailed for an incident: once per (incident, key)."""

    __tablename__ = "incident_notices"
    __table_args__ = (UniqueConstraint("incident_key", "notice_key"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    incident_key: Mapped[str] = mapped_column(ForeignKey("incidents.key"), index=True)
    notice_key: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    recipients: Mapped[list[str]] = mapped_column(JSON)


class IncidentContactsIn(BaseModel):
    """Who may decide an incident's gates, for the one decision path (a roster like a
    project's contacts): the caller (customer), the owner (engineer), the contract's PM."""

    model_config = ConfigDict(frozen=True)

    key: str
    timezone: str
    contacts: list[ContactIn]

    def contact(self, email: str) -> ContactIn | None:
        wanted = email.strip().lower()
        return next((c for c in self.contacts if c.email == wanted), None)

    def contacts_with(self, *roles: Role) -> list[ContactIn]:
        return [c for c in self.contacts if c.role in roles]
