"""The incident run's clocks in the Prefect UI: a markdown artifact, published again on every
event (INC-4). A keyed artifact keeps its history, so the run's *Artifacts* tab shows the
latest table and every earlier one. Called by the flow's tasks and by the web API after it
records a field event — the run is suspended then, so no task of its own could do it."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from uuid import UUID

from siteflow.db import read_scope
from siteflow.incidents.views import clocks_markdown, incident_view

log = logging.getLogger(__name__)


def artifact_key(key: str) -> str:
    """Artifact keys are lower-case letters, digits and dashes (docs/architecture.md)."""
    return f"incident-clocks-{key.lower()}"


def publish_clocks(key: str) -> bool:
    """Publish the clocks of `key` on its run; False when it has no run yet (or Prefect is away:
    the table is a view, the next event or the flow publishes it again)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import ArtifactCreate

    with read_scope() as session:
        view = incident_view(session, key=key, now=datetime.now(UTC))
    if view.flow_run_id is None:
        return False
    try:
        with get_client(sync_client=True) as client:
            client.create_artifact(
                ArtifactCreate(
                    key=artifact_key(key),
                    type="markdown",
                    data=clocks_markdown(view),
                    description=f"SLA clocks of {key} (INC-4)",
                    flow_run_id=UUID(view.flow_run_id),
                )
            )
    except Exception as exc:  # a view: never let Prefect trouble refuse a recorded event
        log.warning("could not publish the clocks of %s: %s", key, exc)
        return False
    return True
