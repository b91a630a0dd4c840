"""Label a flow run in Prefect so its run list says which project or window each run is."""

from __future__ import annotations

from uuid import UUID

from prefect.client.orchestration import get_client

from tasks import side_effect


def project_tags(code: str, customer: str) -> list[str]:
    return [f"project:{code}", f"customer:{customer}"]


def window_tags(window_id: str) -> list[str]:
    return [f"window:{window_id}"]


@side_effect(name="tag-run")
def tag_run(flow_run_id: str, tags: list[str]) -> list[str]:
    """Add the tags the run lacks (a run started from the Prefect UI's form has none of ours;
    one started by siteflow got them at creation). Returns the run's tags."""
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(UUID(flow_run_id))
        missing = [t for t in tags if t not in run.tags]
        if missing:
            client.update_flow_run(UUID(flow_run_id), tags=[*run.tags, *missing])
        return [*run.tags, *missing]
