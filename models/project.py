"""An engineering project (docs/process.md §1) as stored: one row per project code."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, utcnow
from models.project_input import ProjectIn


class ProjectState(enum.StrEnum):
    RUNNING = "running"
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"


class Project(Base):
    __tablename__ = "projects"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer: Mapped[str] = mapped_column(String(200))
    size: Mapped[str] = mapped_column(String(16))
    timezone: Mapped[str] = mapped_column(String(64))
    phase: Mapped[str] = mapped_column(String(32), default="survey")
    state: Mapped[str] = mapped_column(String(16), default=ProjectState.RUNNING.value)
    flow_run_id: Mapped[str | None] = mapped_column(String(36), unique=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    @classmethod
    def from_form(cls, form: ProjectIn, flow_run_id: str | None) -> Project:
        """A new project row at the start of the survey, holding the whole form."""
        return cls(
            code=form.code,
            customer=form.customer,
            size=form.size.value,
            timezone=form.timezone,
            phase="survey",
            state=ProjectState.RUNNING.value,
            flow_run_id=flow_run_id,
            params=form.model_dump(mode="json"),
        )
