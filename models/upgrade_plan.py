"""What a PM states when planning a version upgrade (docs/process.md §2, UPG-1 … UPG-11).

One typed model backs the Prefect UI form of the **version-upgrade** deployment and the YAML
file of `siteflow upgrade plan FILE`. Timing is given the way people on site say it — a
local date, a start and a decision deadline (04:00 by default) in the site's IANA zone — and
converted to UTC here, late rather than early when a local time falls into a DST change.
"""

from __future__ import annotations

import datetime as dt
import enum
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Self
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from models.project_input import ContactIn, Role, Strict, known_zone
from models.runbook import Runbook
from models.text_kinds import ElementName, Email, Label, Name, StepId, WindowId


class DriverKind(enum.StrEnum):
    SIMULATOR = "simulator"
    SSH = "ssh"


class SimulationIn(Strict):
    """Behaviour of a simulated element: durations and injected faults (tests and the demo)."""

    step_seconds: float = Field(default=0.2, ge=0, description="How long each command takes")
    reboot_seconds: float = Field(default=0.5, ge=0, description="How long a reboot takes (slow reboot)")
    fail_steps: list[StepId] = Field(default_factory=list, description="Step ids that fail")
    fail_tests: list[StepId] = Field(default_factory=list, description="Test ids whose result is wrong")
    hang_steps: list[StepId] = Field(default_factory=list, description="Step ids that never finish")
    rollback_fails: bool = False
    unreachable: bool = False
    corrupt_backup: bool = Field(default=False, description="The backup's checksum does not verify")


class ElementIn(Strict):
    name: ElementName = Field(description="Element name, unique")
    site: Name
    model: Label = Field(description="Element type; must match the runbook's")
    hardware_version: Label
    software_version: Label = Field(description="Current software version as planned")
    address: Label = Field(description="Management address, host or host:port")
    driver: DriverKind = DriverKind.SIMULATOR
    simulation: SimulationIn = Field(default_factory=SimulationIn)


class OperatorIn(Strict):
    name: Name
    email: Email
    qualifications: list[Label] = Field(default_factory=list, description="Certificates held (UPG-2)")

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.strip().lower()


def local_to_utc(day: date, at: time, zone: str) -> datetime:
    """A local wall-clock time as UTC; in a DST gap or overlap, the later instant.

    A deadline fires late rather than early (docs/architecture.md): 02:30 on a spring-forward night
    does not exist and 01:30 on a fall-back night exists twice — both resolve to the later.
    """
    tz = ZoneInfo(zone)
    candidates = [datetime.combine(day, at, tzinfo=tz).replace(fold=f).astimezone(UTC) for f in (0, 1)]
    return max(candidates)


def local_and_utc(instant: datetime, zone: str) -> str:
    """An instant on the site's clock with its zone, and in UTC: both, so nobody converts
    (written by :mod:`siteflow.site_time`, like every time a person reads)."""
    from siteflow.site_time import booked_time

    return booked_time(instant, zone)


class Ambiguity(enum.StrEnum):
    """How a local wall-clock time maps to instants on its day (DST changes)."""

    NONE = "none"  # exactly one instant
    GAP = "gap"  # no instant: the clocks jump forward over it (spring-forward night)
    OVERLAP = "overlap"  # two instants: the clocks fall back over it (fall-back night)


class LocalInstant(BaseModel):
    """A local time as booked: the UTC instant it became and, after a DST change, a note saying
    so — a PM who typed 02:30 on a spring-forward night must be told the deadline is 03:30."""

    model_config = ConfigDict(frozen=True)

    utc: datetime = Field(description="The instant, in UTC (the later one in a gap or overlap)")
    local: datetime = Field(description="The same instant on the site's clock")
    zone: str
    ambiguity: Ambiguity
    note: str = Field(default="", description="What the local time became, when it was ambiguous")

    @property
    def text(self) -> str:
        """Local date-time with zone and the UTC instant, e.g. '2026-12-03 04:00 CST
        (Asia/Shanghai) = 2026-12-02 20:00 UTC': both, so nobody converts in their head."""
        return local_and_utc(self.utc, self.zone)


def _transition(zone: ZoneInfo, before: datetime, after: datetime) -> datetime:
    """The UTC instant (to the second) between two instants where the zone's offset changes;
    zoneinfo does not expose its transitions, so it is found by halving the interval."""
    lo, hi = before, after
    offset = lo.astimezone(zone).utcoffset()
    while (hi - lo) > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(zone).utcoffset() == offset:
            lo = mid
        else:
            hi = mid
    return hi.replace(microsecond=0)


