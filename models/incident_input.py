"""What people state about an incident (docs/process.md §3, INC-1 … INC-10, COM-2, COM-8).

Typed inputs only — intake (``IncidentIn``), field events (``IncidentEvent``, one model per
kind), outages with their cause segments (``OutageIn``), closure (``ClosureIn``) and problem
reports (``ProblemReportIn``). Every text is one of the kinds of :mod:`models.text_kinds`.
Times are aware instants: ``received_at`` is when the report was actually received (the
call's time, the mail's Date), not when somebody typed it.

What a model can check alone it checks here (an outage ending before it starts, cause
segments that overlap or do not add up, an emergency that is minor). Checks that need the
incident's history or the clock — events in order, never in the future or before the
report, COM-8 — live in :mod:`siteflow.incidents`.
"""

from __future__ import annotations

import enum
from datetime import date, datetime, timedelta
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, TypeAdapter, model_validator

from models.incident_contract import Severity
from models.project_input import Strict
from models.site_access import SiteAccessIn
from models.text_kinds import (
    ContractCode,
    ElementName,
    Email,
    IncidentKey,
    Line,
    Name,
    Note,
    ReasonCode,
    Text,
    WindowId,
)


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("give the time with its zone offset (e.g. 2026-11-06T18:40:00+01:00)")
    return value


Instant = Annotated[datetime, AfterValidator(_aware)]
"""An aware datetime: a time without an offset is refused, never guessed."""


class Channel(enum.StrEnum):
    """How the report reached us (INC-4: received)."""

    PHONE = "phone"
    EMAIL = "email"
    FAX = "fax"
    IN_PERSON = "in-person"


class IncidentIn(Strict):
    """Intake: what the first receiver (INC-9) records when a fault report arrives."""

    key: IncidentKey
    received_at: Instant = Field(description="When the report was actually received (INC-4)")
    channel: Channel
    contract: ContractCode
    customer: Name
    caller_name: Name
    caller_contact: Line = Field(description="Phone number or email of the caller")
    elements: list[ElementName] = Field(default_factory=list, description="Affected network elements")
    reported: Text = Field(description="What the caller reported, in their words")
    severity: Severity = Field(description="From the questionnaire or the customer's level (INC-1, INC-3)")
    emergency: bool = Field(
        default=False, description="INC-2: every critical; a major at an important customer"
    )
    affects_operation: bool = Field(
        default=True,
        description="The fault affects normal operation: staff stay on site until restored (COM-8)",
    )
    owner: Name = Field(description="The first receiver, who owns it until closed (INC-9)")

    @model_validator(mode="after")
    def _emergency_rules(self) -> Self:
        if self.emergency and self.severity is Severity.MINOR:
            raise ValueError("INC-2: an emergency can never be minor")
        if self.severity is Severity.CRITICAL and not self.emergency:
            raise ValueError("INC-2: every critical incident is an emergency")
        return self


class Answer(enum.StrEnum):
    YES = "yes"
    NO = "no"
    UNSURE = "not-sure"


class Question(enum.StrEnum):
    """INC-1's examples, one question each; the value is how the form asks it."""

    SERVICE_DOWN_TOTALLY = "Is the product inoperable — is service down totally?"
    SERVICE_DOWN_PARTLY = "Is service down in part (a partial outage)?"
    CAPACITY_BELOW_LOAD = "Has capacity dropped so that the expected load cannot be carried?"
    EMERGENCY_CALLS = "Are emergency calls (119, 911 …) or any emergency capability affected?"
    SAFETY_SECURITY = "Is there a safety hazard or a risk of a security breach?"
    CAPACITY_REDUCED = "Is capacity reduced while the expected load is still carried?"
    MANAGEMENT_LOST = "Is management visibility or diagnostics lost?"
    REPEATED_DEGRADATION = "Does an essential component or function degrade repeatedly?"
    ALARMS_DEGRADED = "Is the ability to raise alarms degraded?"


