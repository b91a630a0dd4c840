"""Resume a waiting flow run after its gate was decided, and keep doing so until it runs.

The decision is committed before the resume call, so a crash or a race in between would
leave a decided gate with a run still paused; :func:`resume_decided_gates` (run by the
gate keeper in `siteflow up`) finds those and resumes them.
"""

from __future__ import annotations

import enum
import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.client.schemas.sorting import FlowRunSort
from prefect.exceptions import PrefectHTTPStatusError
from prefect.states import Scheduled
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.gate import Gate, GateDecision, GateStatus
from models.project import Project, ProjectState
from models.upgrade import UpgradeWindow, WindowState
from siteflow import audit_chain, deadlines
from siteflow.db import session_scope
from siteflow.prefect_client import sync_client

log = logging.getLogger(__name__)


class ResumeOutcome(enum.StrEnum):
    RESUMED = "resumed"
    NOT_PAUSED = "not-paused"
    REJECTED = "rejected"
    UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class PauseForm:
    """What a paused run's form accepts in its ``gate`` field: gate ids (a one-gate form) or
    gate keys (an upgrade window's open-gates form). ``accepts`` is None for a form without
    the field (paused by a siteflow older than it) and when the schema is missing."""

    accepts: frozenset[str] | None
    schema_missing: bool = False
    asks_signer: bool = False  # a form saved before the Prefect UI stopped taking signers


@dataclass(frozen=True)
class Delivery:
    """The answer that resumes a run: the decision recorded for one gate it waits at."""

    gate_id: str
    answer: dict[str, Any]


_FORMS: dict[str, PauseForm] = {}  # by paused state id: a pause's form never changes


def _gate_values(schema: dict[str, Any]) -> frozenset[str] | None:
    field = (schema.get("properties") or {}).get("gate")
    if not isinstance(field, dict):
        return None
    if "const" in field:
        return frozenset([str(field["const"])])
    return frozenset(str(v) for v in field.get("enum") or [])


def pause_form(client: Any, flow_run_id: str, state: Any) -> PauseForm:
    """Read (once per pause) which gates the run's current pause accepts an answer for."""
    cached = _FORMS.get(str(state.id))
    if cached is not None:
        return cached
    key = (state.state_details.run_input_keyset or {}).get("schema")
    if not key:
        return PauseForm(accepts=None)
    try:
        raw = client.read_flow_run_input(flow_run_id=UUID(flow_run_id), key=key)
    except PrefectHTTPStatusError as exc:
        if exc.response.status_code != 404:
            raise
        return PauseForm(accepts=None, schema_missing=True)  # not cached: it may still be written
    schema = json.loads(raw)
    form = PauseForm(
        accepts=_gate_values(schema), asks_signer="signer_email" in (schema.get("properties") or {})
    )
    if len(_FORMS) > 10_000:
        _FORMS.clear()
    _FORMS[str(state.id)] = form
    return form


def _first_decision(session: Session, gate: Gate) -> GateDecision | None:
    return (
        session.execute(
            select(GateDecision).where(GateDecision.gate_id == gate.id).order_by(GateDecision.decided_at)
        )
        .scalars()
        .first()
    )


def _answer(first: GateDecision, gate_field: str | None, asks_signer: bool = False) -> dict[str, Any]:
    """The form answer built from our record (never raw input): the recorded decision, which
    Prefect validates against the form. No signer: the forms ask for none (the Prefect UI
    cannot prove one), and the resumed run takes the answer as the gate's recorded decision
    (`record_ui_decision`: "already recorded"), never as a new attempt."""
    answer: dict[str, Any] = {"decision": first.decision}
    if asks_signer:  # a run paused by an earlier siteflow: its form still requires these
        answer |= {"signer_name": first.signer_name, "signer_email": first.signer_email}
    if gate_field is not None:
        answer["gate"] = gate_field  # Prefect refuses it unless the pause waits at this gate
    return answer


