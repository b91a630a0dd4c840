"""The three SLA clocks of an incident, computed from its events (INC-4). No I/O.

- **response**: customer report (received) → an engineer contacts the customer. Never pauses.
- **on-site travel**: the decision that on-site support is needed → an engineer on site and
  working (the first arrival after the first decision).
- **restoration**: customer report → system restored.

Travel and restoration pause while a pause (with a reason code the contract allows) is open.
Critical incidents run 24×7, major and minor on the contract's business hours
(:mod:`siteflow.incidents.business_hours`). Targets come from the SLA version in force when the
incident was received; without an SLA (or without a target for a clock) every time is still
computed, only target, due time, percentage and marks are absent.

Nothing here is stored: the clocks are a pure function of (received time, reported severity,
events, contract, now). A reclassification (an event) therefore recomputes every clock from
the report time, with the pauses kept. Each warning/breach mark has a ``notice_key`` that does
not name the severity — a keeper that remembers the keys it has mailed sends no second breach
notice after a reclassification (:func:`due_notices`).
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from models.incident_contract import ContractIn, Severity
from models.incident_input import EventKind, IncidentEvent, PauseIn, ReclassifiedIn
from siteflow.incidents.business_hours import CalendarKind, WorkingCalendar, calendar_for


class ClockKind(enum.StrEnum):
    RESPONSE = "response"
    TRAVEL = "travel"
    RESTORATION = "restoration"


class ClockState(enum.StrEnum):
    NOT_STARTED = "not-started"  # travel: no decision that on-site support is needed (yet)
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


class MarkKind(enum.StrEnum):
    WARNING_50 = "warning-50"
    WARNING_75 = "warning-75"
    BREACH = "breach"


MARK_SHARE: dict[MarkKind, float] = {
    MarkKind.WARNING_50: 0.5,
    MarkKind.WARNING_75: 0.75,
    MarkKind.BREACH: 1.0,
}

PAUSABLE = frozenset({ClockKind.TRAVEL, ClockKind.RESTORATION})
"""INC-4: the response clock never pauses."""


class ClockMark(BaseModel):
    """A warning (50 %, 75 %) or the breach (100 %) of one clock: when it falls, if known."""

    model_config = ConfigDict(frozen=True)

    clock: ClockKind
    kind: MarkKind
    at: datetime | None = Field(description="When the clock reaches it; None while paused or if never")
    reached: bool = Field(description="The clock has reached it (while it was running)")

    @property
    def notice_key(self) -> str:
        """Stable across reclassifications: one notice per clock and mark, whatever the level."""
        return f"{self.clock.value}:{self.kind.value}"


class ClockReading(BaseModel):
    """One clock as of an instant."""

    model_config = ConfigDict(frozen=True)

    clock: ClockKind
    state: ClockState
    calendar: CalendarKind
    started_at: datetime | None
    stopped_at: datetime | None
    wall: timedelta | None = Field(description="Stop − start on the wall clock, when stopped (INC-4)")
    elapsed: timedelta = Field(description="Running time on the calendar, pauses excluded")
    paused: timedelta = Field(description="Calendar time spent paused")
    target: timedelta | None
    remaining: timedelta | None = Field(description="Target − elapsed, never below zero")
    percent: float | None = Field(description="Elapsed as a share of the target, in %")
    due_at: datetime | None = Field(description="When elapsed reaches the target (None while paused)")
    marks: list[ClockMark]
    breached: bool = Field(description="Elapsed exceeded the target")

    @property
    def met(self) -> bool | None:
        """On time: stopped within the target; None while running or without a target."""
        if self.target is None or self.state is not ClockState.STOPPED:
            return None
        return not self.breached

    def mark(self, kind: MarkKind) -> ClockMark:
        return next(m for m in self.marks if m.kind is kind)


class IncidentClocks(BaseModel):
    model_config = ConfigDict(frozen=True)

    severity: Severity = Field(description="The level the clocks ran on: the latest classification")
    sla_version: int | None
    as_of: datetime
    response: ClockReading
    travel: ClockReading
    restoration: ClockReading

    @property
    def readings(self) -> list[ClockReading]:
        return [self.response, self.travel, self.restoration]

    def reading(self, clock: ClockKind) -> ClockReading:
        return next(r for r in self.readings if r.clock is clock)


class ClockNotice(BaseModel):
    """A mark whose notice is due now (the keeper mails it and remembers ``key``)."""

    model_config = ConfigDict(frozen=True)

    clock: ClockKind
    kind: MarkKind
    at: datetime
    key: str


def current_severity(reported: Severity, events: Sequence[IncidentEvent]) -> Severity:
    """The latest classification: the reported level, or the last reclassification's."""
    for event in reversed(events):
        if isinstance(event, ReclassifiedIn):
            return event.severity
    return reported