CRITICAL_QUESTIONS = (
    Question.SERVICE_DOWN_TOTALLY,
    Question.SERVICE_DOWN_PARTLY,
    Question.CAPACITY_BELOW_LOAD,
    Question.EMERGENCY_CALLS,
    Question.SAFETY_SECURITY,
)
MAJOR_QUESTIONS = (
    Question.CAPACITY_REDUCED,
    Question.MANAGEMENT_LOST,
    Question.REPEATED_DEGRADATION,
    Question.ALARMS_DEGRADED,
)


class SeverityQuestionnaire(Strict):
    """The intake form's questions (INC-1); unanswered is *no*."""

    service_down_totally: Answer = Answer.NO
    service_down_partly: Answer = Answer.NO
    capacity_below_load: Answer = Answer.NO
    emergency_calls: Answer = Answer.NO
    safety_security: Answer = Answer.NO
    capacity_reduced: Answer = Answer.NO
    management_lost: Answer = Answer.NO
    repeated_degradation: Answer = Answer.NO
    alarms_degraded: Answer = Answer.NO
    none_fits: bool = Field(
        default=False, description="The fault is serious but none of these describes it: ask the customer"
    )

    def answer(self, question: Question) -> Answer:
        answer: Answer = getattr(self, question.name.lower())
        return answer


class EventKind(enum.StrEnum):
    CONTACTED = "contacted"  # an engineer contacted the customer: stops the response clock
    ON_SITE_NEEDED = "on-site-needed"  # decision that on-site support is needed: starts travel
    ON_MY_WAY = "on-my-way"
    ON_SITE = "on-site"  # engineer on site and working: stops travel
    RESTORED = "restored"  # system restored: stops restoration
    PAUSE = "pause"
    RESUME = "resume"
    RECLASSIFIED = "reclassified"
    REMOTE_SESSION = "remote-session"  # INC-10: remote diagnosis
    VISIT = "visit"  # INC-10: on-site support, recorded with from/to
    DEPARTURE = "departure"  # the on-site engineer leaves (COM-8)
    CUSTOMER_MESSAGE = "customer-message"  # COM-2: what the customer asked or was promised, kept
    REQUEST = "request"  # COM-2: what we asked of the customer (open the room, send a log …)
    PROMISE = "promise"  # COM-2: what we promised the customer, and by when


class _Event(Strict):
    at: Instant = Field(description="When it happened (not when it was typed)")
    by: Name = Field(description="Who did it, or who records it")
    note: Note = ""


class ContactedIn(_Event):
    kind: Literal[EventKind.CONTACTED] = EventKind.CONTACTED


class OnSiteNeededIn(_Event):
    kind: Literal[EventKind.ON_SITE_NEEDED] = EventKind.ON_SITE_NEEDED


class OnMyWayIn(_Event):
    kind: Literal[EventKind.ON_MY_WAY] = EventKind.ON_MY_WAY


class OnSiteIn(_Event):
    """The engineer is on site and working (stops the travel clock, INC-4). COM-7: with the
    site-access checklist; the core refuses a new one without it (earlier records have none)."""

    kind: Literal[EventKind.ON_SITE] = EventKind.ON_SITE
    site_access: SiteAccessIn | None = Field(
        default=None, description="COM-7: duty staff's consent, badge, removable-media consent"
    )


class RestoredIn(_Event):
    kind: Literal[EventKind.RESTORED] = EventKind.RESTORED


class PauseIn(_Event):
    """Travel and restoration clocks stop for a reason code the contract allows (INC-4)."""

    kind: Literal[EventKind.PAUSE] = EventKind.PAUSE
    reason: ReasonCode


class ResumeIn(_Event):
    kind: Literal[EventKind.RESUME] = EventKind.RESUME


class ReclassifiedIn(_Event):
    """A severity change (INC-1 … INC-3): who (``by``) and why, always both."""

    kind: Literal[EventKind.RECLASSIFIED] = EventKind.RECLASSIFIED
    severity: Severity
    emergency: bool
    why: Text

    @model_validator(mode="after")
    def _emergency_never_minor(self) -> Self:
        if self.emergency and self.severity is Severity.MINOR:
            raise ValueError("INC-2: an emergency can never be minor")
        return self


