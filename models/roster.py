"""Who may decide a subject's gates: a project's contacts or an upgrade window's.

Gates belong to a subject — a project code or an upgrade window id — and the decision path
asks the subject's own form who its contacts are and what role each holds.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from models.project import Project
from models.project_input import ProjectIn
from models.upgrade import UpgradeWindow
from models.upgrade_plan import UpgradePlanIn, legacy_deadline_day

Roster = ProjectIn | UpgradePlanIn


def window_plan(window: UpgradeWindow) -> UpgradePlanIn:
    """A window's plan, parsed once per version of the row: a plan of 1,000 elements takes
    ~20 ms to validate, and every gate, decision and element task asks for it. The row's
    ``params`` (deferred) is read from the database only when this process has not parsed
    that version yet — decoding it took milliseconds inside every decision's transaction."""
    return _cached(window.id, window.created_at, window.updated_at, lambda: window.params)


def _cached(
    window_id: str, created_at: datetime, updated_at: datetime, params: Callable[[], dict[str, Any]]
) -> UpgradePlanIn:
    key = (window_id, created_at, updated_at)
    plan = _PLANS.get(key)
    if plan is None:
        plan = UpgradePlanIn.model_validate(legacy_deadline_day(params()))  # rows booked before it
        if len(_PLANS) > 64:
            _PLANS.clear()
        _PLANS[key] = plan
    return plan


_PLANS: dict[tuple[str, datetime, datetime], UpgradePlanIn] = {}


def roster_of(session: Session, subject: str) -> Roster | None:
    project = session.get(Project, subject)
    if project is not None:
        return ProjectIn.model_validate(project.params)
    window = session.get(UpgradeWindow, subject)
    if window is not None:
        return window_plan(window)
    return None
