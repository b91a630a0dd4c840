"""Resume a waiting flow run after its gate was decided, and keep doing so until it runs.

The decision is committed before the resume call, so a crash or a race in between would
leave a decided gate with a run still paused; :func:`resume_decided_gates` (run by the
gate keeper in `siteflow up`) finds those and resumes them.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.states import Scheduled
from sqlalchemy import select

from models.gate import Gate, GateDecision, GateStatus
from models.project import Project, ProjectState
from models.upgrade import UpgradeWindow, WindowState
from siteflow import audit_chain, deadlines
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
            "gate": gate.id,  # the form's constant: Prefect refuses it at any other gate
            "decision": first.decision,
            "signer_name": first.signer_name,
            "signer_email": first.signer_email,
        }


def _rejected_for(response: Any, words: str) -> bool:
    reason = str(getattr(getattr(response, "details", None), "reason", ""))
    return bool(response.status == SetStateStatus.REJECT and words in reason)


def _schema_missing(response: Any) -> bool:
    return _rejected_for(response, "schema not found")


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
                    elif _rejected_for(response, "'gate' was unexpected"):
                        # paused by a siteflow older than the gate constant: answer without it
                        answer.pop("gate", None)
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
    if _rejected_for(response, "'gate'"):
        log.info("run %s has moved on to another gate; the answer for the last one was not used", flow_run_id)
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


def _known_runs(run_ids: list[str]) -> tuple[set[str], set[str]]:
    """Of these runs: those with gates of ours, and those of projects or windows still running."""
    with session_scope() as session:
        gated = session.execute(select(Gate.flow_run_id).where(Gate.flow_run_id.in_(run_ids))).scalars()
        windows = session.execute(
            select(UpgradeWindow.flow_run_id).where(
                UpgradeWindow.flow_run_id.in_(run_ids), UpgradeWindow.state == WindowState.RUNNING.value
            )
        ).scalars()
        projects = session.execute(
            select(Project.flow_run_id).where(
                Project.flow_run_id.in_(run_ids),
                Project.state.in_([ProjectState.RUNNING.value, ProjectState.FAILED.value]),
            )
        ).scalars()
        return {r for r in gated if r}, {r for r in [*windows, *projects] if r}


def _revive_project(flow_run_id: str) -> None:
    """The crash hook marked the project failed; the run is back, so is the project."""
    with session_scope() as session:
        project = session.execute(
            select(Project).where(Project.flow_run_id == flow_run_id)
        ).scalar_one_or_none()
        if project is not None and project.state == ProjectState.FAILED.value:
            project.state = ProjectState.RUNNING.value
            audit_chain.append(
                session, project.code, "project.recovered", "system:gate-keeper", {"flow_run_id": flow_run_id}
            )


SHUTDOWN_CANCEL = "Runner is shutting down"  # Prefect's runner cancels its runs when stopped


MAX_RESTARTS = 3


def recover_crashed_runs(examined: set[str]) -> list[str]:
    """Bring back runs of ours that Prefect marked Crashed because siteflow was stopped.

    - A run that had already suspended at its gate: its process exits on its own a moment
      after the pause, and if siteflow is stopped in that moment the runner reports it
      Crashed, although its gate is safely recorded. It is restored to the very suspended
      state it had (same pause key and form), so the gate can still be answered.
    - A project's or upgrade window's run stopped in the middle of its work (Crashed, or
      Cancelled by the runner shutting down): it is scheduled again, re-runs from the top,
      passes what it recorded and, for a window, reconciles the interrupted step by reading
      the element (UPG-5) — at most MAX_RESTARTS times, so a run that crashes on its own is
      not restarted forever.
    Other crashes, and cancellations by people, are left alone. `examined` remembers crashed states already
    looked at, so each is read once.
    """
    with get_client(sync_client=True) as client:
        crashed = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(
                    type=FlowRunFilterStateType(any_=[StateType.CRASHED, StateType.CANCELLED])
                )
            ),
            limit=200,
        )
        fresh = [
            r
            for r in crashed
            if r.state is not None
            and str(r.state.id) not in examined
            and (r.state.is_crashed() or SHUTDOWN_CANCEL in (r.state.message or ""))
        ]
        if not fresh:
            return []
        gated, windows = _known_runs([str(r.id) for r in fresh])
        recovered = []
        for run in fresh:
            assert run.state is not None
            examined.add(str(run.state.id))
            if str(run.id) not in gated | windows:
                continue
            history = sorted(client.read_flow_run_states(run.id), key=lambda s: s.timestamp)
            stopped = history[-1].is_crashed() or history[-1].is_cancelled()
            before = (
                next((h for h in reversed(history[:-1]) if not h.is_cancelling()), None) if stopped else None
            )
            if before is not None and before.is_paused() and before.state_details.pause_reschedule:
                again = before.fresh_copy()
                again.message = "restored: the crash was reported after the run had suspended at its gate"
            elif (
                str(run.id) in windows
                and sum(h.is_crashed() or h.is_cancelled() for h in history) <= MAX_RESTARTS
            ):
                again = Scheduled(
                    message="restarted after siteflow was stopped mid-run; the journal resumes it"
                )
            else:
                continue
            client.set_flow_run_state(run.id, again, force=True)
            _revive_project(str(run.id))
            recovered.append(str(run.id))
    return recovered


def crash_orphaned_runs(deployment_names: list[str]) -> list[str]:
    """Report Crashed the runs left Running by a siteflow that was stopped or killed.

    Only for the embedded default, before its runner starts: it is then the only process
    that could run them, so a run still marked Running (or Pending) has no process. Once
    marked Crashed, :func:`recover_crashed_runs` starts it again. With several workers
    (scale-out) this does not apply: there, Prefect's flow-run heartbeats and a zombie
    automation do the same job.
    """
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.exceptions import ObjectNotFound
    from prefect.states import Crashed

    with get_client(sync_client=True) as client:
        ids = []
        for name in deployment_names:
            try:
                ids.append(client.read_deployment_by_name(name).id)
            except ObjectNotFound:
                continue
        if not ids:
            return []
        orphans = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(
                    type=FlowRunFilterStateType(
                        any_=[StateType.RUNNING, StateType.PENDING, StateType.CANCELLING]
                    )
                )
            ),
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=ids)),
            limit=200,
        )
        for run in orphans:
            client.set_flow_run_state(
                run.id,
                Crashed(message="siteflow stopped while this run was running; no process runs it"),
                force=True,
            )
    return [str(r.id) for r in orphans]


def main() -> None:
    """The gate keeper process `siteflow up` starts: deadlines (own thread), resumes, repairs."""
    from siteflow import reminders
    from siteflow.prefect_env import apply_prefect_environment
    from siteflow.settings import get_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per API call drowns the log
    apply_prefect_environment()
    interval = get_settings().keeper_poll_seconds
    examined: set[str] = set()
    threading.Thread(
        target=deadlines.run_forever, args=(threading.Event(), interval), name="deadlines", daemon=True
    ).start()
    while True:
        try:
            reminded = reminders.send_reminders()  # needs only our database, so before Prefect
            escalated = reminders.escalate_silent_customers()
            if reminded or escalated:
                log.info("queued %d gate reminder(s), %d escalation(s)", len(reminded), len(escalated))
        except Exception as exc:  # mail trouble must not hold up resuming runs
            log.warning("reminder pass failed: %s", exc)
        try:
            for run_id in recover_crashed_runs(examined):
                log.warning("run %s was reported crashed after siteflow stopped: recovered", run_id)
            for run_id in resume_decided_gates():
                log.info("resumed run %s: its gate was decided while it was not yet paused", run_id)
        except Exception as exc:  # a passing outage must not stop the keeper
            log.warning("gate keeper pass failed: %s", exc)
        time.sleep(interval)


if __name__ == "__main__":
    main()