def describe_local_instant(day: date, at: time, zone: str, what: str = "the time") -> LocalInstant:
    """`local_to_utc` with what it did said aloud: a time in a DST gap or overlap resolves to
    the later instant (late rather than early) and the note names it in local time and UTC."""
    tz = ZoneInfo(zone)
    utc = local_to_utc(day, at, zone)
    local = utc.astimezone(tz)
    first, second = (datetime.combine(day, at, tzinfo=tz).replace(fold=f) for f in (0, 1))
    if first.utcoffset() == second.utcoffset():
        return LocalInstant(utc=utc, local=local, zone=zone, ambiguity=Ambiguity.NONE)
    earliest = min(first.astimezone(UTC), second.astimezone(UTC))
    change = _transition(tz, earliest, utc)
    old_clock = (change - timedelta(seconds=1)).astimezone(tz) + timedelta(seconds=1)
    jump = f"{old_clock.replace(tzinfo=None):%H:%M} → {change.astimezone(tz):%H:%M}"
    named = f"{what} {at:%H:%M} on {day}"
    in_utc = f"{local:%H:%M} {local:%Z} = {utc:%H:%M} UTC"
    if local.replace(tzinfo=None) != datetime.combine(day, at):
        note = f"{named} does not exist in {zone} (clocks jump {jump}): it is {in_utc}"
        return LocalInstant(utc=utc, local=local, zone=zone, ambiguity=Ambiguity.GAP, note=note)
    note = f"{named} happens twice in {zone} (clocks fall back {jump}): the later one, {in_utc}, is used"
    return LocalInstant(utc=utc, local=local, zone=zone, ambiguity=Ambiguity.OVERLAP, note=note)


class DeadlineDay(enum.StrEnum):
    """Which local day the deadline falls on: stated, never guessed from the clock times."""

    SAME = "same"
    NEXT = "next"


def _window_error(message: str) -> PydanticCustomError:
    """A refusal worded for the PM (CLI and Prefect UI form), without pydantic's 'Value error,'."""
    return PydanticCustomError("window", message)


class WindowIn(Strict):
    """The maintenance window, in the site's local time."""

    date: dt.date = Field(description="Local date on which the window starts")
    start: time = Field(default=time(0, 30), description="Local start time")
    deadline: time = Field(default=time(4, 0), description="Local decision deadline (UPG-8)")
    deadline_day: DeadlineDay | None = Field(
        default=None,
        description="The local day of the deadline: 'same' = the start's date, 'next' = the day after "
        "(a window across midnight, e.g. 23:00 → 04:00). Empty = same day; the deadline must then "
        "come after the start.",
    )
    timezone: Label = Field(default="Asia/Shanghai", description="IANA time zone of the site")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return known_zone(value)

    @model_validator(mode="after")
    def _deadline_after_start(self) -> Self:
        """UPG-8: a deadline before the start on the same day is refused rather than silently
        moved to the next day (a 23-hour window nobody asked for)."""
        if self.deadline_day is not DeadlineDay.NEXT and self.deadline <= self.start:
            stated = " (deadline_day: same)" if self.deadline_day is DeadlineDay.SAME else ""
            raise _window_error(
                f"the deadline {self.deadline:%H:%M} is not after the start {self.start:%H:%M} on "
                f"{self.date}{stated}: set deadline_day: next for {self.deadline:%H:%M} on "
                f"{self.date + timedelta(days=1)}, or move the deadline"
            )
        if self.deadline_at <= self.starts_at:  # a start in a DST gap moves an hour later
            why = "; ".join(self.notes())
            raise _window_error(
                f"the deadline {self.deadline_local.text} is not after the start {self.start_local.text} "
                f"({why}): move the deadline later"
            )
        return self

    @property
    def deadline_date(self) -> dt.date:
        """The deadline's local day, as stated by deadline_day (the start's day when unset)."""
        return self.date + timedelta(days=1) if self.deadline_day is DeadlineDay.NEXT else self.date

    @property
    def starts_at(self) -> datetime:
        return local_to_utc(self.date, self.start, self.timezone)

    @property
    def deadline_at(self) -> datetime:
        return local_to_utc(self.deadline_date, self.deadline, self.timezone)

    @property
    def start_local(self) -> LocalInstant:
        return describe_local_instant(self.date, self.start, self.timezone, "the start")

    @property
    def deadline_local(self) -> LocalInstant:
        return describe_local_instant(self.deadline_date, self.deadline, self.timezone, "the deadline")

    def notes(self) -> list[str]:
        """What the PM must be told about the window's times (DST gaps and overlaps)."""
        return [i.note for i in (self.start_local, self.deadline_local) if i.note]


