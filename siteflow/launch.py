"""Start runs on the served deployments: projects (refusing duplicates up front) and windows."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime

from sqlalchemy import select

from models.project import Project
from models.project_input import ProjectIn
from models.upgrade import UpgradeWindow, WindowState
from siteflow import audit_chain, invites
from siteflow.db import session_scope


class LaunchError(RuntimeError):
    pass


def start_project(form: ProjectIn) -> str:
    """Reserve the project code, then create the run; a duplicate code is refused at once."""
    from prefect.deployments import run_deployment

    from deployments import ENGINEERING_PROJECT
    from tasks.run_labels import project_tags

    with session_scope() as session:
        existing = session.get(Project, form.code)
        if existing is not None:
            raise LaunchError(
                f"project code {form.code} already exists (state {existing.state}); choose another code"
            )
        session.add(Project.from_form(form, None))
    try:
        run = run_deployment(
            ENGINEERING_PROJECT,
            parameters={"project": form.model_dump(mode="json")},
            timeout=0,
            flow_run_name=form.code,
            tags=project_tags(form.code, form.customer),
        )
    except Exception as exc:
        with session_scope() as session:
            reserved = session.get(Project, form.code)
            if reserved is not None and reserved.flow_run_id is None:
                session.delete(reserved)
        raise LaunchError(
            f"could not start the run on Prefect ({exc}); is siteflow running? start it with `siteflow up`"
        ) from None
    assert not inspect.isawaitable(run)  # called from sync code
    return str(run.id)  # the run's first task adopts the reservation (register-project)


def start_due_windows(until: datetime | None, only: str | None = None) -> list[str]:
    """Start one upgrade-window run per booked window opening before `until` (idempotent).

    The window id is the run's idempotency key, so two nightly runs (or two schedulers)
    start one run per window. A window whose deadline has passed unrun is cancelled.
    """
    from prefect.deployments import run_deployment

    from deployments import UPGRADE_WINDOW
    from tasks.run_labels import window_tags

    now = datetime.now(UTC)
    with session_scope() as session:
        query = select(UpgradeWindow).where(UpgradeWindow.state == WindowState.PLANNED.value)
        if until is not None:
            query = query.where(UpgradeWindow.starts_at <= until)
        if only is not None:
            query = query.where(UpgradeWindow.id == only)
        due = list(session.execute(query).scalars())
        for window in due:
            if window.deadline <= now:
                window.state = WindowState.CANCELLED.value
                audit_chain.append(
                    session,
                    window.id,
                    "window.cancelled",
                    "system:siteflow",
                    {"reason": "deadline passed unrun"},
                )
                invites.cancel(
                    session, window.id, "upgrade-window", "the window's deadline passed before it ran"
                )
        ids = [w.id for w in due if w.state == WindowState.PLANNED.value]
    started = []
    for window_id in ids:
        run = run_deployment(
            UPGRADE_WINDOW,
            parameters={"window_id": window_id},
            timeout=0,
            idempotency_key=f"upgrade-window:{window_id}",
            flow_run_name=window_id,
            tags=window_tags(window_id),
        )
        assert not inspect.isawaitable(run)
        started.append(window_id)
    return started
