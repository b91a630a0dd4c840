"""Every deployment siteflow serves: the one place that knows "when" and "where".

Entrypoints are module paths (``flows.engineering_project:run_engineering_project``), never
file paths, so the generic top-level package names cannot be shadowed by a working directory.
"""

from __future__ import annotations

from prefect.deployments.runner import RunnerDeployment
from prefect.types.entrypoint import EntrypointType

ENGINEERING_PROJECT = "engineering-project/engineering-project"
VERSION_UPGRADE = "version-upgrade/version-upgrade"
NIGHTLY_UPGRADE_WINDOW = "nightly-upgrade-window/nightly-upgrade-window"
UPGRADE_WINDOW = "upgrade-window/upgrade-window"
ALL = [ENGINEERING_PROJECT, VERSION_UPGRADE, NIGHTLY_UPGRADE_WINDOW, UPGRADE_WINDOW]


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


def _runner(deployment: object) -> RunnerDeployment:
    assert isinstance(deployment, RunnerDeployment)  # sync call: not a coroutine
    return deployment


def version_upgrade() -> list[RunnerDeployment]:
    """PROCESS.md §2: plan (version-upgrade), start nightly (cron in the site's zone), run."""
    from prefect.schedules import Cron

    from flows.version_upgrade import nightly_upgrade_window, plan_version_upgrade, run_upgrade_window
    from siteflow.settings import get_settings

    settings = get_settings()
    module = EntrypointType.MODULE_PATH
    return [
        _runner(
            plan_version_upgrade.to_deployment(
                name="version-upgrade",
                description="Plan a software upgrade for a nightly window (UPG-1 … UPG-11): fill the "
                "typed form; overlapping or blackout-date plans are refused.",
                tags=["upgrade"],
                entrypoint_type=module,
            )
        ),
        _runner(
            nightly_upgrade_window.to_deployment(
                name="nightly-upgrade-window",
                description="Starts every upgrade window booked for tonight.",
                tags=["upgrade"],
                entrypoint_type=module,
                schedule=Cron(settings.upgrade_cron, timezone=settings.upgrade_timezone),
            )
        ),
        _runner(
            run_upgrade_window.to_deployment(
                name="upgrade-window",
                description="One upgrade window: pre-checks, go/no-go, steps, tests, decision, rollback.",
                tags=["upgrade"],
                entrypoint_type=module,
            )
        ),
    ]


def all_deployments() -> list[RunnerDeployment]:
    return [engineering_project(), *version_upgrade()]