def pause_intervals(events: Sequence[IncidentEvent], now: datetime) -> list[tuple[datetime, datetime]]:
    """Open→close of every pause (a pause still open ends now; a restoration ends it too)."""
    spans: list[tuple[datetime, datetime]] = []
    opened: datetime | None = None
    for event in events:
        if isinstance(event, PauseIn) and opened is None:
            opened = event.at
        elif event.kind in (EventKind.RESUME, EventKind.RESTORED) and opened is not None:
            spans.append((opened, event.at))
            opened = None
    if opened is not None:
        spans.append((opened, max(opened, now)))
    return spans


def open_pause(events: Sequence[IncidentEvent]) -> datetime | None:
    """When the pause still open began; None when the clocks are not paused."""
    opened: datetime | None = None
    for event in events:
        if isinstance(event, PauseIn) and opened is None:
            opened = event.at
        elif event.kind in (EventKind.RESUME, EventKind.RESTORED):
            opened = None
    return opened


def _first(
    events: Sequence[IncidentEvent], kind: EventKind, after: datetime | None = None
) -> datetime | None:
    return next((e.at for e in events if e.kind is kind and (after is None or e.at >= after)), None)


def _running_spans(
    start: datetime, end: datetime, pauses: Sequence[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime]]:
    """[start, end] with the pauses cut out."""
    spans: list[tuple[datetime, datetime]] = []
    cursor = start
    for p_start, p_end in sorted(pauses):
        if p_end <= cursor or p_start >= end:
            continue
        if p_start > cursor:
            spans.append((cursor, p_start))
        cursor = max(cursor, p_end)
    if cursor < end:
        spans.append((cursor, end))
    return spans


def _reach(
    calendar: WorkingCalendar,
    spans: Sequence[tuple[datetime, datetime]],
    open_from: datetime | None,
    amount: timedelta,
) -> datetime | None:
    """When ``amount`` of running time is reached over the spans, continuing from ``open_from``
    when given (the clock runs on from there); None if it is not reached."""
    left = amount
    for begin, end in spans:
        worked = calendar.working_time(begin, end)
        if worked >= left:
            return calendar.add(begin, left)
        left -= worked
    return calendar.add(open_from, left) if open_from is not None else None


