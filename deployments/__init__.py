"""Every deployment siteflow serves: the one place that knows "when" and "where".

Entrypoints are module paths (``flows.engineering_project:run_engineering_project``), never
file paths, so the generic top-level package names cannot be shadowed by a working directory.
"""

from __future__ import annotations

from prefect.deployments.runner import RunnerDeployment
from prefect.types.entrypoint import EntrypointType

ENGINEERING_PROJECT = "engineering-project/engineering-project"


def engineering_project() -> RunnerDeployment:
    from flows.engineering_project import run_engineering_project

    deployment = run_engineering_project.to_deployment(
        name="engineering-project",
        description=(
            "Run one engineering project (PROCESS.md §1): survey → installation → commissioning "
            "→ acceptance and handover. Fill the form; each gate then waits as a paused run."
        ),
        tags=["engineering"],
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    assert isinstance(deployment, RunnerDeployment)  # sync call: not a coroutine
    return deployment


def all_deployments() -> list[RunnerDeployment]:
    return [engineering_project()]
