"""Software version upgrade (软件版本升级) in a nightly maintenance window, PROCESS.md §2.

Three flows:
- ``plan_version_upgrade`` (deployment **version-upgrade**): a PM's plan is checked and
  booked for its night — overlaps on an element and blackout dates are refused.
- ``nightly_upgrade_window`` (deployment **nightly-upgrade-window**, on a cron in the site's
  zone): starts one ``upgrade-window`` run for every plan booked for tonight.
- ``run_upgrade_window``: pre-checks → go/no-go → steps → tests → decision → commit or
  rollback and comparison → report. Gates suspend the run; on resume it re-runs from the
  top and the step journal makes every finished step a no-op (UPG-5).

The 04:00 decision is never a pause timeout (DESIGN.md): the gate keeper submits the gate's
default, rollback, as ``system:deadline`` through the one decision path, and the run ends
Completed with that truthful decision.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact
from prefect.context import FlowRunContext
from prefect.futures import PrefectFuture, as_completed
from prefect.task_runners import ThreadPoolTaskRunner

from flows.gate_wait import await_gate
from models.gate_spec import Decision, GateKind, GateSpec, Party
from models.project_input import Role
from models.upgrade import ElementOutcome, ElementPhase
from models.upgrade_evidence import gate_key_for
from models.upgrade_plan import UpgradePlanIn
from tasks.gates import open_gate
from tasks.upgrade_records import (
    element_rows,
    finish_window,
    load_plan,
    register_window,
    set_phase,
    start_window,
)
from tasks.upgrade_report import (
    element_summary,
    evidence_markdown,
    issue_upgrade_report,
    precheck_failures,
    window_table,
)
from tasks.upgrade_steps import (
    conclude_element,
    operator_for,
    precheck_element,
    record_operator_checks,
    upgrade_element,
)

PM = [Party(slot="pm", roles=[Role.PM])]


@flow(name="version-upgrade", log_prints=True)
def plan_version_upgrade(plan: UpgradePlanIn) -> str:
    """Book a plan for its night (refused, with the reason, on overlap, blackout, a passed deadline
    or a window too short for one element); the message names the deadline in local time and UTC."""
    booking = register_window(plan)
    message = f"{booking.summary()}; the nightly-upgrade-window deployment starts it"
    print(message)
    return message


@flow(name="nightly-upgrade-window", log_prints=True)
def nightly_upgrade_window(lookahead_hours: float = 12.0) -> list[str]:
    """Start every booked window whose start falls before now + lookahead (cron: nightly)."""
    from siteflow.launch import start_due_windows

    started = start_due_windows(datetime.now(UTC) + timedelta(hours=lookahead_hours))
    print(f"started {len(started)} window(s): {', '.join(started) or '-'}")
    return started


def _batches(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _decision_spec(plan: UpgradePlanIn, element: str, summary: dict[str, Any]) -> GateSpec:
    """The element's decision gate; the description shows the evaluated criteria (UPG-8)."""
    tests = ", ".join(f"{k}: {v}" for k, v in summary["tests"].items())
    met = "met" if summary["criteria_met"] else "NOT met — roll back (UPG-9)"
    return GateSpec(
        key=gate_key_for(element),
        kind=GateKind.ROLLBACK_DECISION,
        rule="UPG-8 … UPG-10",
        title=f"Commit or roll back {element}",
        description=(
            f"Success criteria ({', '.join(plan.runbook.criteria())}): **{met}**. Tests: {tests}. "
            f"Unexpected: {', '.join(summary['unexpected']) or 'none'}. At the deadline "
            f"{plan.window.deadline:%H:%M} ({plan.window.timezone}) an undecided element is rolled "
            "back by system:deadline."
        ),
        parties=PM,
        decisions=[Decision.COMMIT, Decision.ROLLBACK],
        deadline=plan.window.deadline_at,
        default_decision=Decision.ROLLBACK,
    )


def _go_spec(plan: UpgradePlanIn, failed: list[str]) -> GateSpec:
    """UPG-3: with a failed pre-check the form offers no-go only (decide refuses go anyway);
    unqualified operators can still be replaced in the go form (UPG-2)."""
    blocked = f"Go is not offered: {len(failed)} pre-check(s) failed (UPG-3). " if failed else ""
    return GateSpec(
        key="go-no-go",
        kind=GateKind.GO_NO_GO,
        rule="UPG-3",
        title=f"Go / no-go for {plan.id}",
        description=blocked
        + "Confirm go only when every pre-check passed and every operator is qualified; name a "
        "qualified replacement for an unqualified operator in the form's replacements.",
        parties=PM,
        decisions=[Decision.NO_GO] if failed else [Decision.GO, Decision.NO_GO],
        data_model="GoNoGoIn",
        data_required_for=[Decision.GO],
        deadline=plan.window.deadline_at,
        default_decision=Decision.NO_GO,
    )