def read_clock(
    clock: ClockKind,
    *,
    start: datetime | None,
    stop: datetime | None,
    pauses: Sequence[tuple[datetime, datetime]],
    paused_since: datetime | None,
    calendar: WorkingCalendar,
    target: timedelta | None,
    now: datetime,
) -> ClockReading:
    """One clock from its start, stop and the pauses (``paused_since``: a pause still open);
    the response clock ignores pauses (INC-4)."""
    marks_none = [ClockMark(clock=clock, kind=k, at=None, reached=False) for k in MarkKind] if target else []
    if start is None:
        return ClockReading(
            clock=clock,
            state=ClockState.NOT_STARTED,
            calendar=calendar.kind,
            started_at=None,
            stopped_at=None,
            wall=None,
            elapsed=timedelta(),
            paused=timedelta(),
            target=target,
            remaining=target,
            percent=0.0 if target else None,
            due_at=None,
            marks=marks_none,
            breached=False,
        )
    applied = list(pauses) if clock in PAUSABLE else []
    end = stop if stop is not None else max(now, start)
    spans = _running_spans(start, end, applied)
    elapsed = sum((calendar.working_time(a, b) for a, b in spans), timedelta())
    paused = calendar.working_time(start, end) - elapsed
    paused_now = stop is None and clock in PAUSABLE and paused_since is not None
    if stop is not None:
        state = ClockState.STOPPED
    elif paused_now:
        state = ClockState.PAUSED
    else:
        state = ClockState.RUNNING
    # Where the clock would run on from, to project marks past the last span.
    if state is ClockState.PAUSED:
        open_from = None
    elif spans and spans[-1][1] == end:
        open_from = spans[-1][0]
        spans = spans[:-1]
    else:
        open_from = end
    marks: list[ClockMark] = []
    due_at: datetime | None = None
    if target is not None:
        for kind, share in MARK_SHARE.items():
            at = _reach(calendar, spans, open_from, target * share)
            reached = elapsed > target if kind is MarkKind.BREACH else elapsed >= target * share
            marks.append(ClockMark(clock=clock, kind=kind, at=at, reached=reached))
            if kind is MarkKind.BREACH:
                due_at = at
    breached = target is not None and elapsed > target
    return ClockReading(
        clock=clock,
        state=state,
        calendar=calendar.kind,
        started_at=start,
        stopped_at=stop,
        wall=(stop - start) if stop is not None else None,
        elapsed=elapsed,
        paused=paused,
        target=target,
        remaining=max(target - elapsed, timedelta()) if target is not None else None,
        percent=round(100 * elapsed / target, 2) if target else None,
        due_at=due_at,
        marks=marks,
        breached=breached,
    )


def compute_clocks(
    *,
    received_at: datetime,
    reported_severity: Severity,
    events: Sequence[IncidentEvent],
    contract: ContractIn,
    now: datetime,
) -> IncidentClocks:
    """INC-4: response, travel and restoration as of ``now``, on the latest severity's calendar
    and targets, from the report time, pauses kept. ``events`` are in recorded order and
    already checked (:func:`siteflow.incidents.timeline.check_event`)."""
    severity = current_severity(reported_severity, events)
    calendar = calendar_for(severity, contract)
    sla = contract.sla_in_force(received_at)
    target = sla.target(severity) if sla is not None else None
    pauses = pause_intervals(events, now)
    decided = _first(events, EventKind.ON_SITE_NEEDED)
    arrived = _first(events, EventKind.ON_SITE, after=decided) if decided is not None else None
    paused_since = open_pause(events)

    def reading(
        clock: ClockKind, start: datetime | None, stop: datetime | None, minutes: int | None
    ) -> ClockReading:
        return read_clock(
            clock,
            start=start,
            stop=stop,
            pauses=pauses,
            paused_since=paused_since,
            calendar=calendar,
            target=timedelta(minutes=minutes) if minutes is not None else None,
            now=now,
        )

    return IncidentClocks(
        severity=severity,
        sla_version=sla.version if sla is not None else None,
        as_of=now,
        response=reading(
            ClockKind.RESPONSE,
            received_at,
            _first(events, EventKind.CONTACTED),
            target.response_minutes if target else None,
        ),
        travel=reading(ClockKind.TRAVEL, decided, arrived, target.travel_minutes if target else None),
        restoration=reading(
            ClockKind.RESTORATION,
            received_at,
            _first(events, EventKind.RESTORED),
            target.restoration_minutes if target else None,
        ),
    )


def due_notices(clocks: IncidentClocks, sent: Collection[str]) -> list[ClockNotice]:
    """The warnings and breaches reached and not yet notified (by ``notice_key``), in time order.

    Keys do not name the severity, so a reclassification — which recomputes the clocks — never
    makes a breach notified under the old level due again (issue #11: no second breach notice).
    """
    due = [
        ClockNotice(clock=m.clock, kind=m.kind, at=m.at, key=m.notice_key)
        for reading in clocks.readings
        for m in reading.marks
        if m.reached and m.at is not None and m.notice_key not in sent
    ]
    return sorted(due, key=lambda n: n.at)