def legacy_deadline_day(params: dict[str, Any]) -> dict[str, Any]:
    """A plan stored before deadline_day existed meant the next day when its deadline was not
    after its start; say so explicitly, so booked windows still load."""
    window = params.get("window")
    if not isinstance(window, dict) or "deadline_day" in window:
        return params
    start, deadline = (
        time.fromisoformat(str(window.get(k, d))) for k, d in (("start", "00:30"), ("deadline", "04:00"))
    )
    day = DeadlineDay.NEXT if deadline <= start else None
    return {**params, "window": {**window, "deadline_day": day}}


class Booking(BaseModel):
    """A booked window as the PM is told it: both instants in local time with zone and in UTC,
    and what a DST change made of them (register_window's result)."""

    model_config = ConfigDict(frozen=True)

    window_id: str
    replanned: bool = Field(description="An existing booking of the same id was replaced")
    starts_at: datetime = Field(description="Start, UTC")
    deadline_at: datetime = Field(description="Decision deadline (UPG-8), UTC")
    start_local: str = Field(description="Start as local date-time, zone and UTC")
    deadline_local: str = Field(description="Deadline as local date-time, zone and UTC")
    notes: list[str] = Field(default_factory=list, description="DST gaps and overlaps resolved")

    def summary(self) -> str:
        """One line for the CLI and the flow log: the deadline always in local time and UTC."""
        verb = "replanned" if self.replanned else "booked"
        text = f"window {self.window_id} {verb}: start {self.start_local}, deadline {self.deadline_local}"
        return text + "".join(f"; note: {n}" for n in self.notes)


class UpgradePlanIn(Strict):
    """Everything a PM states when planning one upgrade window (issue #3)."""

    id: WindowId = Field(description="Window id: capitals, digits and dashes, e.g. UPG-2026-1127-GZ")
    title: Name
    target_version: Label
    elements: list[ElementIn] = Field(min_length=1)
    operators: list[OperatorIn] = Field(min_length=1)
    contacts: list[ContactIn] = Field(
        min_length=1, description="The upgrade PM (role pm) decides; the upgrade guide is told of surprises"
    )
    window: WindowIn
    max_parallel: int = Field(default=1, ge=1, le=1000, description="Elements upgraded at the same time")
    runbook: Runbook

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        names = [e.name for e in self.elements]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"element names must be unique; repeated: {', '.join(dupes)}")
        emails = [c.email for c in self.contacts]
        if len(set(emails)) != len(emails):
            raise ValueError("each contact must have a different email")
        if not self.contacts_with(Role.PM):
            raise ValueError("the plan needs an upgrade PM (a contact with role pm) to decide go/no-go")
        wrong = [e.name for e in self.elements if e.model != self.runbook.element_model]
        if wrong:
            raise ValueError(
                f"elements {', '.join(wrong)} are not of the runbook's type {self.runbook.element_model}"
            )
        return self

    def contact(self, email: str) -> ContactIn | None:
        wanted = email.strip().lower()
        return next((c for c in self.contacts if c.email == wanted), None)

    def contacts_with(self, *roles: Role) -> list[ContactIn]:
        return [c for c in self.contacts if c.role in roles]

    def element(self, name: str) -> ElementIn:
        return next(e for e in self.elements if e.name == name)


def resolve_runbook(raw: dict[str, Any], base: Path) -> dict[str, Any]:
    """A plan file may name its runbook file (relative to the plan) instead of inlining it."""
    runbook = raw.get("runbook")
    if isinstance(runbook, str):
        import yaml  # only plan files need it, not every importer of the models

        path = (base / runbook).resolve()
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"cannot read the runbook {path}: {exc}") from exc
        return {**raw, "runbook": loaded}
    return raw


def night_of(text: str, zone: str, now: datetime) -> date:
    """The local start date a PM names for a plan's window: ``YYYY-MM-DD``, ``today`` or
    ``tomorrow`` on the site's clock (a 00:30 window "tomorrow" is tonight after midnight).

    A plan file is reusable: the same elements and runbook are often booked for another night
    after a postponement, so the date can be given when booking instead of editing the file."""
    today = now.astimezone(ZoneInfo(known_zone(zone))).date()
    words = {"today": today, "tomorrow": today + timedelta(days=1)}
    if text.strip().lower() in words:
        return words[text.strip().lower()]
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"--date {text!r} is not a date: give YYYY-MM-DD (the window's local start date), "
            "'today' or 'tomorrow'"
        ) from None


def booked_for(raw: dict[str, Any], night: str | None, now: datetime) -> dict[str, Any]:
    """The raw plan with its window moved to the named local date (unchanged without one)."""
    if night is None:
        return raw
    window = raw.get("window")
    if not isinstance(window, dict):
        raise ValueError("the plan has no window mapping to move to another date")
    zone = str(window.get("timezone") or WindowIn.model_fields["timezone"].default)
    return {**raw, "window": {**window, "date": night_of(night, zone, now).isoformat()}}
