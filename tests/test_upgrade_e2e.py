"""One upgrade window on real parts (docs/process.md §2, UPG-1 … UPG-11).

Three simulated elements: the first passes and the PM commits it; the second fails a test
and the PM rolls it back (a commit is refused first: criteria not met); the third gets no
answer and is rolled back by `system:deadline`. On the way siteflow is stopped in the middle
of a step and started again (UPG-5: no step runs twice, the interrupted one is reconciled),
and stopped again across the deadline (it fires once when siteflow is back).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import yaml
from sqlalchemy import select

from models.upgrade_plan import UpgradePlanIn, resolve_runbook
from tests.conftest import StackHandle

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.e2e
PM = "Huang Min <huang.min@contractor.example>"
SCALE = 0.02  # simulated time: a 120 s reboot takes 2.4 s


def sample_plan(window_id: str, deadline_in: timedelta, elements: dict[str, dict[str, Any]]) -> UpgradePlanIn:
    from siteflow.upgrade_demo import starting_now

    raw = yaml.safe_load((ROOT / "examples" / "upgrade-plan.yaml").read_text(encoding="utf-8"))
    raw = resolve_runbook(raw, ROOT / "examples")
    simulated = {name: {"simulation": sim} for name, sim in elements.items()}
    return UpgradePlanIn.model_validate(starting_now(raw, window_id, deadline_in, simulated))


def wait_for(what: str, check: Any, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def open_gate(window_id: str, key: str) -> Any:
    from siteflow.queries import list_gates

    return next((g for g in list_gates(window_id) if g.key == key), None)


def decide(gate_id: str, decision: str, data: dict[str, Any] | None = None) -> Any:
    from siteflow.decisions import Signer, decide
    from siteflow.stand_in_signers import proven

    return decide(proven(gate_id, decision, Signer.parse(PM), data=data))


def journal_running(window_id: str, element: str, item: str) -> bool:
    from models.upgrade import JournalEntry
    from siteflow.db import session_scope

    with session_scope() as session:
        rows = session.execute(
            select(JournalEntry.result).where(
                JournalEntry.window_id == window_id,
                JournalEntry.element == element,
                JournalEntry.item == item,
            )
        ).scalars()
        return "running" in list(rows)


def run_state(run_id: str) -> str:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(UUID(run_id)).state
    return state.type.value if state else ""


def test_window_commit_rollback_deadline_with_kill_and_restart(stack_factory: Any, tmp_path: Path) -> None:
    from siteflow.decisions import DecisionRefused
    from siteflow.elements.simulator import state_path
    from siteflow.launch import start_due_windows
    from siteflow.queries import list_windows
    from tasks.upgrade_records import register_window

    handle: StackHandle = stack_factory("sqlite", "upgrade", simulator_time_scale=SCALE)
    window_id = "UPG-E2E-1"
    plan = sample_plan(
        window_id,
        timedelta(seconds=90),  # the gates are decided about 30 s in; then the deadline is awaited
        {
            "NE-A": {"step_seconds": 0.5, "reboot_seconds": 400},  # killed during its reboot (8 s)
            "NE-B": {"step_seconds": 0.5, "fail_tests": ["ospf"]},
            "NE-C": {"step_seconds": 0.5},
        },
    )
    with handle.active():
        register_window(plan)
        assert start_due_windows(until=None, only=window_id) == [window_id]
        go = wait_for("the go/no-go gate", lambda: open_gate(window_id, "go-no-go"))
        with pytest.raises(DecisionRefused, match="tools and vehicles"):
            decide(go.id, "go", {"tools_ready": False})
        assert decide(go.id, "go", {"tools_ready": True}).complete

        # UPG-5: kill siteflow (every process, the run's too) while NE-A reboots; start it again
        wait_for("NE-A's reboot", lambda: journal_running(window_id, "NE-A", "reboot"), timeout=120)
        handle.stack.kill()  # type: ignore[attr-defined]
        handle.stack.start()  # type: ignore[attr-defined]

        gates = {
            name: wait_for(
                f"{name}'s decision gate", lambda n=name: open_gate(window_id, f"decision-{n.lower()}"), 120
            )
            for name in ("NE-A", "NE-B", "NE-C")
        }
        decide(gates["NE-A"].id, "commit")
        with pytest.raises(DecisionRefused, match="success criterion ospf did not pass"):
            decide(gates["NE-B"].id, "commit")
        decide(gates["NE-B"].id, "rollback")

        # Nobody answers for NE-C; siteflow is down when the deadline passes
        handle.stack.stop()  # type: ignore[attr-defined]
        lateness_floor = (plan.window.deadline_at - datetime.now(UTC)).total_seconds()
        time.sleep(max(0.0, lateness_floor) + 2)
        handle.stack.start()  # type: ignore[attr-defined]

        row = wait_for(
            "the window to complete",
            lambda: next((w for w in list_windows(window_id) if w.state == "completed"), None),
            180,
        )
        wait_for("the run to end", lambda: run_state(str(row.flow_run_id)) != "RUNNING", 60)
        assert run_state(str(row.flow_run_id)) == "COMPLETED"  # the window row completes just before
        outcomes = {e["element"]: e for e in row.elements}
        assert outcomes["NE-A"]["outcome"] == "committed" and outcomes["NE-A"]["decided_by"] == PM
        assert outcomes["NE-A"]["version_after"] == plan.target_version
        assert outcomes["NE-B"]["outcome"] == "rolled-back" and outcomes["NE-B"]["decided_by"] == PM
        assert outcomes["NE-C"]["outcome"] == "rolled-back"
        assert outcomes["NE-C"]["decided_by"].startswith("system:deadline")
        for name in ("NE-B", "NE-C"):  # UPG-11: compared with the pre-upgrade snapshot
            assert outcomes[name]["differences"] == [], outcomes[name]
            assert outcomes[name]["version_after"] == plan.elements[0].software_version

        # UPG-5: every command the element received, exactly once per journal item
        executions = json.loads(state_path(handle.settings.home, window_id, "NE-A").read_text())["executions"]
        for step in ("download", "set-startup", "reboot"):
            assert executions[step] == 1, executions
        from models.upgrade import JournalEntry
        from siteflow.db import session_scope

        with session_scope() as session:
            reboot = session.execute(
                select(JournalEntry).where(JournalEntry.element == "NE-A", JournalEntry.item == "reboot")
            ).scalar_one()
            assert reboot.result == "reconciled", reboot.note

        # The deadline fired once, late rather than early
        from models.gate import Gate, GateAttempt, GateDecision

        with session_scope() as session:
            gate = session.execute(
                select(Gate).where(Gate.subject == window_id, Gate.key == "decision-ne-c")
            ).scalar_one()
            decisions = (
                session.execute(select(GateDecision).where(GateDecision.gate_id == gate.id)).scalars().all()
            )
            attempts = (
                session.execute(select(GateAttempt).where(GateAttempt.gate_id == gate.id)).scalars().all()
            )
            assert [d.door for d in decisions] == ["system"] and len(attempts) == 1
            assert gate.deadline is not None and decisions[0].decided_at >= gate.deadline

        from models.outbox import OutboxMessage

        with session_scope() as session:  # UPG-7: the upgrade guide was told of NE-B's failed test
            told = session.execute(
                select(OutboxMessage.recipient).where(
                    OutboxMessage.dedup_key.startswith(f"notice:{window_id}:unexpected-test:NE-B")
                )
            ).scalars()
            assert any("guo.jie@vendor.example" in r for r in told)

        from siteflow import audit_report

        report = audit_report.build(window_id)
        assert report["chain"]["verified"], report["chain"]["problems"]
        assert any(d["kind"] == "upgrade-report" for d in report["documents"])
