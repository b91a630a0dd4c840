"""Serve every deployment from one process (the embedded default; `siteflow up` starts it)."""

from __future__ import annotations

import asyncio
import logging
from uuid import UUID

from prefect.exceptions import TerminationSignal
from prefect.runner import Runner

from deployments import served, warm_start
from siteflow.settings import get_settings


def main() -> None:
    """`prefect.serve`, with runs started warm (see `warm_start`) and a sub-second poll."""
    warm_start.install()
    runner = Runner(
        # A restart of siteflow must not pause the nightly-upgrade-window schedule.
        pause_on_shutdown=False,
        # Prefect's own setting is whole seconds; a resumed run waits half a poll on average.
        query_seconds=get_settings().runner_poll_seconds,
    )
    for flow, deployment in served():
        deployment_id = runner.add_deployment(deployment)
        assert isinstance(deployment_id, UUID)  # sync call: not a coroutine
        warm_start.register(runner, deployment_id, flow)
    try:
        asyncio.run(runner.start())
    except (KeyboardInterrupt, TerminationSignal) as exc:
        logging.getLogger("siteflow.serve").info("%s: shutting down", type(exc).__name__)


if __name__ == "__main__":
    main()
