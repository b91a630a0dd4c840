"""Upgrade windows: planning (refusing overlaps and blackout dates), lifecycle, outcomes."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.roster import window_plan
from models.upgrade import ElementOutcome, ElementPhase, UpgradeElement, UpgradeWindow, WindowState
from models.upgrade_plan import Booking, DriverKind, UpgradePlanIn, local_and_utc
from siteflow import audit_chain, invites
from siteflow.clock import Clock, utc_now
from siteflow.db import read_scope, session_scope
from siteflow.settings import get_settings
from tasks import side_effect


class PlanRefused(ValueError):
    """A plan that cannot be accepted; the message says why and what to change."""


class BlackoutPeriod(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: date
    end: date | None = Field(default=None, description="Last day, inclusive; default: start")
    reason: str = Field(min_length=1)

    def covers(self, day: date) -> bool:
        return self.start <= day <= (self.end or self.start)


def load_blackouts(path: Path | None) -> list[BlackoutPeriod]:
    """The blackout calendar (holidays, network freezes); a broken file is an error, not empty."""
    if path is None:
        return []
    try:
        raw = yaml.safe_load(path.read_text()) or []
        return [BlackoutPeriod.model_validate(item) for item in raw]
    except (OSError, yaml.YAMLError, ValidationError, TypeError) as exc:
        raise PlanRefused(f"cannot read the blackout calendar {path}: {exc}") from exc


def least_upgrade_seconds(plan: UpgradePlanIn, simulator_scale: float) -> float:
    """The shortest time one element needs for upgrade, tests and rollback by the runbook's
    estimates, scaled for simulated elements as the deadline check of upgrade_element does."""
    need = plan.runbook.upgrade_seconds()
    return min(need * (simulator_scale if e.driver is DriverKind.SIMULATOR else 1.0) for e in plan.elements)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def check_window_time(plan: UpgradePlanIn, now: datetime, simulator_scale: float) -> None:
    """Refuse a window that cannot work at `now` (passed in, so tests drive the clock): its
    deadline has passed, or too little is left before it for even one element (UPG-8: the
    result is judged before the deadline, or no time is left for the rollback UPG-10 runs)."""
    window = plan.window
    deadline = window.deadline_local
    now_text = local_and_utc(now, window.timezone)
    if window.deadline_at <= now:
        raise PlanRefused(
            f"{plan.id}: the deadline {deadline.text} has already passed (now is {now_text}); "
            "nothing was booked: choose a later night (UPG-8), "
            "e.g. `siteflow upgrade plan FILE --date tomorrow`"
        )
    begins = max(window.starts_at, now)
    left = (window.deadline_at - begins).total_seconds()
    need = least_upgrade_seconds(plan, simulator_scale)
    if left < need:
        since = "now" if begins == now else "the start"
        raise PlanRefused(
            f"{plan.id}: only {_minutes(left)} are left from {since} to the deadline {deadline.text}, "
            f"but one element's upgrade, tests and rollback need {_minutes(need)} by the runbook's "
            "estimates (UPG-8): move the deadline later or choose another night"
        )


def register_window(plan: UpgradePlanIn, *, clock: Clock = utc_now) -> Booking:
    """Accept a plan for its night, or refuse it with the reason (issue #3); the booking says
    what the local times became in UTC, DST changes included.

    A plan may be replaced (same id) until its window starts — that is how an operator is
    replaced (UPG-2) or a date moved. `clock` is the real one except in tests.
    """
    window = plan.window
    check_window_time(plan, clock(), get_settings().simulator_time_scale)
    local_days = {window.date, window.deadline_date}
    for period in load_blackouts(get_settings().blackout_calendar):
        hit = sorted(d for d in local_days if period.covers(d))
        if hit:
            raise PlanRefused(
                f"{plan.id}: {hit[0]} is a blackout date ({period.reason}); choose another night"
            )
    names = [e.name for e in plan.elements]
    booking = Booking(
        window_id=plan.id,
        replanned=False,
        starts_at=window.starts_at,
        deadline_at=window.deadline_at,
        start_local=window.start_local.text,
        deadline_local=window.deadline_local.text,
        notes=window.notes(),
    )
    with session_scope() as session:
        existing = session.get(UpgradeWindow, plan.id)
        if existing is not None and existing.state != WindowState.PLANNED.value:
            raise PlanRefused(f"window {plan.id} is already {existing.state}; plan a new window id")
        others = session.execute(
            select(UpgradeWindow).where(
                UpgradeWindow.id != plan.id,
                UpgradeWindow.state.in_([WindowState.PLANNED.value, WindowState.RUNNING.value]),
                UpgradeWindow.starts_at < window.deadline_at,
                UpgradeWindow.deadline > window.starts_at,
            )
        ).scalars()
        for other in others:
            shared = sorted(set(names) & {e["name"] for e in other.params["elements"]})
            if shared:
                raise PlanRefused(
                    f"{plan.id} overlaps window {other.id} ({other.state}) on {', '.join(shared)}: "
                    "one element is upgraded in one window at a time"
                )
        params = plan.model_dump(mode="json")
        if existing is None:
            session.add(
                UpgradeWindow(
                    id=plan.id,
                    title=plan.title,
                    timezone=window.timezone,
                    local_date=window.date,
                    starts_at=window.starts_at,
                    deadline=window.deadline_at,
                    params=params,
                )
            )
            session.flush()
            kind = "window.planned"
        else:
            existing.title, existing.params = plan.title, params
            existing.timezone, existing.local_date = window.timezone, window.date
            existing.starts_at, existing.deadline = window.starts_at, window.deadline_at
            kind = "window.replanned"
            booking = booking.model_copy(update={"replanned": True})
        audit_chain.append(
            session, plan.id, kind, "system:siteflow", {"plan": params, "notes": booking.notes}
        )
        _invite(session, plan, booking)
    return booking


def _invite(session: Session, plan: UpgradePlanIn, booking: Booking) -> None:
    """The window as a calendar invite to operators and contacts; moved when replanned (COM-3)."""
    w = plan.window
    people = [invites.Attendee(o.name, o.email) for o in plan.operators]
    people += [
        invites.Attendee(c.name, c.email)
        for c in plan.contacts
        if c.email not in {o.email for o in plan.operators}
    ]
    invites.schedule(
        session,
        plan.id,
        "upgrade-window",
        f"版本升级窗口 / Upgrade window {plan.id}: {plan.title}",
        w.starts_at,
        w.deadline_at,
        people,
        description=(
            f"{w.date} {w.start:%H:%M}–{w.deadline:%H:%M} {w.timezone}; target {plan.target_version}; "
            f"elements: {', '.join(e.name for e in plan.elements)}. Decision deadline {w.deadline:%H:%M} "
            "(UPG-8): undecided elements are rolled back." + "".join(f" Note: {n}." for n in booking.notes)
        ),
        location="; ".join(sorted({e.site for e in plan.elements})),
    )


def load_plan(window_id: str) -> UpgradePlanIn:
    """The window's plan; a read, so it does not queue behind (or hold up) the writers."""
    with read_scope() as session:
        window = session.get(UpgradeWindow, window_id)
        if window is None:
            raise PlanRefused(f"no upgrade window {window_id!r}: list them with `siteflow upgrade list`")
        return window_plan(window)


@side_effect(name="start-window")
def start_window(window_id: str, flow_run_id: str) -> None:
    """One run per window; the elements' rows appear here."""
    with session_scope() as session:
        window = session.get(UpgradeWindow, window_id)
        assert window is not None
        if window.flow_run_id not in (None, flow_run_id):
            raise PlanRefused(f"window {window_id} already runs as flow run {window.flow_run_id}")
        if window.flow_run_id == flow_run_id:
            return
        window.flow_run_id = flow_run_id
        window.state = WindowState.RUNNING.value
        for element in window.params["elements"]:
            session.add(UpgradeElement(window_id=window_id, name=element["name"]))
        audit_chain.append(
            session, window_id, "window.started", "system:siteflow", {"flow_run_id": flow_run_id}
        )


def element_rows(window_id: str) -> dict[str, UpgradeElement]:
    with read_scope() as session:
        rows = session.execute(select(UpgradeElement).where(UpgradeElement.window_id == window_id)).scalars()
        result = {r.name: r for r in rows}
        session.expunge_all()
        return result


def set_phase(window_id: str, element: str, phase: ElementPhase, **fields: Any) -> None:
    """Move an element forward, in a transaction of its own (see :func:`move_element`)."""
    with session_scope() as session:
        move_element(session, window_id, element, phase, **fields)


def move_element(session: Session, window_id: str, element: str, phase: ElementPhase, **fields: Any) -> None:
    """Move an element forward inside the caller's transaction — the step journal writes it
    with the journal rows it goes with; outcome fields are written once and audited."""
    row = session.execute(
        select(UpgradeElement).where(UpgradeElement.window_id == window_id, UpgradeElement.name == element)
    ).scalar_one()
    order = list(ElementPhase)
    if order.index(phase) < order.index(ElementPhase(row.phase)) or row.phase == ElementPhase.DONE.value:
        return  # a re-run passes earlier stages again: an element only moves forward
    row.phase = phase.value
    for key, value in fields.items():
        setattr(row, key, value)
    if phase is ElementPhase.DONE:
        audit_chain.append(
            session,
            window_id,
            "element.done",
            row.decided_by or "system:siteflow",
            {
                "element": element,
                "outcome": row.outcome,
                "version_before": row.version_before,
                "version_after": row.version_after,
                "differences": row.differences,
                "note": row.note,
            },
        )


@side_effect(name="finish-window")
def finish_window(window_id: str) -> dict[str, str]:
    with session_scope() as session:
        window = session.get(UpgradeWindow, window_id)
        assert window is not None
        rows = session.execute(select(UpgradeElement).where(UpgradeElement.window_id == window_id)).scalars()
        outcomes = {r.name: r.outcome or ElementOutcome.NOT_STARTED.value for r in rows}
        if window.state != WindowState.COMPLETED.value:
            window.state = WindowState.COMPLETED.value
            audit_chain.append(
                session, window_id, "window.completed", "system:siteflow", {"outcomes": outcomes}
            )
        return outcomes


@side_effect(name="element-failed")
def record_element_failure(window_id: str, element: str, note: str) -> None:
    """An element whose conclusion broke off with an error: its state on the element is not
    known, so it is reported as a failed rollback that needs a person (never left running)."""
    set_phase(window_id, element, ElementPhase.DONE, outcome=ElementOutcome.ROLLBACK_FAILED.value, note=note)
