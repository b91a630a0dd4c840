"""Software version upgrade (软件版本升级) in a nightly maintenance window, docs/process.md §2.

Three flows:
- ``plan_version_upgrade`` (deployment **version-upgrade**): a PM's plan is checked and
  booked for its night — overlaps on an element and blackout dates are refused.
- ``nightly_upgrade_window`` (deployment **nightly-upgrade-window**, on a cron in the site's
  zone): starts one ``upgrade-window`` run for every plan booked for tonight.
- ``run_upgrade_window``: pre-checks → go/no-go → steps → tests → decision → commit or
  rollback and comparison → report. Gates suspend the run; on resume it re-runs from the
  top and the step journal makes every finished step a no-op (UPG-5).

The 04:00 decision is never a pause timeout (docs/architecture.md): the gate keeper submits the gate's
default, rollback, as ``system:deadline`` through the one decision path, and the run ends
Completed with that truthful decision.
"""

from __future__ import annotations

import enum
import queue
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact
from prefect.context import FlowRunContext
from prefect.futures import PrefectFuture
from prefect.task_runners import ThreadPoolTaskRunner

from flows.gate_wait import await_any_gate, await_gate, take_open_gates_answers
from models.gate_spec import Decision, GateKind, GateSpec, Party
from models.project_input import Role
from models.upgrade import ElementOutcome, ElementPhase, UpgradeResult, UpgradeStatus
from models.upgrade_evidence import gate_key_for
from models.upgrade_plan import UpgradePlanIn
from siteflow.links import gate_page
from siteflow.settings import get_settings
from tasks.gates import GateRead, open_gate
from tasks.run_labels import tag_run, window_tags
from tasks.upgrade_decisions import ElementState, read_window_state, watch_decisions
from tasks.upgrade_records import (
    element_rows,
    finish_window,
    load_plan,
    record_element_failure,
    register_window,
    set_phase,
    start_window,
)
from tasks.upgrade_report import (
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


def _decision_spec(plan: UpgradePlanIn, element: str, result: UpgradeResult) -> GateSpec:
    """The element's decision gate; the description shows the evaluated criteria (UPG-8)."""
    tests = ", ".join(f"{k}: {v}" for k, v in result.tests.items()) or "see the step journal"
    met = "met" if result.criteria_met else "NOT met — roll back (UPG-9)"
    return GateSpec(
        key=gate_key_for(element),
        kind=GateKind.ROLLBACK_DECISION,
        rule="UPG-8 … UPG-10",
        title=f"Commit or roll back {element}",
        description=(
            f"Success criteria ({', '.join(plan.runbook.criteria())}): **{met}**. Tests: {tests}. "
            f"Unexpected: {', '.join(result.unexpected) or 'none'}. At the deadline "
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


@flow(
    name="upgrade-window",
    flow_run_name="{window_id}",  # the run list names each window
    log_prints=True,
    task_runner=ThreadPoolTaskRunner(max_workers=160),  # type: ignore[arg-type]
)
def run_upgrade_window(window_id: str) -> dict[str, str]:
    """One window, docs/process.md §2 in order (UPG-1 … UPG-11)."""
    log = get_run_logger()
    ctx = FlowRunContext.get()
    assert ctx is not None and ctx.flow_run is not None
    run_id = str(ctx.flow_run.id)
    if not set(window_tags(window_id)) <= set(ctx.flow_run.tags):
        tag_run(run_id, window_tags(window_id))
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

    # UPG-4 … UPG-11: each element upgraded, decided and concluded on its own
    ElementWork(window_id, run_id, plan, operators, progress).run()
    return _finish(window_id, plan, progress)


UPGRADE_SLOTS = 64  # upgrades at once per run, whatever max_parallel says: threads stay free for
# conclusions, which never wait for a slot (a rollback decided at 03:59 starts at 03:59, UPG-10)


class ElementWork:
    """The elements after go, each on its own (UPG-4 … UPG-11).

    Upgrades run `max_parallel` at a time; each element's decision gate opens as soon as its
    own tests are done, and its decision is carried out (commit, or rollback + tests +
    comparison) as soon as it is recorded, whatever the other elements are doing. While any
    element has work, :func:`watch_decisions` runs beside it and reports decisions within a
    fraction of a second. When every element left only waits at its gate, the run lingers
    (``SITEFLOW_WINDOW_LINGER_SECONDS``) and then suspends on one form that lists every open
    gate: any decision, through any door, resumes it, and the re-run picks up from the
    tables (DESIGN notes in README, "How a window waits").
    """

    def __init__(
        self, window_id: str, run_id: str, plan: UpgradePlanIn, operators: dict[str, str], progress: Progress
    ) -> None:
        self.window_id, self.run_id, self.plan = window_id, run_id, plan
        self.operators, self.progress = operators, progress
        self.names = [e.name for e in plan.elements]
        self.specs: dict[str, GateSpec] = {}
        self.queue: list[str] = []
        self.upgrading: set[str] = set()
        self.concluding: set[str] = set()
        self.opening: set[str] = set()
        self.awaiting: dict[str, GateRead] = {}
        self.gates: dict[str, GateRead] = {}
        self.taken: set[str] = set()
        self.watching = False
        self.watch_failures = 0
        self.finished: queue.SimpleQueue[tuple[Work, str, PrefectFuture[Any]]] = queue.SimpleQueue()
        self.shown_at = 0.0
        self.refusals: list[str] = []  # Prefect-UI answers just refused: told at the top of the next form

    def track(self, kind: Work, element: str, future: PrefectFuture[Any]) -> None:
        future.add_done_callback(lambda f: self.finished.put((kind, element, f)))

    @property
    def busy(self) -> bool:
        return bool(self.upgrading or self.concluding or self.opening)

    def load(self, states: list[ElementState]) -> None:
        self.queue.clear()
        self.awaiting.clear()
        for state in states:
            if state.gate is not None:
                self.gates[state.name] = state.gate
            if state.done:
                continue
            if state.decided:
                assert state.gate is not None
                self.conclude(state.name, state.gate)
            elif state.awaiting:
                assert state.gate is not None
                self.awaiting[state.name] = state.gate
            else:
                self.queue.append(state.name)

    def run(self) -> None:
        self.load(read_window_state(self.window_id, self.names))
        attempt, self.refusals = take_open_gates_answers(list(self.gates.values()))  # numbers the next pause
        if attempt and self.awaiting:  # answers from the Prefect UI went through the decision path
            self.load(read_window_state(self.window_id, self.names))
        linger = get_settings().window_linger_seconds
        while True:
            self.start_upgrades()
            if not self.busy and not self.awaiting:
                return
            if self.awaiting and not self.watching:
                self.watching = True
                self.track(
                    Work.WATCH,
                    "",
                    watch_decisions.submit(self.window_id, self.names, sorted(self.taken), linger),
                )
            kind, element, future = self.finished.get()
            if kind is Work.WATCH:
                self.watching = False
                try:
                    decided: list[ElementState] = future.result()
                except Exception as exc:  # watched again; the tables hold every decision
                    self.watch_failures += 1
                    if self.watch_failures > 3:
                        raise
                    get_run_logger().warning("watching the decisions broke off (%s); watching again", exc)
                    continue
                self.watch_failures = 0
                for state in decided:
                    assert state.gate is not None
                    self.awaiting.pop(state.name, None)
                    self.conclude(state.name, state.gate)
                self.show(force=bool(decided))
                if not decided and not self.busy and self.awaiting:
                    self.progress.show()
                    await_any_gate(self.waiting(), attempt, self.describe_wait())
                    attempt += 1  # reached only when Prefect already held an answer for this key
            elif kind is Work.UPGRADE:
                self.upgraded(element, future)
            elif kind is Work.OPEN_GATE:
                self.opening.discard(element)
                gate: GateRead = future.result()
                self.gates[element] = gate
                if gate.closed:
                    self.conclude(element, gate)
                else:
                    self.awaiting[element] = gate
                self.show()
            else:
                self.concluded(element, future)

    def start_upgrades(self) -> None:
        slots = min(self.plan.max_parallel, UPGRADE_SLOTS)
        while self.queue and len(self.upgrading) < slots:
            name = self.queue.pop(0)
            self.upgrading.add(name)
            self.track(
                Work.UPGRADE,
                name,
                upgrade_element.submit(
                    self.window_id, name, self.operators[name], self.plan.window.deadline_at
                ),
            )

    def upgraded(self, element: str, future: PrefectFuture[UpgradeResult]) -> None:
        self.upgrading.discard(element)
        try:
            result = future.result()
        except Exception as exc:  # the element's state is unknown: roll back, never leave it (UPG-10)
            result = UpgradeResult(
                element=element, status=UpgradeStatus.STEP_FAILED, note=f"upgrade broke off: {exc}"
            )
        if result.status is UpgradeStatus.AWAIT_DECISION:
            spec = _decision_spec(self.plan, element, result)
            self.specs[element] = spec
            self.opening.add(element)
            self.track(Work.OPEN_GATE, element, open_gate.submit(self.window_id, self.run_id, spec))
        elif result.status is UpgradeStatus.STEP_FAILED:
            get_run_logger().warning("%s: %s — rolling back (UPG-10)", element, result.note)
            self.start_conclusion(element, Decision.ROLLBACK, "system:step-failed", "system")
        self.show()

    def conclude(self, element: str, gate: GateRead) -> None:
        """Carry out a recorded decision (UPG-9, UPG-11)."""
        signature = gate.signatures[-1]
        self.start_conclusion(
            element, Decision(gate.outcome or Decision.ROLLBACK), signature.signer, signature.door
        )

    def start_conclusion(self, element: str, decision: Decision, by: str, door: str) -> None:
        if element in self.taken:
            return
        self.taken.add(element)
        self.concluding.add(element)
        self.track(
            Work.CONCLUDE,
            element,
            conclude_element.submit(
                self.window_id, element, self.operators[element], decision.value, by, door
            ),
        )

    def concluded(self, element: str, future: PrefectFuture[str]) -> None:
        self.concluding.discard(element)
        try:
            future.result()
        except Exception as exc:
            get_run_logger().error("%s: the conclusion broke off: %s", element, exc)
            record_element_failure(self.window_id, element, f"conclusion broke off: {exc}")
        self.show()

    def show(self, force: bool = False) -> None:
        """The progress in the Prefect UI: within a second of a decision, else every 2 s — both
        stretched for big windows (the element table is a new artifact version each time)."""
        every = (1.0 if force else 2.0) * max(1.0, len(self.names) / 200)
        if time.monotonic() - self.shown_at > every:
            self.progress.show()
            self.shown_at = time.monotonic()

    def waiting(self) -> list[tuple[GateRead, GateSpec]]:
        return [
            (gate, self.specs.get(name) or _waiting_spec(self.plan, name))
            for name, gate in self.awaiting.items()
        ]

    def describe_wait(self) -> str:
        """The open-gates form's text: the reasons of answers just refused here, then a link to
        each gate's page in the workspace, where the PM decides signed in (or the CLI)."""
        deadline = f"{self.plan.window.deadline:%H:%M} ({self.plan.window.timezone})"
        lines = "\n".join(
            f"- [**{name}** — decide gate `{gate.key}` in siteflow's workspace]({gate_page(gate.id)}), or "
            f"`siteflow gates decide {gate.id} --decision commit|rollback`"
            for name, gate in self.awaiting.items()
        )
        refused = "".join(f"{reason}\n\n" for reason in self.refusals)
        return (
            (f"{refused}---\n\n" if refused else "") + f"{lines}\n\n"
            "The Prefect UI cannot tell who pressed Resume, so it takes no signature: decide each element "
            "signed in in the workspace, or at the CLI; an answer given here is refused and this form "
            f"opens again.\n\n## Commit or roll back — {len(self.awaiting)} element(s) wait "
            f"(UPG-8 … UPG-10)\n\nCommit is refused when an element's success criteria failed. At "
            f"{deadline} every undecided element is rolled back by system:deadline. Any decision "
            "recorded in siteflow resumes this run."
        )


class Work(enum.Enum):
    UPGRADE = "upgrade"
    OPEN_GATE = "open-gate"
    CONCLUDE = "conclude"
    WATCH = "watch"


def _waiting_spec(plan: UpgradePlanIn, element: str) -> GateSpec:
    """The decision gate's spec for the form when this re-run did not open it itself."""
    return _decision_spec(plan, element, UpgradeResult(element=element, status=UpgradeStatus.AWAIT_DECISION))


def _finish(window_id: str, plan: UpgradePlanIn, progress: Progress) -> dict[str, str]:
    progress.show()
    issue_upgrade_report(window_id)
    outcomes = finish_window(window_id)
    get_run_logger().info("window %s: %s", window_id, outcomes)
    return outcomes
