"""Baseline for the approval-latency benchmark: bare Prefect suspending and being resumed."""

from __future__ import annotations

from prefect import flow, serve
from prefect.flow_runs import suspend_flow_run
from prefect.types.entrypoint import EntrypointType


@flow(name="bare-suspend", persist_result=True)
def bare_suspend(rounds: int) -> int:
    for i in range(rounds):
        suspend_flow_run(key=f"round-{i}")
    return rounds


if __name__ == "__main__":
    # import by module path, so the served entrypoint is not `__main__`
    from benchmarks.bare_suspend import bare_suspend as served

    serve(
        served.to_deployment(name="bare-suspend", entrypoint_type=EntrypointType.MODULE_PATH),
        print_starting_message=False,
    )
