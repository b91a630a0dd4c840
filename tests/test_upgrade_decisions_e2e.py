"""Upgrade windows always finish and act on each decision at once (issue #8, UPG-8 … UPG-11).

On a real stack (Prefect server, served deployments, gate keeper, web service, SMTP catcher):
- the window of two elements that used to stay Suspended for good — both committed by the
  real CLI while the run waits — completes;
- property-based (hypothesis): windows of 2–6 simulated elements with random step outcomes
  and a random schedule of decisions — door (CLI, email link, Prefect UI — refused —, none), moment (at
  once, a little later, after the run suspended, racing the deadline just before or just
  after it) — always complete with exactly the decisions that were made (or the deadline
  default), each element concluded soon after its own decision, and no keeper loop.

Examples are few in CI (SITEFLOW_PROPERTY_EXAMPLES, default 3: each is a real window of
about a minute); `python -m benchmarks.upgrade_soak` runs many more.
"""

from __future__ import annotations

import enum
import os
import re
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from siteflow.decisions import Signer
from tests.cli_user import logged_in, run
from tests.conftest import StackHandle
from tests.test_email_approval_e2e import wait_for_link
from tests.test_upgrade_e2e import PM, open_gate, run_state, sample_plan, wait_for

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent
SCALE = 0.01  # a 120 s reboot takes 1.2 s
LINGER = 2.0  # the run suspends 2 s after its last element's work ended
PM_NAME, PM_EMAIL = "Huang Min", "huang.min@contractor.example"
EXAMPLES = int(os.environ.get("SITEFLOW_PROPERTY_EXAMPLES", "2"))
SIGNERS = {"cli": PM, "email": PM}


def decisions_stack(stack_factory: Any) -> StackHandle:
    handle: StackHandle = stack_factory(
        "sqlite", "decisions", simulator_time_scale=SCALE, window_linger_seconds=LINGER
    )
    return handle


def paused(run_id: str) -> bool:
    return run_state(run_id) == "PAUSED"


def window_row(window_id: str) -> Any:
    from siteflow.queries import list_windows

    return list_windows(window_id)[0]


def keeper_loop_lines(handle: StackHandle, run_id: str) -> list[str]:
    """Keeper log lines about this run that would repeat if it looped on it."""
    log = handle.settings.home / "logs" / "gate-keeper.log"
    text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    return [
        line for line in text.splitlines() if run_id in line and ("refused" in line or "moved on" in line)
    ]


def cli_decide(handle: StackHandle, gate_id: str, decision: str) -> subprocess.CompletedProcess[str]:
    """The PM at their own machine: logged in once per stack, then `siteflow gates decide`."""
    config = handle.settings.home / "pm-cli"
    with handle.active():
        if not (config / "credentials.json").exists():
            signer = Signer.parse(PM)
            logged_in(config, signer.name, signer.email)
        return run(config, "gates", "decide", gate_id, "--decision", decision)


def test_two_elements_committed_early_by_the_cli_complete(stack_factory: Any) -> None:
    """The landed defect: both decision gates committed by CLI while the run waited at the
    first one's pause; the resume named the other gate and the run stayed Suspended."""
    handle = decisions_stack(stack_factory)
    window_id = f"UPG-TWO-{int(time.time()) % 100000}"
    plan = sample_plan(
        window_id, timedelta(minutes=4), {"NE-A": {"step_seconds": 0.05}, "NE-B": {"step_seconds": 0.05}}
    )
    from siteflow.launch import start_due_windows
    from tasks.upgrade_records import register_window

    with handle.active():
        register_window(plan)
        start_due_windows(until=None, only=window_id)
        go = wait_for("go/no-go", lambda: open_gate(window_id, "go-no-go"))
        from tests.test_upgrade_e2e import decide

        decide(go.id, "go", {"tools_ready": True})
        gates = [
            wait_for(f"{n}'s gate", lambda n=n: open_gate(window_id, f"decision-{n}"), 120)
            for n in ("ne-a", "ne-b")
        ]
        row = window_row(window_id)
        wait_for("the run to wait at its gates", lambda: paused(str(row.flow_run_id)), 60)
        for gate in reversed(gates):  # the second element first: the order that used to wedge
            done = cli_decide(handle, gate.id, "commit")
            assert done.returncode == 0, done.stderr
            assert "recorded: commit" in done.stdout
        finished = wait_for(
            "the window to complete",
            lambda: window_row(window_id).state == "completed" and window_row(window_id),
            120,
        )
        wait_for("the run to end", lambda: run_state(str(finished.flow_run_id)) != "RUNNING", 60)
        assert run_state(str(finished.flow_run_id)) == "COMPLETED"
        assert {e["element"]: (e["outcome"], e["decided_by"]) for e in finished.elements} == {
            "NE-A": ("committed", PM),
            "NE-B": ("committed", PM),
        }
        assert keeper_loop_lines(handle, str(finished.flow_run_id)) == []


# --- the property ----------------------------------------------------------------------


class Health(enum.StrEnum):
    PASSES = "passes"
    FAILS_TEST = "fails-test"  # ospf: the success criteria are not met (commit refused)
    FAILS_STEP = "fails-step"  # set-startup fails: rolled back without asking (UPG-10)