def delivery_for(flow_run_id: str, form: PauseForm, paused_at: datetime | None = None) -> Delivery | None:
    """The decided gate that the run's pause waits at, with its answer; None when none is.

    - A form with a ``gate`` field: the earliest decided gate whose id or key it accepts.
      A gate decided but not waited at (the run moved on, or has not reached it) is not
      delivered: resuming would only wake the run to wait again, or be refused.
    - An older form without it: the run's latest gate, once none of its gates is open.
    - A pause whose schema is missing: a gate decided after the pause, or the latest when
      none is open; Prefect accepts any answer once the schema is restored.
    """
    with session_scope() as session:
        gates = list(session.execute(select(Gate).where(Gate.flow_run_id == flow_run_id)).scalars())
        decided = sorted(
            (g for g in gates if g.status == GateStatus.DECIDED.value and g.decided_at is not None),
            key=lambda g: g.decided_at or datetime.min.replace(tzinfo=UTC),
        )
        any_open = any(g.status == GateStatus.OPEN.value for g in gates)
        chosen: Gate | None = None
        field: str | None = None
        if form.accepts is not None:
            for g in decided:
                if g.id in form.accepts or g.key in form.accepts:
                    chosen, field = g, (g.id if g.id in form.accepts else g.key)
                    break
        elif form.schema_missing:
            late = [g for g in decided if paused_at is not None and g.decided_at and g.decided_at > paused_at]
            chosen = late[0] if late else (decided[-1] if decided and not any_open else None)
            field = chosen.id if chosen is not None else None
        elif decided and not any_open:
            chosen = max(gates, key=lambda g: g.opened_at)
            chosen = chosen if chosen.status == GateStatus.DECIDED.value else None
        if chosen is None:
            return None
        first = _first_decision(session, chosen)
        if first is None:
            return None
        return Delivery(gate_id=chosen.id, answer=_answer(first, field, form.asks_signer))


def answer_for(gate_id: str) -> dict[str, Any]:
    """What a resumer sends for this decided gate on a one-gate form (tests, diagnostics)."""
    with session_scope() as session:
        gate = session.get(Gate, gate_id)
        first = _first_decision(session, gate) if gate is not None else None
        return {} if gate is None or first is None else _answer(first, gate.id)


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


_REFUSED: set[str] = set()  # paused states Prefect refused our answer at: not tried again


def resume_run(flow_run_id: str, wait_seconds: float = 5.0) -> ResumeOutcome:
    """Resume the run once it is paused at a gate that is decided.

    A decision can land between the flow opening its gate and suspending; then we wait a
    little for the pause. A run that waits at no decided gate (it moved on, or waits at
    others) is left alone: nothing it waits for has happened.
    """
    deadline = time.monotonic() + wait_seconds
    try:
        with sync_client() as client:
            while True:
                run = client.read_flow_run(UUID(flow_run_id))
                state = run.state
                if state is not None and state.is_paused():
                    if str(state.id) in _REFUSED:
                        return ResumeOutcome.REJECTED
                    form = pause_form(client, flow_run_id, state)
                    delivery = delivery_for(flow_run_id, form, state.timestamp)
                    if delivery is None:
                        return ResumeOutcome.NOT_PAUSED
                    if form.schema_missing:
                        _restore_schema(client, flow_run_id, state)
                    response = client.resume_flow_run(UUID(flow_run_id), run_input=delivery.answer)
                    if _schema_missing(response):
                        _restore_schema(client, flow_run_id, state)
                        response = client.resume_flow_run(UUID(flow_run_id), run_input=delivery.answer)
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
        log.info("run %s is no longer paused at gate %s; nothing to resume", flow_run_id, delivery.gate_id)
        return ResumeOutcome.NOT_PAUSED
    if len(_REFUSED) > 10_000:
        _REFUSED.clear()
    _REFUSED.add(str(state.id))
    log.warning(
        "Prefect refused to resume run %s with the decision of gate %s: %s (not tried again for "
        "this pause; answer it in the Prefect UI)",
        flow_run_id,
        delivery.gate_id,
        response.details,
    )
    return ResumeOutcome.REJECTED


def wake_run(flow_run_id: str, wake: str, wait_seconds: float = 5.0) -> ResumeOutcome:
    """Resume a run paused on an open-gates form that lists `wake` (no gate: a bell, see
    `flows.gate_wait.any_form`), so that it re-runs and reads what changed in our tables — an
    incident's run, when one of its outages' attribution is disputed (INC-7). A run paused
    elsewhere (its severity gate, or it has ended) is left alone: it reads the tables when it
    gets to its open-gates wait, and the gate keeper wakes it if it is paused there first."""
    deadline = time.monotonic() + wait_seconds
    try:
        with sync_client() as client:
            while True:
                run = client.read_flow_run(UUID(flow_run_id))
                state = run.state
                if state is not None and state.is_paused():
                    form = pause_form(client, flow_run_id, state)
                    if form.accepts is None or wake not in form.accepts:
                        return ResumeOutcome.NOT_PAUSED
                    response = client.resume_flow_run(UUID(flow_run_id), run_input={"gate": wake})
                    break
                if state is None or state.is_final() or time.monotonic() > deadline:
                    return ResumeOutcome.NOT_PAUSED
                time.sleep(0.1)
    except Exception as exc:  # the keeper's pass wakes it later; the dispute is recorded
        log.warning("could not reach Prefect to wake run %s: %s", flow_run_id, exc)
        return ResumeOutcome.UNREACHABLE
    if response.status == SetStateStatus.ACCEPT:
        return ResumeOutcome.RESUMED
    if response.status == SetStateStatus.ABORT or _rejected_for(response, "'gate'"):
        return ResumeOutcome.NOT_PAUSED
    log.warning("Prefect refused to wake run %s: %s", flow_run_id, response.details)
    return ResumeOutcome.REJECTED