class _WorkSpan(_Event):
    """INC-10: work done from `start` to `end` by `engineer`; ``at`` is when it is recorded."""

    kind: EventKind
    engineer: Name
    start: Instant
    end: Instant
    what: Text

    @model_validator(mode="after")
    def _span(self) -> Self:
        if not self.start <= self.end <= self.at:
            what = "a remote session" if self.kind is EventKind.REMOTE_SESSION else "a visit"
            raise ValueError(f"{what} ends after it starts and is recorded after its end")
        return self


class RemoteSessionIn(_WorkSpan):
    """INC-10: a remote diagnosis session; ``at`` is when its record closes (its end)."""

    kind: Literal[EventKind.REMOTE_SESSION] = EventKind.REMOTE_SESSION


class VisitIn(_WorkSpan):
    """INC-10: an on-site visit — who, from, to, what was done; ``at`` is when it is recorded."""

    kind: Literal[EventKind.VISIT] = EventKind.VISIT


class DepartureIn(_Event):
    """The on-site engineer (``by``) leaves the site (COM-8 decides whether they may)."""

    kind: Literal[EventKind.DEPARTURE] = EventKind.DEPARTURE


class CustomerMessageIn(_Event):
    """COM-2: a message from the customer kept on the incident's record — a follow-up mail to
    the support address whose subject names the key (``at``: the mail's Date; ``by``: the
    sender as the contract knows them). Not a milestone: it moves no clock."""

    kind: Literal[EventKind.CUSTOMER_MESSAGE] = EventKind.CUSTOMER_MESSAGE
    channel: Channel = Channel.EMAIL
    sender: Email
    subject: Line
    text: Text
    message_id: Line


class RequestIn(_Event):
    """COM-2: a request made to the customer, kept on the record (``by``: who asked)."""

    kind: Literal[EventKind.REQUEST] = EventKind.REQUEST
    what: Text = Field(description="What the customer was asked for")


class PromiseIn(_Event):
    """COM-2: a promise made to the customer (``by``: who promised), and by when; the owner is
    reminded when that time comes (the keeper). Not a milestone: it moves no clock."""

    kind: Literal[EventKind.PROMISE] = EventKind.PROMISE
    what: Text = Field(description="What was promised")
    due: Instant | None = Field(default=None, description="By when it was promised")

    @model_validator(mode="after")
    def _due_later(self) -> Self:
        if self.due is not None and self.due <= self.at:
            raise ValueError("COM-2: a promise is due after it was made (due later than at)")
        return self


IncidentEvent = Annotated[
    ContactedIn
    | OnSiteNeededIn
    | OnMyWayIn
    | OnSiteIn
    | RestoredIn
    | PauseIn
    | ResumeIn
    | ReclassifiedIn
    | RemoteSessionIn
    | VisitIn
    | DepartureIn
    | CustomerMessageIn
    | RequestIn
    | PromiseIn,
    Field(discriminator="kind"),
]
"""One field event, typed by its ``kind``."""

EVENT_ADAPTER: TypeAdapter[IncidentEvent] = TypeAdapter(IncidentEvent)  # type: ignore[arg-type, unused-ignore]

MILESTONES = frozenset(
    {
        EventKind.CONTACTED,
        EventKind.ON_SITE_NEEDED,
        EventKind.ON_MY_WAY,
        EventKind.ON_SITE,
        EventKind.RESTORED,
        EventKind.PAUSE,
        EventKind.RESUME,
        EventKind.RECLASSIFIED,
        EventKind.DEPARTURE,
    }
)
"""Events that move a clock or the incident's state: recorded in order (INC-4). Work records
(remote sessions, visits) are written after the fact and need only fall between the report
and now."""


