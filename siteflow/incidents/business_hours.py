"""Working time on a contract's calendar: 24×7 or weekly business hours with holidays (INC-4).

A critical incident's clocks run around the clock; a major or minor one's run only in the
contract's business hours, on its own clock (IANA zone), so a Friday-evening report waits for
Monday morning — or for Tuesday after a public holiday. The local hours of each day are turned
into UTC intervals day by day, so a daylight-saving change moves them correctly (a day of
08:00–18:00 is ten hours on either side of the change). A local time that a change skips or
repeats is taken as the later instant (:func:`models.upgrade_plan.local_to_utc`). No I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from models.incident_contract import ContractIn, Severity, Weekday
from models.upgrade_plan import local_to_utc

SEARCH_DAYS = 3660
"""How far ahead a due time is looked for before giving up (ten years of holidays)."""


class CalendarKind(enum.StrEnum):
    AROUND_THE_CLOCK = "24x7"
    BUSINESS_HOURS = "business-hours"


@dataclass(frozen=True)
class WorkingCalendar:
    """When a clock may run. ``hours`` is empty for 24×7."""

    kind: CalendarKind
    zone: str = "UTC"
    weekly: tuple[tuple[int, tuple[tuple[time, time], ...]], ...] = ()  # weekday (Monday 0) → stretches
    closed: tuple[tuple[date, date], ...] = ()  # holidays: first and last day, inclusive

    def intervals(self, start: datetime, end: datetime | None) -> Iterator[tuple[datetime, datetime]]:
        """The working intervals between ``start`` and ``end`` (open-ended when None), clipped,
        in order, as UTC instants."""
        start = start.astimezone(UTC)
        if self.kind is CalendarKind.AROUND_THE_CLOCK:
            yield (start, end.astimezone(UTC) if end is not None else datetime.max.replace(tzinfo=UTC))
            return
        tz = ZoneInfo(self.zone)
        day = start.astimezone(tz).date() - timedelta(days=1)
        stop = end.astimezone(UTC) if end is not None else None
        last_day = day + timedelta(days=SEARCH_DAYS)
        while day <= last_day:
            for begin, finish in self._day(day):
                if stop is not None and begin >= stop:
                    return
                if finish <= start:
                    continue
                yield (max(begin, start), min(finish, stop) if stop is not None else finish)
            day += timedelta(days=1)
        if stop is None:
            raise ValueError(f"no business hours in the {SEARCH_DAYS} days after {start.isoformat()}")

    def _day(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        return _day_intervals(self.zone, self.weekly, self.closed, day)

    def working_time(self, start: datetime, end: datetime) -> timedelta:
        """Working time between two instants (zero when ``end`` is not after ``start``)."""
        if end <= start:
            return timedelta()
        return sum((b - a for a, b in self.intervals(start, end)), timedelta())

    def add(self, start: datetime, amount: timedelta) -> datetime:
        """The instant at which ``amount`` of working time after ``start`` has passed."""
        left = amount
        for begin, end in self.intervals(start, None):
            if end - begin >= left:
                return begin + left
            left -= end - begin
        raise AssertionError("unreachable: an open-ended search either finds the time or raises")


@lru_cache(maxsize=100_000)
def _day_intervals(
    zone: str,
    weekly: tuple[tuple[int, tuple[tuple[time, time], ...]], ...],
    closed: tuple[tuple[date, date], ...],
    day: date,
) -> tuple[tuple[datetime, datetime], ...]:
    """One local day's working intervals as UTC instants. Kept: a month's report computes the
    clocks of every incident on the same few calendars, day by day (100,000 incidents:
    ``benchmarks/incident_report.py``), and turning local hours into UTC is the costly part."""
    if any(first <= day <= last for first, last in closed):
        return ()
    out: list[tuple[datetime, datetime]] = []
    for local_begin, local_end in dict(weekly).get(day.weekday(), ()):
        begin = local_to_utc(day, local_begin, zone)
        end = local_to_utc(day, local_end, zone)
        if end > begin:
            out.append((begin, end))
    return tuple(out)


def around_the_clock() -> WorkingCalendar:
    return WorkingCalendar(CalendarKind.AROUND_THE_CLOCK)


def business_hours(contract: ContractIn) -> WorkingCalendar:
    """The contract's weekly hours and holidays on its own clock."""
    weekly: dict[int, list[tuple[time, time]]] = {}
    for stretch in contract.business_hours:
        weekly.setdefault(Weekday(stretch.day).number, []).append((stretch.start, stretch.end))
    return WorkingCalendar(
        CalendarKind.BUSINESS_HOURS,
        zone=contract.timezone,
        weekly=tuple((d, tuple(sorted(s))) for d, s in sorted(weekly.items())),
        closed=tuple((h.start, h.end or h.start) for h in contract.holidays),
    )


def calendar_for(severity: Severity, contract: ContractIn) -> WorkingCalendar:
    """INC-4: critical runs 24×7; major and minor on the contract's business hours."""
    return around_the_clock() if severity is Severity.CRITICAL else business_hours(contract)
