"""Start engineering-project runs on the served deployment, refusing duplicates up front."""

from __future__ import annotations

import inspect
import time

from models.project import Project
from models.project_input import ProjectIn
from siteflow.db import session_scope


class LaunchError(RuntimeError):
    pass


def start_project(form: ProjectIn) -> str:
    """Reserve the project code, then create the run; a duplicate code is refused at once."""
    from prefect.deployments import run_deployment

    from deployments import ENGINEERING_PROJECT

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


def wait_for_gate(code: str, timeout: float) -> str | None:
    from siteflow.queries import list_gates

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        gates = list_gates(code)
        if gates:
            return gates[0].key
        time.sleep(0.5)
    return None