class OutageType(enum.StrEnum):
    """INC-6."""

    SERVICE_IMPACT = "service-impact"  # 业务中断: end users' service fails
    NETWORK_ELEMENT = "network-element"  # 网元中断: an element's function is lost


class Cause(enum.StrEnum):
    """INC-7: who an outage's time is attributed to."""

    PRODUCT = "product"
    CUSTOMER = "customer"
    EXTERNAL = "external"  # uncontrollable: natural disaster, third-party power


class AttributionAnswer(enum.StrEnum):
    """The customer's answer to a disputed attribution (INC-7): the segments as recorded hold,
    or the whole outage is the product's, the customer's or external."""

    RECORDED = "recorded"
    PRODUCT = "product"
    CUSTOMER = "customer"
    EXTERNAL = "external"


class CauseSegmentIn(Strict):
    """A stretch of an outage attributed to one cause (INC-7)."""

    cause: Cause
    start: Instant
    end: Instant
    agreed_by_customer: bool = Field(
        default=False, description="Disputed attribution settled by the customer, whose word is final"
    )

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


class OutageIn(Strict):
    """INC-5 … INC-7: an outage of one element, its type, how many units, and its causes.

    The cause segments must not overlap and must add up to the outage exactly, so every second
    of it is attributed once. ``our_work`` marks an outage caused by our own work (an upgrade
    window, an installation), with the project or window it came from.
    """

    element: ElementName
    type: OutageType
    start: Instant
    end: Instant
    affected_units: int = Field(gt=0)
    units_in_service: int = Field(gt=0)
    causes: list[CauseSegmentIn] = Field(min_length=1)
    our_work: bool = False
    work_ref: WindowId | None = Field(default=None, description="Project code or window id of our work")
    note: Note = ""
    disputed: bool = Field(
        default=False,
        description="INC-7: the attribution is disputed — the customer decides it at a gate, finally",
    )
    dispute_reason: Note = Field(default="", description="With disputed: what is disputed, and by whom")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.disputed and not self.dispute_reason.strip():
            raise ValueError(
                "INC-7: a disputed attribution needs its reason (dispute_reason): what is disputed"
            )
        if self.end <= self.start:
            raise ValueError(
                f"INC-7: the outage ends ({self.end.isoformat()}) before or when it starts "
                f"({self.start.isoformat()}): give the end after the start"
            )
        if self.affected_units > self.units_in_service:
            raise ValueError("affected units cannot exceed the units in service")
        segments = sorted(self.causes, key=lambda s: s.start)
        for segment in segments:
            if segment.end <= segment.start:
                raise ValueError(f"INC-7: the {segment.cause.value} segment ends before or when it starts")
            if segment.start < self.start or segment.end > self.end:
                raise ValueError(f"INC-7: the {segment.cause.value} segment lies outside the outage")
        for before, after in zip(segments, segments[1:], strict=False):
            if after.start < before.end:
                raise ValueError(
                    f"INC-7: cause segments overlap ({before.cause.value} until {before.end.isoformat()}, "
                    f"{after.cause.value} from {after.start.isoformat()}): each second has one cause"
                )
        total = sum((s.duration for s in segments), timedelta())
        if total != self.end - self.start:
            raise ValueError(
                f"INC-7: cause segments add up to {total.total_seconds():g} s but the outage lasts "
                f"{(self.end - self.start).total_seconds():g} s: attribute every second of it"
            )
        return self

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    def attributed(self, cause: Cause) -> timedelta:
        return sum((s.duration for s in self.causes if s.cause is cause), timedelta())


class ClosureIn(Strict):
    """INC-8: an incident closes only with all five filled in."""

    description: Text
    cause: Text
    solution: Text
    process: Text
    summary: Text
    by: Name


class ProblemReportIn(Strict):
    """A problem report to the office for a root-cause fix: tracked apart from the incident
    (TL 9000), with its own due date, overdue until it is closed."""

    title: Line
    office: Name = Field(description="Who at the office receives it")
    due: date
    detail: Note = ""
    by: Name
