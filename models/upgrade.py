"""Upgrade windows, their elements and the step journal (UPG-1 … UPG-11).

The journal is what makes "every step exactly once" (UPG-5) hold across retries and
restarts: a row is written *before* a command runs (result ``running``) and completed after.
A re-run that finds a completed row skips the step; one that finds a ``running`` row knows
the step was interrupted and reconciles it by reading the element, never by running it
blindly again. The unique key makes two workers racing on one step write one row.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import JSON, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, new_id, utcnow


class WindowState(enum.StrEnum):
    PLANNED = "planned"
    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class ElementPhase(enum.StrEnum):
    WAITING = "waiting"
    PRECHECKS = "pre-checks"
    GO_NO_GO = "go/no-go"
    UPGRADING = "upgrading"
    TESTING = "testing"
    DECIDING = "deciding"
    ROLLING_BACK = "rolling-back"
    DONE = "done"


class ElementOutcome(enum.StrEnum):
    COMMITTED = "committed"
    ROLLED_BACK = "rolled-back"
    NOT_STARTED = "not-started"
    ROLLBACK_FAILED = "rollback-failed"


class Stage(enum.StrEnum):
    PRECHECK = "pre-check"
    UPGRADE = "upgrade"
    TEST = "test"
    ROLLBACK = "rollback"
    ROLLBACK_TEST = "rollback-test"


class StepResult(enum.StrEnum):
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    RECONCILED = "reconciled"  # interrupted, found applied on the element


class UpgradeStatus(enum.StrEnum):
    """Where one element's upgrade task left it (UPG-4 … UPG-8)."""

    AWAIT_DECISION = "await-decision"  # upgraded and tested: the PM decides (or the deadline)
    STEP_FAILED = "step-failed"  # a step failed: rolled back without asking (UPG-10)
    NOT_STARTED = "not-started"  # too close to the deadline to start (UPG-8)


class UpgradeResult(BaseModel):
    """What the window flow needs from one element's upgrade to open its decision gate."""

    element: str
    status: UpgradeStatus
    note: str = ""
    criteria_met: bool = False
    tests: dict[str, str] = Field(default_factory=dict, description="Test id → result")
    unexpected: list[str] = Field(default_factory=list, description="Tests whose result was not expected")


class UpgradeWindow(Base):
    __tablename__ = "upgrade_windows"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    local_date: Mapped[date] = mapped_column(Date, index=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    state: Mapped[str] = mapped_column(String(16), default=WindowState.PLANNED.value)
    flow_run_id: Mapped[str | None] = mapped_column(String(36), unique=True)
    # The plan, up to megabytes for a night of 1,000 elements: loaded on first access only —
    # the plan is parsed once per version of the row (models.roster.window_plan).
    params: Mapped[dict[str, Any]] = mapped_column(JSON, deferred=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class UpgradeElement(Base):
    __tablename__ = "upgrade_elements"
    __table_args__ = (UniqueConstraint("window_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    window_id: Mapped[str] = mapped_column(ForeignKey("upgrade_windows.id"), index=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    phase: Mapped[str] = mapped_column(String(16), default=ElementPhase.WAITING.value)
    outcome: Mapped[str | None] = mapped_column(String(24))
    decided_by: Mapped[str | None] = mapped_column(String(600))
    decision_door: Mapped[str | None] = mapped_column(String(16))
    version_before: Mapped[str | None] = mapped_column(String(64))
    version_after: Mapped[str | None] = mapped_column(String(64))
    snapshot_before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    snapshot_after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    differences: Mapped[list[str] | None] = mapped_column(JSON)
    note: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class JournalEntry(Base):
    __tablename__ = "upgrade_journal"
    __table_args__ = (UniqueConstraint("window_id", "element", "stage", "item", "attempt"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    window_id: Mapped[str] = mapped_column(ForeignKey("upgrade_windows.id"), index=True)
    element: Mapped[str] = mapped_column(String(64))
    stage: Mapped[str] = mapped_column(String(16))
    item: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    title: Mapped[str] = mapped_column(String(300))
    operator: Mapped[str] = mapped_column(String(200))
    command: Mapped[str] = mapped_column(Text, default="")
    expected: Mapped[str] = mapped_column(Text, default="")
    output: Mapped[str] = mapped_column(Text, default="")
    result: Mapped[str] = mapped_column(String(16), default=StepResult.RUNNING.value)
    note: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
