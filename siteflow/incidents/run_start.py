"""Start an incident's **incident** run for a reserved report: one place for the web API and
the mail intake, so a run is named, tagged and tied to its incident the same way whoever opened it."""

from __future__ import annotations

from models.incident_run import IncidentReportIn, IncidentRun
from siteflow.db import session_scope


def start_incident_run(report: IncidentReportIn) -> str:
    """Create the run of the reserved incident and record its id (if the run's first task has
    not already); returns the flow run id. Raises what Prefect raises: the reservation stays,
    and the same report adopts it on a retry."""
    from prefect.deployments import run_deployment

    from deployments import INCIDENT

    tags = [f"incident:{report.key}", f"customer:{report.customer}", f"contract:{report.contract}"]
    run = run_deployment(
        INCIDENT,
        parameters={"report": report.model_dump(mode="json")},
        timeout=0,
        flow_run_name=report.key,
        tags=tags,
    )
    run_id = str(getattr(run, "id", ""))
    with session_scope() as session:
        row = session.get(IncidentRun, report.key)
        if row is not None and row.flow_run_id is None:
            row.flow_run_id = run_id
    return run_id