class Door(enum.StrEnum):
    CLI = "cli"
    EMAIL = "email"
    UI = "ui"
    NONE = "none"  # nobody answers: the deadline decides


class Moment(enum.StrEnum):
    AT_ONCE = "at-once"
    LATER = "later"  # a few seconds after the gate opened, while others still work
    SUSPENDED = "suspended"  # once the run has suspended
    JUST_BEFORE = "just-before"  # stamped 0.2 s before the deadline, arriving after it
    JUST_AFTER = "just-after"  # stamped 0.5 s after the deadline: refused


@dataclass(frozen=True)
class Plan:
    health: Health
    door: Door
    decision: str
    moment: Moment
    delay: float

    def expected(self) -> tuple[str, str]:
        """(outcome, decided by) this element must end with."""
        if self.health is Health.FAILS_STEP:
            return "rolled-back", "system:step-failed"
        if self.door in (Door.NONE, Door.UI) or self.moment is Moment.JUST_AFTER:
            return "rolled-back", "system:deadline"  # the Prefect UI signs nothing (issue #9)
        return ("committed" if self.decision == "commit" else "rolled-back"), PM


@st.composite
def element_plan(draw: st.DrawFn) -> Plan:
    health = draw(st.sampled_from(list(Health)))
    door = draw(st.sampled_from(list(Door)))
    decision = "rollback" if health is not Health.PASSES else draw(st.sampled_from(["commit", "rollback"]))
    moments = [Moment.SUSPENDED] if door is Door.UI else list(Moment)
    if door is not Door.CLI:  # racing the deadline needs a stamp set by the caller
        moments = [m for m in moments if m not in (Moment.JUST_BEFORE, Moment.JUST_AFTER)]
    moment = draw(st.sampled_from(moments))
    return Plan(health, door, decision, moment, draw(st.floats(0.5, 4.0)))


windows = st.lists(element_plan(), min_size=2, max_size=6)


def _simulation(p: Plan) -> dict[str, Any]:
    sim: dict[str, Any] = {"step_seconds": 0.05}
    if p.health is Health.FAILS_TEST:
        sim["fail_tests"] = ["ospf"]
    if p.health is Health.FAILS_STEP:
        sim["fail_steps"] = ["set-startup"]
    return sim


def _decide_by_email(handle: StackHandle, window_id: str, element: str, decision: str) -> None:
    link = wait_for_link(handle.settings.mail_dir, PM_EMAIL, f"Commit or roll back {element}")
    page = httpx.get(link, timeout=30)
    token = re.search(r'name="form_token" value="([^"]+)"', page.text)
    assert token, page.text[:500]
    done = httpx.post(
        link, data={"decision": decision, "signer_name": PM_NAME, "form_token": token.group(1)}, timeout=30
    )
    assert done.status_code == 200, done.text[:500]


def _decide_in_ui(run_id: str, gate_key: str, decision: str) -> bool:
    """What pressing Resume in the Prefect UI sends: the open-gates form's answer. False when
    the run was no longer paused (another door's decision resumed it first): as a person
    would, the caller answers again once the run waits again."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        response = client.resume_flow_run(
            UUID(run_id),
            run_input={
                "gate": gate_key,
                "decision": decision,
                "signer_name": PM_NAME,
                "signer_email": PM_EMAIL,
            },
        )
    if response.status.value == "REJECT" and "schema not found" in str(response.details):
        return False  # caught between two pauses (the refused answer's re-run): answer again
    assert response.status.value in ("ACCEPT", "ABORT"), response.details
    return bool(response.status.value == "ACCEPT")


def _decide_by_cli(gate_id: str, decision: str, at: datetime | None = None) -> None:
    from siteflow.decisions import DecisionRefused, Signer, decide
    from siteflow.stand_in_signers import proven

    try:
        decide(
            proven(gate_id, decision, Signer.parse(PM))
            if at is None
            else proven(gate_id, decision, Signer.parse(PM), at=at)
        )
    except DecisionRefused as refused:
        assert at is not None and "too late" in refused.reason, refused.reason


def _conclusion_started(window_id: str, element: str) -> datetime | None:
    """When the element's decision began to be carried out: its first rollback command, or
    the commit's completion record."""
    from models.audit import AuditEvent
    from models.upgrade import JournalEntry, Stage
    from siteflow.db import read_scope

    with read_scope() as session:
        first = session.execute(
            select(JournalEntry.started_at)
            .where(
                JournalEntry.window_id == window_id,
                JournalEntry.element == element,
                JournalEntry.stage == Stage.ROLLBACK.value,
            )
            .order_by(JournalEntry.started_at)
            .limit(1)
        ).scalar_one_or_none()
        if first is not None:
            return first
        done = session.execute(
            select(AuditEvent.at, AuditEvent.payload).where(
                AuditEvent.stream == window_id, AuditEvent.kind == "element.done"
            )
        ).all()
    for at, payload in done:
        if f'"element":"{element}"' in payload:
            return datetime.fromisoformat(at)
    return None


