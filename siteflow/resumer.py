"""Resume a waiting flow run after its gate was decided, and keep doing so until it runs.

The decision is committed before the resume call, so a crash or a race in between would
leave a decided gate with a run still paused; :func:`resume_decided_gates` (run by the
gate keeper in `siteflow up`) finds those and resumes them.
"""

from __future__ import annotations

import enum
import logging
import time
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.responses import SetStateStatus
from sqlalchemy import select

from models.gate import Gate, GateDecision, GateStatus
from siteflow.db import session_scope

log = logging.getLogger(__name__)


class ResumeOutcome(enum.StrEnum):
    RESUMED = "resumed"
    NOT_PAUSED = "not-paused"
    REJECTED = "rejected"
    UNREACHABLE = "unreachable"


def _has_open_gate(flow_run_id: str) -> bool:
    with session_scope() as session:
        return (
            session.execute(
                select(Gate.id).where(Gate.flow_run_id == flow_run_id, Gate.status == GateStatus.OPEN.value)
            ).first()
            is not None
        )


def _answer_of_latest_gate(flow_run_id: str) -> dict[str, Any]:
    """The form answer for the gate the run waits at, built from our record (never raw input).

    The gate forms require a decision and a signer (so the Prefect UI shows a proper form);
    Prefect validates the resume input against that form's schema, so we fill it in.
    """
    with session_scope() as session:
        gate = session.execute(
            select(Gate).where(Gate.flow_run_id == flow_run_id).order_by(Gate.opened_at.desc()).limit(1)
        ).scalar_one_or_none()
        if gate is None:
            return {}
        first = (
            session.execute(
                select(GateDecision).where(GateDecision.gate_id == gate.id).order_by(GateDecision.decided_at)
            )
            .scalars()
            .first()
        )
        if first is None:
            return {}
        return {
            "decision": first.decision,
            "signer_name": first.signer_name,
            "signer_email": first.signer_email,
        }


def _schema_missing(response: Any) -> bool:
    reason = str(getattr(getattr(response, "details", None), "reason", ""))
    return bool(response.status == SetStateStatus.REJECT and "schema not found" in reason)


def _restore_schema(client: Any, flow_run_id: str, state: Any) -> None:
    """Heal a run that Prefect paused without its form schema.

    `suspend_flow_run` sets the Suspended state first and saves the form's schema after; a
    process killed in between (siteflow stopped at that instant) leaves a paused run that
    Prefect refuses to resume ("Run input schema not found"). Our decision is already in our
    table, so an open schema is enough to let the run continue.
    """
    keyset = state.state_details.run_input_keyset or {}
    if "schema" in keyset:
        log.warning("run %s was paused without its form schema; restoring it to resume", flow_run_id)
        client.create_flow_run_input(UUID(flow_run_id), key=keyset["schema"], value='{"type": "object"}')


def resume_run(flow_run_id: str, wait_seconds: float = 5.0) -> ResumeOutcome:
    """Resume the run once it is paused, if no gate of it is still open.

    A decision can land between the flow opening its gate and suspending; then we wait a
    little for the pause. If the flow has meanwhile moved on to its next gate (opened, not
    decided), resuming would only wake it to wait again, so we leave it.
    """
    deadline = time.monotonic() + wait_seconds
    try:
        with get_client(sync_client=True) as client:
            while True:
                if _has_open_gate(flow_run_id):
                    return ResumeOutcome.NOT_PAUSED
                run = client.read_flow_run(UUID(flow_run_id))
                state = run.state
                if state is not None and state.is_paused():
                    answer = _answer_of_latest_gate(flow_run_id)
                    response = client.resume_flow_run(UUID(flow_run_id), run_input=answer)
                    if _schema_missing(response):
                        _restore_schema(client, flow_run_id, state)
                        response = client.resume_flow_run(UUID(flow_run_id), run_input=answer)
                    break
                if state is None or state.is_final() or time.monotonic() > deadline:
                    return ResumeOutcome.NOT_PAUSED
                time.sleep(0.1)
    except Exception as exc:  # the gate keeper retries; the decision is already safe
        log.warning("could not reach Prefect to resume run %s: %s", flow_run_id, exc)
        return ResumeOutcome.UNREACHABLE
    if response.status == SetStateStatus.ACCEPT:
        return ResumeOutcome.RESUMED
    if response.status == SetStateStatus.ABORT:
        return ResumeOutcome.NOT_PAUSED
    log.warning("Prefect refused to resume run %s: %s", flow_run_id, response.details)
    return ResumeOutcome.REJECTED


def resume_decided_gates() -> list[str]:
    """Resume every paused run that has no open gate left; returns the runs resumed."""
    with get_client(sync_client=True) as client:
        paused = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
            ),
            limit=200,
        )
    run_ids = [str(r.id) for r in paused]
    if not run_ids:
        return []
    with session_scope() as session:
        rows = session.execute(
            select(Gate.flow_run_id, Gate.status).where(Gate.flow_run_id.in_(run_ids))
        ).all()
    known = {r.flow_run_id for r in rows}
    still_open = {r.flow_run_id for r in rows if r.status == GateStatus.OPEN.value}
    resumed = []
    for run_id in run_ids:
        settled = run_id in known and run_id not in still_open
        if settled and resume_run(run_id, wait_seconds=0) is ResumeOutcome.RESUMED:
            resumed.append(run_id)
    return resumed


def main() -> None:
    """The gate keeper process `siteflow up` starts."""
    from siteflow.prefect_env import apply_prefect_environment
    from siteflow.settings import get_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per API call drowns the log
    apply_prefect_environment()
    interval = get_settings().keeper_poll_seconds
    while True:
        try:
            for run_id in resume_decided_gates():
                log.info("resumed run %s: its gate was decided while it was not yet paused", run_id)
        except Exception as exc:  # a passing outage must not stop the keeper
            log.warning("gate keeper pass failed: %s", exc)
        time.sleep(interval)


if __name__ == "__main__":
    main()
