"""What a PM states when planning a version upgrade (PROCESS.md §2, UPG-1 … UPG-11).

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

from pydantic import Field, field_validator, model_validator

from models.project_input import ContactIn, Role, Strict, known_zone
from models.runbook import Runbook


class DriverKind(enum.StrEnum):
    SIMULATOR = "simulator"
    SSH = "ssh"


class SimulationIn(Strict):
    """Behaviour of a simulated element: durations and injected faults (tests and the demo)."""

    step_seconds: float = Field(default=0.2, ge=0, description="How long each command takes")
    reboot_seconds: float = Field(default=0.5, ge=0, description="How long a reboot takes (slow reboot)")
    fail_steps: list[str] = Field(default_factory=list, description="Step ids that fail")
    fail_tests: list[str] = Field(default_factory=list, description="Test ids whose result is wrong")
    hang_steps: list[str] = Field(default_factory=list, description="Step ids that never finish")
    rollback_fails: bool = False
    unreachable: bool = False
    corrupt_backup: bool = Field(default=False, description="The backup's checksum does not verify")


class ElementIn(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", description="Element name, unique")
    site: str = Field(min_length=1)
    model: str = Field(min_length=1, description="Element type; must match the runbook's")
    hardware_version: str = Field(min_length=1)
    software_version: str = Field(min_length=1, description="Current software version as planned")
    address: str = Field(min_length=1, description="Management address, host or host:port")
    driver: DriverKind = DriverKind.SIMULATOR
    simulation: SimulationIn = Field(default_factory=SimulationIn)


class OperatorIn(Strict):
    name: str = Field(min_length=1)
    email: str
    qualifications: list[str] = Field(default_factory=list, description="Certificates held (UPG-2)")

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.strip().lower()


def local_to_utc(day: date, at: time, zone: str) -> datetime:
    """A local wall-clock time as UTC; in a DST gap or overlap, the later instant.

    A deadline fires late rather than early (DESIGN.md): 02:30 on a spring-forward night
    does not exist and 01:30 on a fall-back night exists twice — both resolve to the later.
    """
    tz = ZoneInfo(zone)
    candidates = [datetime.combine(day, at, tzinfo=tz).replace(fold=f).astimezone(UTC) for f in (0, 1)]
    return max(candidates)


class WindowIn(Strict):
    """The maintenance window, in the site's local time."""

    date: dt.date = Field(description="Local date on which the window starts")
    start: time = Field(default=time(0, 30), description="Local start time")
    deadline: time = Field(
        default=time(4, 0), description="Local decision deadline (UPG-8); the next day if before start"
    )
    timezone: str = Field(default="Asia/Shanghai", description="IANA time zone of the site")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return known_zone(value)

    @property
    def starts_at(self) -> datetime:
        return local_to_utc(self.date, self.start, self.timezone)

    @property
    def deadline_at(self) -> datetime:
        day = self.date if self.deadline > self.start else self.date + timedelta(days=1)
        return local_to_utc(day, self.deadline, self.timezone)


class UpgradePlanIn(Strict):
    """Everything a PM states when planning one upgrade window (issue #3)."""

    id: str = Field(
        pattern=r"^[A-Z0-9][A-Z0-9-]{2,39}$",
        description="Window id: capitals, digits and dashes, e.g. UPG-2026-1127-GZ",
    )
    title: str = Field(min_length=1, max_length=200)
    target_version: str = Field(min_length=1)
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
        if self.window.deadline_at <= self.window.starts_at:
            raise ValueError("the window's deadline must come after its start")
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