class Progress:
    """The window's progress in the Prefect UI: a bar and a table of elements by phase."""

    def __init__(self, window_id: str, total: int) -> None:
        self.window_id, self.total = window_id, total
        self.artifact_id = create_progress_artifact(  # sync call inside a flow: a UUID
            progress=0.0, key=f"{window_id.lower()}-progress", description=f"Elements of {window_id} done"
        )

    def show(self) -> None:
        rows = element_rows(self.window_id)
        done = sum(1 for r in rows.values() if r.phase == ElementPhase.DONE.value)
        update_progress_artifact(cast(UUID, self.artifact_id), progress=100.0 * done / max(1, self.total))
        create_table_artifact(
            key=f"{self.window_id.lower()}-elements",
            table=window_table(self.window_id),
            description=f"{self.window_id}: elements by phase",
        )


@flow(name="upgrade-window", log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=64))  # type: ignore[arg-type]
def run_upgrade_window(window_id: str) -> dict[str, str]:
    """One window, PROCESS.md §2 in order (UPG-1 … UPG-11)."""
    log = get_run_logger()
    ctx = FlowRunContext.get()
    assert ctx is not None and ctx.flow_run is not None
    run_id = str(ctx.flow_run.id)
    plan = load_plan(window_id)
    start_window(window_id, run_id)
    names = [e.name for e in plan.elements]
    operators: dict[str, str] = {n: operator_for(plan, i, {}) for i, n in enumerate(names)}
    progress = Progress(window_id, len(names))

    wait = (plan.window.starts_at - datetime.now(UTC)).total_seconds()
    if wait > 0:
        log.info("window %s opens at %s UTC; waiting %.0fs", window_id, plan.window.starts_at, wait)
        time.sleep(wait)

    # UPG-1, UPG-2: pre-checks, item by item, and the operators' qualification
    rows = element_rows(window_id)
    todo = [n for n in names if rows[n].phase in (ElementPhase.WAITING.value, ElementPhase.PRECHECKS.value)]
    for batch in _batches(todo, plan.max_parallel):
        for checking in [precheck_element.submit(window_id, n, operators[n]) for n in batch]:
            checking.wait()
    record_operator_checks(window_id, plan)
    progress.show()

    # UPG-3: the upgrade PM confirms go on the evidence
    evidence = evidence_markdown(window_id)
    go = await_gate(window_id, _go_spec(plan, precheck_failures(window_id)), evidence)
    if go.outcome != Decision.GO.value:
        rows = element_rows(window_id)
        for n in names:
            if rows[n].phase != ElementPhase.DONE.value:
                set_phase(
                    window_id,
                    n,
                    ElementPhase.DONE,
                    outcome=ElementOutcome.NOT_STARTED.value,
                    note=f"no-go by {', '.join(go.signers)}",
                )
        return _finish(window_id, plan, progress)
    replacements = {r["replaces"]: r["name"] for r in go.data().get("replacements", [])}
    operators = {n: operator_for(plan, i, replacements) for i, n in enumerate(names)}

    # UPG-4 … UPG-7: steps and tests; each element's decision gate opens as it finishes
    rows = element_rows(window_id)
    todo = [n for n in names if rows[n].phase != ElementPhase.DONE.value]
    auto_rollback: dict[str, str] = {}
    gated: list[str] = []
    for batch in _batches(todo, plan.max_parallel):
        futures: list[PrefectFuture[dict[str, Any]]] = [
            upgrade_element.submit(window_id, n, operators[n], plan.window.deadline_at) for n in batch
        ]
        for future in as_completed(futures):
            summary = future.result()
            element = summary["element"]
            if summary["status"] == "await-decision":
                open_gate(
                    window_id, run_id, _decision_spec(plan, element, element_summary(window_id, element))
                )
                gated.append(element)
            elif summary["status"] == "step-failed":
                auto_rollback[element] = summary["note"]
        progress.show()

    # UPG-8 … UPG-10: the PM decides each element; the deadline decides the rest (rollback)
    decisions = {
        n: await_gate(window_id, _decision_spec(plan, n, element_summary(window_id, n)))
        for n in names
        if n in gated
    }

    # UPG-9, UPG-11: commit, or roll back, test and compare with the snapshot
    work: list[tuple[str, str, str, str]] = []
    for n, gate in decisions.items():
        sig = gate.signatures[-1]
        work.append((n, gate.outcome or Decision.ROLLBACK.value, sig.signer, sig.door))
    for n, note in auto_rollback.items():
        log.warning("%s: %s — rolling back (UPG-10)", n, note)
        work.append((n, Decision.ROLLBACK.value, "system:step-failed", "system"))
    for batch in _batches([w[0] for w in work], plan.max_parallel):
        chosen = [w for w in work if w[0] in batch]
        for concluding in [
            conclude_element.submit(window_id, n, operators[n], d, by, door) for n, d, by, door in chosen
        ]:
            concluding.wait()
        progress.show()
    return _finish(window_id, plan, progress)


def _finish(window_id: str, plan: UpgradePlanIn, progress: Progress) -> dict[str, str]:
    progress.show()
    issue_upgrade_report(window_id)
    outcomes = finish_window(window_id)
    get_run_logger().info("window %s: %s", window_id, outcomes)
    return outcomes
