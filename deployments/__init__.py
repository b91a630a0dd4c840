"""Every deployment siteflow serves: the one place that knows "when" and "where".

Entrypoints are module paths (``flows.engineering_project:run_engineering_project``), never
file paths, so the generic top-level package names cannot be shadowed by a working directory.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from prefect import Flow
from prefect.deployments.runner import RunnerDeployment
from prefect.types.entrypoint import EntrypointType

ENGINEERING_PROJECT = "engineering-project/engineering-project"
VERSION_UPGRADE = "version-upgrade/version-upgrade"
NIGHTLY_UPGRADE_WINDOW = "nightly-upgrade-window/nightly-upgrade-window"
UPGRADE_WINDOW = "upgrade-window/upgrade-window"
INCIDENT = "incident/incident"
ALL = [ENGINEERING_PROJECT, VERSION_UPGRADE, NIGHTLY_UPGRADE_WINDOW, UPGRADE_WINDOW, INCIDENT]


class Served(NamedTuple):
    """A deployment with its flow object, so the runner can start runs without re-importing it."""

    flow: Flow[..., Any]
    deployment: RunnerDeployment


def _served(flow: Flow[..., Any], **options: Any) -> Served:
    deployment = flow.to_deployment(entrypoint_type=EntrypointType.MODULE_PATH, **options)
    assert isinstance(deployment, RunnerDeployment)  # sync call: not a coroutine
    return Served(flow, deployment)


def engineering_project() -> Served:
    from flows.engineering_project import run_engineering_project

    return _served(
        run_engineering_project,
        name="engineering-project",
        description=(
            "Run one engineering project (docs/process.md §1): survey → installation → commissioning "
            "→ acceptance and handover. Fill the form; each gate then waits as a paused run."
        ),
        tags=["engineering"],
    )


def version_upgrade() -> list[Served]:
    """docs/process.md §2: plan (version-upgrade), start nightly (cron in the site's zone), run."""
    from prefect.schedules import Cron

    from flows.version_upgrade import nightly_upgrade_window, plan_version_upgrade, run_upgrade_window
    from siteflow.settings import get_settings

    settings = get_settings()
    return [
        _served(
            plan_version_upgrade,
            name="version-upgrade",
            description="Plan a software upgrade for a nightly window (UPG-1 … UPG-11): fill the "
            "typed form; overlapping or blackout-date plans are refused.",
            tags=["upgrade"],
        ),
        _served(
            nightly_upgrade_window,
            name="nightly-upgrade-window",
            description="Starts every upgrade window booked for tonight.",
            tags=["upgrade"],
            schedule=Cron(settings.upgrade_cron, timezone=settings.upgrade_timezone),
        ),
        _served(
            run_upgrade_window,
            name="upgrade-window",
            description="One upgrade window: pre-checks, go/no-go, steps, tests, decision, rollback.",
            tags=["upgrade"],
        ),
    ]


def incident() -> Served:
    from flows.incident import run_incident

    return _served(
        run_incident,
        name="incident",
        description=(
            "Open an incident (docs/process.md §3, INC-1 … INC-10): the time it was actually received, "
            "channel, customer and contract, caller, affected elements, what was reported and INC-1's "
            "severity questions; name yourself as the first receiver (owner). Field events, outages "
            "and closure: `siteflow incidents …`."
        ),
        tags=["incident"],
    )


def served() -> list[Served]:
    return [engineering_project(), *version_upgrade(), incident()]


def all_deployments() -> list[RunnerDeployment]:
    return [s.deployment for s in served()]