def _who(decided_by: str) -> str:
    """`system:deadline <deadline@system.siteflow>` → `system:deadline`; a person stays whole."""
    return decided_by.split(" ")[0] if decided_by.startswith("system:") else decided_by


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: each example is a real window
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plans=windows)
def test_any_schedule_of_decisions_completes_the_window(stack_factory: Any, plans: list[Plan]) -> None:
    from models.gate import Gate, GateAttempt, GateDecision
    from siteflow.db import read_scope
    from siteflow.launch import start_due_windows
    from tasks.upgrade_records import register_window

    handle = decisions_stack(stack_factory)
    stamp = int(time.time() * 1000) % 10**9
    window_id = f"UPG-P-{stamp}"
    names = [f"N{stamp}-{i}" for i in range(len(plans))]  # a replayed example overlaps nothing
    by_name = dict(zip(names, plans, strict=True))
    plan = sample_plan(window_id, timedelta(seconds=50), {n: _simulation(p) for n, p in by_name.items()})
    deadline = plan.window.deadline_at
    with handle.active():
        register_window(plan)
        start_due_windows(until=None, only=window_id)
        go = wait_for("go/no-go", lambda: open_gate(window_id, "go-no-go"))
        from tests.test_upgrade_e2e import decide

        decide(go.id, "go", {"tools_ready": True})
        run_id = str(window_row(window_id).flow_run_id)
        opened: dict[str, float] = {}
        answered_in_ui: dict[str, datetime] = {}
        pending = {
            n: p for n, p in by_name.items() if p.health is not Health.FAILS_STEP and p.door is not Door.NONE
        }
        limit = time.monotonic() + 150
        while time.monotonic() < limit:
            row = window_row(window_id)
            if row.state == "completed":
                break
            now = datetime.now(UTC)
            for name, p in list(pending.items()):
                gate = open_gate(window_id, f"decision-{name.lower()}")
                if gate is None:
                    continue
                opened.setdefault(name, time.monotonic())
                due = {
                    Moment.AT_ONCE: True,
                    Moment.LATER: time.monotonic() - opened[name] >= p.delay,
                    Moment.SUSPENDED: paused(run_id),
                    Moment.JUST_BEFORE: now >= deadline + timedelta(seconds=0.3),
                    Moment.JUST_AFTER: now >= deadline + timedelta(seconds=0.5),
                }[p.moment]
                if not due:
                    continue
                if p.door is Door.UI:
                    if _decide_in_ui(run_id, gate.key, p.decision):
                        del pending[name]
                        answered_in_ui[name] = datetime.now(UTC)
                    continue
                del pending[name]
                if p.door is Door.EMAIL:
                    _decide_by_email(handle, window_id, name, p.decision)
                elif p.moment is Moment.JUST_BEFORE:
                    _decide_by_cli(gate.id, p.decision, at=deadline - timedelta(seconds=0.2))
                elif p.moment is Moment.JUST_AFTER:
                    _decide_by_cli(gate.id, p.decision, at=deadline + timedelta(seconds=0.5))
                else:
                    _decide_by_cli(gate.id, p.decision)
            time.sleep(0.1)
        row = window_row(window_id)
        assert row.state == "completed", (plans, row.elements)
        wait_for("the run to end", lambda: run_state(run_id) in ("COMPLETED", "FAILED", "CRASHED"), 60)
        assert run_state(run_id) == "COMPLETED"  # the window row is completed just before the run
        outcomes = {e["element"]: (e["outcome"], _who(e["decided_by"] or "")) for e in row.elements}
        assert outcomes == {n: p.expected() for n, p in by_name.items()}, (plans, row.elements)
        with read_scope() as session:
            gates = {
                g.key: g for g in session.execute(select(Gate).where(Gate.subject == window_id)).scalars()
            }
            for name, p in by_name.items():
                gate = gates.get(f"decision-{name.lower()}")
                if p.health is Health.FAILS_STEP:
                    assert gate is None  # never asked: rolled back at once
                    continue
                assert gate is not None and gate.decided_at is not None
                signatures = (
                    session.execute(select(GateDecision).where(GateDecision.gate_id == gate.id))
                    .scalars()
                    .all()
                )
                assert len(signatures) == 1  # exactly the decision made, once
                given = answered_in_ui.get(name)
                if given is not None and given + timedelta(seconds=5) < gate.decided_at:
                    # the answer in the Prefect UI reached the run while the gate was open: refused
                    tried = session.execute(
                        select(GateAttempt).where(
                            GateAttempt.gate_id == gate.id, GateAttempt.door == "prefect-ui"
                        )
                    ).scalars()
                    assert [(a.accepted, a.reason.split(",")[0]) for a in tried] == [
                        (False, "the Prefect UI cannot prove who pressed Resume")
                    ], (name, plans)
                if p.expected()[1] == "system:deadline":
                    assert gate.decided_at >= deadline  # late rather than early
                started = _conclusion_started(window_id, name)
                assert started is not None
                # acted on at once: within the linger, a resume and a re-run — not after the others
                assert started - gate.decided_at < timedelta(seconds=LINGER + 15), (name, plans)
        assert keeper_loop_lines(handle, run_id) == []
