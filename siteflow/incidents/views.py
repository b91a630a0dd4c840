"""What people read about a running incident: its clocks now (INC-4) and its record — every
event, customer messages included (COM-2) — for the CLI, the web API and the run's Prefect
artifact. Times are on the contract's clock with UTC beside them."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.incident import Incident, IncidentState
from models.incident_contract import Severity
from models.incident_input import (
    CustomerMessageIn,
    EventKind,
    IncidentEvent,
    PauseIn,
    PromiseIn,
    ReclassifiedIn,
    RemoteSessionIn,
    RequestIn,
    VisitIn,
)
from models.incident_run import IncidentRun
from siteflow.incidents import records
from siteflow.incidents.clocks import ClockKind, ClockReading, ClockState
from siteflow.site_time import site_time


class ClockView(BaseModel):
    model_config = ConfigDict(frozen=True)

    clock: ClockKind
    state: ClockState
    elapsed_seconds: float
    remaining_seconds: float | None
    percent: float | None
    target_minutes: float | None
    due_at: datetime | None
    breached: bool


class RecordLine(BaseModel):
    """One event of the incident's record, as a line people read."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    kind: EventKind
    by: str
    what: str


def _what(event: IncidentEvent, zone: str) -> str:
    """The event's own details in one line: a customer's message (COM-2) with its subject and
    the start of its text, a pause's reason, a reclassification's level and why, work spans."""
    if isinstance(event, CustomerMessageIn):
        text = " ".join(event.text.split())
        more = "…" if len(text) > 160 else ""
        return f"{event.channel.value} from {event.sender}: {event.subject} — {text[:160]}{more}"
    if isinstance(event, PromiseIn):
        by = f", by {site_time(event.due, zone)}" if event.due is not None else ""
        detail = f"promised to the customer: {event.what}{by}"
    elif isinstance(event, RequestIn):
        detail = f"asked of the customer: {event.what}"
    elif isinstance(event, PauseIn):
        detail = f"reason {event.reason}"
    elif isinstance(event, ReclassifiedIn):
        detail = f"to {event.severity.value}" + (" (emergency)" if event.emergency else "") + f": {event.why}"
    elif isinstance(event, RemoteSessionIn | VisitIn):
        detail = (
            f"{event.engineer}, {site_time(event.start, zone)} – {site_time(event.end, zone)}: {event.what}"
        )
    else:
        detail = ""
    return "; ".join(part for part in (detail, event.note) if part)


def record_lines(events: list[IncidentEvent], zone: str) -> list[RecordLine]:
    return [RecordLine(at=e.at, kind=e.kind, by=e.by, what=_what(e, zone)) for e in events]


class IncidentView(BaseModel):
    """One incident as of an instant: its level, owner, state and the three clocks."""

    model_config = ConfigDict(frozen=True)

    key: str
    customer: str
    contract: str
    zone: str
    severity: Severity
    emergency: bool
    state: IncidentState
    owner: str
    received_at: datetime
    flow_run_id: str | None
    events: int
    as_of: datetime
    clocks: list[ClockView]
    record: list[RecordLine] = []

    @property
    def breached(self) -> bool:
        return any(c.breached for c in self.clocks)

    def owned_by(self, email: str) -> bool:
        """Whether ``email`` (any case) is the owner's (``owner`` reads "Name <email>")."""
        return self.owner.lower().endswith(f"<{email.strip().lower()}>")


def _clock(reading: ClockReading) -> ClockView:
    return ClockView(
        clock=reading.clock,
        state=reading.state,
        elapsed_seconds=reading.elapsed.total_seconds(),
        remaining_seconds=reading.remaining.total_seconds() if reading.remaining is not None else None,
        percent=reading.percent,
        target_minutes=reading.target.total_seconds() / 60 if reading.target is not None else None,
        due_at=reading.due_at,
        breached=reading.breached,
    )


def incident_view(session: Session, *, key: str, now: datetime, with_record: bool = False) -> IncidentView:
    """The incident now; ``with_record`` adds every event (one incident's page, not the lists)."""
    record = records.load_incident(session, key=key)
    contract = records.load_contract(session, code=record.contract)
    clocks = records.incident_clocks(session, key=key, now=record.closed_at or now)
    row = session.get(Incident, key)
    run = session.get(IncidentRun, key)
    assert row is not None
    return IncidentView(
        key=key,
        customer=record.customer,
        contract=record.contract,
        zone=contract.timezone,
        severity=record.severity,
        emergency=record.emergency,
        state=record.state,
        owner=row.owner,
        received_at=record.received_at,
        flow_run_id=run.flow_run_id if run is not None else None,
        events=len(record.events),
        as_of=clocks.as_of,
        clocks=[_clock(r) for r in clocks.readings],
        record=record_lines(record.events, contract.timezone) if with_record else [],
    )


def incident_views(
    session: Session, *, now: datetime, open_only: bool = False, breached_only: bool = False
) -> list[IncidentView]:
    query = select(Incident.key).order_by(Incident.received_at)
    if open_only:
        query = query.where(Incident.state == IncidentState.OPEN.value)
    views = [incident_view(session, key=k, now=now) for k in session.scalars(query)]
    return [v for v in views if v.breached] if breached_only else views


def duration(seconds: float | None) -> str:
    """``1h 05m`` / ``12m 30s``; a dash for none."""
    if seconds is None:
        return "—"
    total = int(timedelta(seconds=seconds).total_seconds())
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s"


def clock_rows(view: IncidentView) -> list[tuple[str, str, str, str, str, str]]:
    """clock, state, elapsed, remaining, percent, due (site time with UTC beside it)."""
    return [
        (
            c.clock.value,
            c.state.value + (" · BREACHED" if c.breached else ""),
            duration(c.elapsed_seconds),
            duration(c.remaining_seconds),
            f"{c.percent:.0f} %" if c.percent is not None else "—",
            site_time(c.due_at, view.zone) if c.due_at is not None else "—",
        )
        for c in view.clocks
    ]


def clocks_markdown(view: IncidentView) -> str:
    """The run's artifact: the incident's clocks as a table (INC-4)."""
    head = (
        f"## {view.key} · {view.customer} · {view.severity.value}"
        + (" · emergency" if view.emergency else "")
        + f" · {view.state.value}\n\nOwner: {view.owner} · as of {site_time(view.as_of, view.zone)}\n\n"
    )
    table = "| clock | state | elapsed | remaining | % of target | due |\n|---|---|---|---|---|---|\n"
    return head + table + "".join("| " + " | ".join(row) + " |\n" for row in clock_rows(view))