def wake_for_disputes() -> list[str]:
    """The keeper's pass (INC-7): wake the runs of incidents with a disputed outage whose
    customer gate is not open yet; returns the runs woken."""
    from siteflow.incidents.attribution import WAKE_KEY
    from siteflow.incidents.records import runs_awaiting_dispute_gates

    with session_scope() as session:
        waiting = runs_awaiting_dispute_gates(session)
    return [
        run_id for _, run_id in waiting if wake_run(run_id, WAKE_KEY, wait_seconds=0) is ResumeOutcome.RESUMED
    ]


def _paused_runs(client: Any, page: int = 200) -> list[Any]:
    """Every paused run, page by page (Prefect returns at most `limit` a call)."""
    runs: list[Any] = []
    while True:
        batch = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
            ),
            sort=FlowRunSort.ID_DESC,
            limit=page,
            offset=len(runs),
        )
        runs.extend(batch)
        if len(batch) < page:
            return runs


def resume_decided_gates() -> list[str]:
    """Resume every paused run of ours that waits at a decided gate; returns the runs resumed."""
    with sync_client() as client:
        paused = _paused_runs(client)
    run_ids = [str(r.id) for r in paused]
    if not run_ids:
        return []
    with session_scope() as session:
        decided = set(
            session.execute(
                select(Gate.flow_run_id).where(
                    Gate.flow_run_id.in_(run_ids), Gate.status == GateStatus.DECIDED.value
                )
            ).scalars()
        )
    resumed = []
    for run_id in run_ids:
        if run_id in decided and resume_run(run_id, wait_seconds=0) is ResumeOutcome.RESUMED:
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
    with sync_client() as client:
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

    with sync_client() as client:
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
    """The gate keeper process `siteflow up` starts: deadlines (own thread), resumes, repairs,
    the incidents' SLA warnings, breaches and escalations (INC-4, INC-9), and support mail a
    crash left kept but unread (issue #11)."""
    from siteflow import reminders
    from siteflow.incidents import mail_intake
    from siteflow.incidents import notices as incident_notices
    from siteflow.prefect_env import apply_prefect_environment
    from siteflow.settings import get_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per API call drowns the log
    apply_prefect_environment()
    from datetime import timedelta

    from siteflow.incidents.run_view import ClocksRefresh

    interval = get_settings().keeper_poll_seconds
    refresh = ClocksRefresh(timedelta(minutes=get_settings().clocks_refresh_minutes))
    examined: set[str] = set()
    threading.Thread(
        target=deadlines.run_forever,
        args=(threading.Event(), interval, lambda run_id: resume_run(run_id, wait_seconds=0)),
        name="deadlines",
        daemon=True,
    ).start()
    while True:
        try:
            reminded = reminders.send_reminders()  # needs only our database, so before Prefect
            escalated = reminders.escalate_silent_customers()
            if reminded or escalated:
                log.info("queued %d gate reminder(s), %d escalation(s)", len(reminded), len(escalated))
        except Exception as exc:  # mail trouble must not hold up resuming runs
            log.warning("reminder pass failed: %s", exc)
        try:  # INC-4 warnings and breaches, INC-9 escalation steps: each once, whatever the keepers
            incident_notices.send_due_notices(refresh=refresh)
        except Exception as exc:
            log.warning("incident notice pass failed: %s", exc)
        try:  # issue #11: a support mail kept but left unread by a crash is read again, once
            retried = mail_intake.retry_kept_mail(get_settings())
            if retried:
                log.info("read %d support mail(s) that a stop had left unread", len(retried))
        except Exception as exc:
            log.warning("support mail retry pass failed: %s", exc)
        try:
            for run_id in recover_crashed_runs(examined):
                log.warning("run %s was reported crashed after siteflow stopped: recovered", run_id)
            for run_id in resume_decided_gates():
                log.info("resumed run %s: its gate was decided while it was not yet paused", run_id)
            for run_id in wake_for_disputes():
                log.info("woke run %s: an outage's attribution is disputed (INC-7)", run_id)
        except Exception as exc:  # a passing outage must not stop the keeper
            log.warning("gate keeper pass failed: %s", exc)
        time.sleep(interval)


if __name__ == "__main__":
    main()
