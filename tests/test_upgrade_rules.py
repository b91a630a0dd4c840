"""Upgrade rules on real databases (SQLite and PostgreSQL) and the simulator, without a
Prefect server: deadlines in local time, planning refusals, the go/no-go evidence (UPG-1 …
UPG-3), the deadline default (UPG-10) and the step journal's reconciliation (UPG-5)."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select

from models.upgrade_plan import DeadlineDay, UpgradePlanIn, WindowIn, local_to_utc, resolve_runbook
from siteflow.stand_in_signers import proven

ROOT = Path(__file__).resolve().parent.parent
PM = "Huang Min <huang.min@contractor.example>"


def booking_day() -> datetime:
    """The clock the example plans (nights from 2026-12-03 on) are booked by: before their
    deadlines, so booking them is not refused once the real date has passed them (UPG-8)."""
    return datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def plan(window_id: str, **changes: Any) -> UpgradePlanIn:
    raw = resolve_runbook(
        yaml.safe_load((ROOT / "examples" / "upgrade-plan.yaml").read_text()), ROOT / "examples"
    )
    raw["id"] = window_id
    for element in raw["elements"]:
        element["simulation"] = {"step_seconds": 0, "reboot_seconds": 0}
    for key, value in changes.items():
        raw[key] = value(raw[key]) if callable(value) else value
    return UpgradePlanIn.model_validate(raw)


# --- deadlines in the site's local time -------------------------------------------------


def test_shanghai_window_converts_to_utc_and_crosses_midnight() -> None:
    w = WindowIn(date=date(2026, 12, 3), start=time(0, 30), deadline=time(4, 0), timezone="Asia/Shanghai")
    assert w.starts_at == datetime(2026, 12, 2, 16, 30, tzinfo=UTC)
    assert w.deadline_at == datetime(2026, 12, 2, 20, 0, tzinfo=UTC)
    late = WindowIn(
        date=date(2026, 12, 3), start=time(23, 0), deadline_day=DeadlineDay.NEXT, timezone="Asia/Shanghai"
    )
    assert late.deadline_at == datetime(2026, 12, 3, 20, 0, tzinfo=UTC)  # 04:00 the next morning


def test_a_deadline_before_the_start_is_refused_unless_the_next_day_is_stated() -> None:
    with pytest.raises(ValueError, match="set deadline_day: next for 04:00 on 2026-12-04"):
        WindowIn(date=date(2026, 12, 3), start=time(23, 0), timezone="Asia/Shanghai")


def test_dst_change_nights_resolve_late_rather_than_early() -> None:
    # 02:30 does not exist on 2027-03-14 in New York (clocks jump 02:00 → 03:00): the later
    # instant, 03:30 EDT, is taken, never 01:30 EST.
    assert local_to_utc(date(2027, 3, 14), time(2, 30), "America/New_York") == datetime(
        2027, 3, 14, 7, 30, tzinfo=UTC
    )
    # 01:30 happens twice on 2026-11-01 (EDT, then EST): the second one.
    assert local_to_utc(date(2026, 11, 1), time(1, 30), "America/New_York") == datetime(
        2026, 11, 1, 6, 30, tzinfo=UTC
    )
    w = WindowIn(date=date(2027, 3, 28), start=time(0, 30), deadline=time(4, 0), timezone="Europe/Berlin")
    assert (w.deadline_at - w.starts_at) == timedelta(hours=2, minutes=30)  # the night is an hour short


def test_a_bad_window_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        WindowIn(date=date(2026, 12, 3), timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="not of the runbook's type"):
        plan("UPG-BAD-1", elements=lambda els: [{**els[0], "model": "ATN910"}])
    with pytest.raises(ValueError, match="upgrade PM"):
        plan("UPG-BAD-2", contacts=lambda cs: [c for c in cs if c["role"] != "pm"])


# --- planning ---------------------------------------------------------------------------


def test_overlap_and_blackout_are_refused_when_planned(
    database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from siteflow.settings import reset_settings
    from tasks.upgrade_records import PlanRefused, register_window

    assert register_window(plan("UPG-P-1"), clock=booking_day).window_id == "UPG-P-1"
    again = register_window(plan("UPG-P-1", title="moved operator"), clock=booking_day)
    assert again.window_id == "UPG-P-1" and again.replanned  # replanned while booked
    with pytest.raises(PlanRefused, match="overlaps window UPG-P-1 .* on GZ-CR-01"):
        register_window(plan("UPG-P-2", elements=lambda els: els[:1]), clock=booking_day)
    other_night = plan("UPG-P-3", window=lambda w: {**w, "date": "2026-12-04"})
    assert register_window(other_night, clock=booking_day).window_id == "UPG-P-3"

    monkeypatch.setenv("SITEFLOW_BLACKOUT_CALENDAR", str(ROOT / "examples" / "blackout-calendar.yaml"))
    reset_settings()
    with pytest.raises(PlanRefused, match=r"2027-02-18 is a blackout date \(Spring Festival"):
        register_window(plan("UPG-P-4", window=lambda w: {**w, "date": "2027-02-18"}), clock=booking_day)
    broken = tmp_path / "broken.yaml"
    broken.write_text("- {start: not-a-date}\n")
    monkeypatch.setenv("SITEFLOW_BLACKOUT_CALENDAR", str(broken))
    reset_settings()
    with pytest.raises(PlanRefused, match="cannot read the blackout calendar"):
        register_window(plan("UPG-P-5", window=lambda w: {**w, "date": "2027-05-05"}), clock=booking_day)


# --- go / no-go evidence (UPG-1 … UPG-3) -------------------------------------------------


def prepare_go_gate(p: UpgradePlanIn) -> str:
    """Book, pre-check every element and open the go gate, as the flow does."""
    from flows.version_upgrade import _go_spec
    from tasks.gates import open_gate
    from tasks.upgrade_records import register_window, start_window
    from tasks.upgrade_steps import precheck_element, record_operator_checks

    register_window(p, clock=booking_day)
    start_window.fn(p.id, f"run-{p.id}")
    for i, element in enumerate(p.elements):
        precheck_element.fn(p.id, element.name, p.operators[i % len(p.operators)].name)
    record_operator_checks(p.id, p)
    # the gate as the decision path sees it, go included, so its own refusal is tested too
    gate = open_gate.fn(p.id, "", _go_spec(p, []))  # no run to resume here
    return gate.id


def go(gate_id: str, data: dict[str, Any] | None = None) -> Any:
    from siteflow.decisions import Signer, decide
    from siteflow.stand_in_signers import proven

    return decide(proven(gate_id, "go", Signer.parse(PM), data=data or {"tools_ready": True}))


@pytest.mark.parametrize(
    ("defect", "reason"),
    [
        ("no-backup", "Backup verified by checksum"),
        ("incompatible", "supports hardware CR57LPUE"),
        ("unqualified", "operator Lin Tao lacks the qualification 'NE40E-upgrade'"),
    ],
)
def test_go_is_refused_for_each_missing_piece_of_evidence(
    database_url: str, defect: str, reason: str
) -> None:
    from siteflow.decisions import DecisionRefused

    def change(els: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if defect == "no-backup":
            els[0]["simulation"]["corrupt_backup"] = True
        if defect == "incompatible":
            els[0]["hardware_version"] = "CR57LPUE"
        return els

    def operators(ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if defect == "unqualified":
            ops[1]["qualifications"] = []
        return ops

    p = plan(f"UPG-GO-{defect.upper()}", elements=change, operators=operators)
    gate_id = prepare_go_gate(p)
    from flows.version_upgrade import _go_spec
    from tasks.upgrade_report import precheck_failures

    offered = _go_spec(p, precheck_failures(p.id)).decisions  # what the flow's form offers
    assert [d.value for d in offered] == (["go", "no-go"] if defect == "unqualified" else ["no-go"])
    with pytest.raises(DecisionRefused, match=reason):
        go(gate_id)
    if defect == "unqualified":  # UPG-2: replaced by a qualified operator, go is accepted
        replacement = {
            "replaces": "Lin Tao",
            "name": "Wu Gang",
            "email": "wu.gang@contractor.example",
            "qualifications": ["NE40E-upgrade"],
        }
        assert go(gate_id, {"tools_ready": True, "replacements": [replacement]}).complete


def test_go_is_accepted_when_every_check_passed(database_url: str) -> None:
    gate_id = prepare_go_gate(plan("UPG-GO-CLEAN"))
    result = go(gate_id)
    assert result.complete and result.outcome == "go"


# --- the deadline default (UPG-10) --------------------------------------------------------


def open_decision_gate(window_id: str, deadline: datetime, key: str = "decision-gz-cr-01") -> str:
    from models.gate_spec import Decision, GateKind, GateSpec, Party
    from models.project_input import Role
    from models.upgrade import UpgradeWindow
    from siteflow.db import session_scope
    from tasks.gates import open_gate
    from tasks.upgrade_records import register_window

    with session_scope() as session:
        booked = session.get(UpgradeWindow, window_id) is not None
    if not booked:
        register_window(plan(window_id), clock=booking_day)
    spec = GateSpec(
        key=key,
        kind=GateKind.ROLLBACK_DECISION,
        rule="UPG-10",
        title="Commit or roll back GZ-CR-01",
        parties=[Party(slot="pm", roles=[Role.PM])],
        decisions=[Decision.COMMIT, Decision.ROLLBACK],
        deadline=deadline,
        default_decision=Decision.ROLLBACK,
    )
    return open_gate.fn(window_id, "", spec).id  # no run to resume here


def test_deadline_fires_late_never_early_and_once(database_url: str) -> None:
    from models.gate import GateAttempt, GateDecision
    from siteflow.db import session_scope
    from siteflow.deadlines import enforce_deadlines

    deadline = datetime(2026, 12, 2, 20, 0, tzinfo=UTC)
    gate_id = open_decision_gate("UPG-DL-1", deadline)
    now = timedelta(0)  # no grace: this test is about the enforcer firing at the deadline itself
    assert enforce_deadlines(clock=lambda: deadline - timedelta(milliseconds=1), grace=now) == []
    barrier = threading.Barrier(4)
    fired: list[list[str]] = []

    def keeper() -> None:  # several keepers racing at the deadline
        barrier.wait()
        late = deadline + timedelta(milliseconds=5)
        fired.append([r.gate_id for r in enforce_deadlines(clock=lambda: late, grace=now)])

    threads = [threading.Thread(target=keeper) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(len(f) for f in fired)[-1] == 1 and sum(len(f) for f in fired) == 1
    with session_scope() as session:
        decisions = (
            session.execute(select(GateDecision).where(GateDecision.gate_id == gate_id)).scalars().all()
        )
        assert [(d.decision, d.signer_name, d.door) for d in decisions] == [
            ("rollback", "system:deadline", "system")
        ]
        assert decisions[0].decided_at >= deadline
        accepted = session.execute(
            select(func.count()).where(GateAttempt.gate_id == gate_id, GateAttempt.accepted.is_(True))
        ).scalar_one()
        assert accepted == 1
    assert enforce_deadlines(clock=lambda: deadline + timedelta(hours=1)) == []


def test_a_person_before_the_deadline_wins_and_the_system_cannot_decide_early(database_url: str) -> None:
    from models.gate_spec import Door
    from siteflow.deadlines import enforce_deadlines
    from siteflow.decisions import (
        DEADLINE_ACTOR,
        DEADLINE_SIGNER_EMAIL,
        DecisionRefused,
        DecisionRequest,
        Signer,
        deadline_request,
        decide,
    )

    deadline = datetime.now(UTC) + timedelta(hours=1)
    gate_id = open_decision_gate("UPG-DL-2", deadline)
    with pytest.raises(DecisionRefused, match="has not passed yet"):
        decide(deadline_request(gate_id, "rollback", datetime.now(UTC)))
    with pytest.raises(DecisionRefused, match="a request from outside it is refused"):  # no system proof
        decide(
            DecisionRequest(
                gate_id=gate_id,
                decision="rollback",
                signer=Signer(DEADLINE_ACTOR, DEADLINE_SIGNER_EMAIL),
                door=Door.SYSTEM,
                at=deadline + timedelta(seconds=5),
            )
        )
    decide(proven(gate_id, "rollback", Signer.parse(PM)))
    assert enforce_deadlines(clock=lambda: deadline + timedelta(seconds=1)) == []


def _person(gate_id: str, at: datetime) -> Any:
    from siteflow.decisions import Signer, decide
    from siteflow.stand_in_signers import proven

    return decide(proven(gate_id, "rollback", Signer.parse(PM), at=at))


@pytest.mark.parametrize("keeper_first", [True, False])
def test_a_decision_stamped_before_the_deadline_wins_whoever_reaches_the_gate_first(
    database_url: str, keeper_first: bool
) -> None:
    """UPG-10 with the grace: the default waits SITEFLOW_DEADLINE_GRACE_SECONDS (1 s) past the
    deadline, so a PM's decision stamped 0.2 s before it, still on its way, is recorded."""
    from siteflow.deadlines import enforce_deadlines

    deadline = datetime(2026, 12, 2, 20, 0, tzinfo=UTC)
    gate_id = open_decision_gate(f"UPG-DL-3{int(keeper_first)}", deadline)
    if keeper_first:  # the keeper comes by 0.5 s after the deadline: within the grace, nothing
        assert enforce_deadlines(clock=lambda: deadline + timedelta(seconds=0.5)) == []
    result = _person(gate_id, deadline - timedelta(seconds=0.2))
    assert result.complete and result.message.startswith("recorded: rollback") and PM in result.message
    assert enforce_deadlines(clock=lambda: deadline + timedelta(seconds=2)) == []


@pytest.mark.parametrize("keeper_first", [True, False])
def test_a_decision_stamped_after_the_deadline_is_refused_whoever_reaches_the_gate_first(
    database_url: str, keeper_first: bool
) -> None:
    from models.gate import Gate, GateAttempt
    from siteflow.db import session_scope
    from siteflow.deadlines import enforce_deadlines
    from siteflow.decisions import DecisionRefused

    deadline = datetime(2026, 12, 2, 20, 0, tzinfo=UTC)  # 04:00 in Shanghai
    gate_id = open_decision_gate(f"UPG-DL-4{int(keeper_first)}", deadline)
    if keeper_first:
        assert len(enforce_deadlines(clock=lambda: deadline + timedelta(seconds=1.5))) == 1
    with pytest.raises(DecisionRefused) as refused:
        _person(gate_id, deadline + timedelta(seconds=0.5))
    reason = refused.value.reason
    assert "2026-12-03 04:00:00 Asia/Shanghai" in reason and "20:00:00 UTC" in reason
    assert "0.5 s after it" in reason and "rollback by system:deadline" in reason
    if not keeper_first:
        assert len(enforce_deadlines(clock=lambda: deadline + timedelta(seconds=1.5))) == 1
    with session_scope() as session:
        gate = session.get(Gate, gate_id)
        assert gate is not None and gate.outcome == "rollback"
        refusals = session.execute(
            select(GateAttempt.reason).where(GateAttempt.gate_id == gate_id, GateAttempt.accepted.is_(False))
        ).scalars()
        assert [r[:12] for r in refusals] == ["too late for"]


def test_a_batch_of_defaults_lands_in_few_transactions_with_their_chain(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The enforcer's batch writes the same rows and chain records as the one-gate path (120
    gates in batches of 50 here; `benchmarks.deadline_precision` runs 1,000)."""
    from models.gate import GateAttempt, GateDecision
    from siteflow import audit_report
    from siteflow.db import session_scope
    from siteflow.deadlines import enforce_deadlines

    monkeypatch.setattr("siteflow.deadlines.BATCH", 50)
    deadline = datetime(2026, 12, 2, 20, 0, tzinfo=UTC)
    ids = [open_decision_gate("UPG-DL-5", deadline, f"decision-ne-{i}") for i in range(120)]
    decided = enforce_deadlines(clock=lambda: deadline + timedelta(seconds=1.5))
    assert sorted(r.gate_id for r in decided) == sorted(ids)
    assert enforce_deadlines(clock=lambda: deadline + timedelta(seconds=3)) == []
    with session_scope() as session:
        rows = session.execute(select(GateDecision).where(GateDecision.gate_id.in_(ids))).scalars().all()
        assert len(rows) == 120 and {(r.signer_name, r.door, r.decision) for r in rows} == {
            ("system:deadline", "system", "rollback")
        }
        assert all(r.decided_at >= deadline for r in rows)
        attempts = session.scalar(select(func.count()).where(GateAttempt.gate_id.in_(ids)))
        assert attempts == 120
    assert audit_report.verify("UPG-DL-5") == []


def test_a_gate_mail_names_its_subject_for_what_it_is(database_url: str) -> None:
    """A window's gate mail says "upgrade window", not "project" (nor an incident's)."""
    from models.outbox import OutboxMessage
    from siteflow.db import session_scope

    gate_id = open_decision_gate("UPG-MAIL-1", datetime(2026, 12, 2, 20, 0, tzinfo=UTC))
    with session_scope() as session:
        (body,) = session.scalars(
            select(OutboxMessage.body_text).where(
                OutboxMessage.dedup_key.startswith(f"gate-opened:{gate_id}:")
            )
        )
    assert "升级窗口 UPG-MAIL-1 需要您的决定 / Upgrade window UPG-MAIL-1 needs your decision" in body


# --- the step journal (UPG-5) -------------------------------------------------------------


def test_interrupted_step_is_reconciled_by_reading_the_element(database_url: str) -> None:
    from models.upgrade import JournalEntry, Stage
    from siteflow.db import session_scope
    from siteflow.elements import connect
    from siteflow.elements.simulator import SimulatedElement
    from tasks.upgrade_records import register_window, start_window
    from tasks.upgrade_steps import Journal

    p = plan("UPG-J-1")
    register_window(p, clock=booking_day)
    start_window.fn(p.id, "run-j")
    book = p.runbook.expand(p.target_version, p.elements[0].software_version)
    download, set_startup = book.phases[0].steps
    driver = connect(p.id, p.elements[0], p.runbook)
    assert isinstance(driver, SimulatedElement)

    def started(step: Any) -> None:
        """A journal row left `running`: what a kill between start and end leaves behind."""
        with session_scope() as session:
            session.add(
                JournalEntry(
                    window_id=p.id,
                    element="GZ-CR-01",
                    stage=Stage.UPGRADE.value,
                    item=step.id,
                    title=step.title,
                    operator="Zhou Qiang",
                    command=step.command,
                )
            )

    async def scenario() -> None:
        journal = Journal(p.id, "GZ-CR-01", "Zhou Qiang", driver, 1.0)
        # the element took `download`, then siteflow died before recording the end
        await driver.run(download, timeout=5)
        started(download)
        # `set-startup` was recorded as started but never reached the element
        started(set_startup)
        first = await journal.run(Stage.UPGRADE, download)
        assert first.result.value == "reconciled" and "found applied" in first.note
        second = await journal.run(Stage.UPGRADE, set_startup)
        assert second.result.value == "passed"
        again = await journal.run(Stage.UPGRADE, set_startup)  # a re-run: nothing is sent
        assert again.result.value == "passed"
        journal.flush()  # the last completion waits for the next write; a task flushes before it returns

    asyncio.run(scenario())
    assert driver.executions() == {"download": 1, "download-check": 1, "startup-check": 1, "set-startup": 1}
    with session_scope() as session:
        attempts = session.execute(
            select(JournalEntry.attempt, JournalEntry.result).where(JournalEntry.item == set_startup.id)
        ).all()
    assert sorted(attempts) == [(1, "failed"), (2, "passed")]


# --- time control and faults on one element (UPG-8 … UPG-10) -------------------------------


def started_window(p: UpgradePlanIn) -> None:
    from tasks.upgrade_records import register_window, start_window
    from tasks.upgrade_steps import precheck_element

    register_window(p, clock=booking_day)
    start_window.fn(p.id, f"run-{p.id}")
    precheck_element.fn(p.id, "GZ-CR-01", "Zhou Qiang")


def element_row(window_id: str, name: str) -> Any:
    from tasks.upgrade_records import element_rows

    return element_rows(window_id)[name]


def test_an_element_that_could_not_finish_before_the_deadline_is_not_started(database_url: str) -> None:
    from models.upgrade import JournalEntry, Stage
    from siteflow.db import session_scope
    from tasks.upgrade_steps import upgrade_element

    p = plan("UPG-T-1")
    started_window(p)
    deadline = datetime.now(UTC) + timedelta(seconds=60)  # the runbook needs about 355 s
    result = upgrade_element.fn(p.id, "GZ-CR-01", "Zhou Qiang", deadline)
    assert result.status == "not-started"
    row = element_row(p.id, "GZ-CR-01")
    assert (
        row.outcome == "not-started" and "need about 355s" in row.note and "before the deadline" in row.note
    )
    with session_scope() as session:
        ran = session.scalar(
            select(func.count()).where(
                JournalEntry.window_id == p.id, JournalEntry.stage == Stage.UPGRADE.value
            )
        )
    assert ran == 0


def test_a_hanging_step_fails_and_the_element_is_rolled_back_and_compared(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from siteflow.settings import reset_settings
    from tasks.upgrade_steps import conclude_element, upgrade_element

    monkeypatch.setenv("SITEFLOW_SIMULATOR_TIME_SCALE", "0.001")  # the hang is cut at the step's timeout
    reset_settings()

    def hang(els: list[dict[str, Any]]) -> list[dict[str, Any]]:
        els[0]["simulation"]["hang_steps"] = ["set-startup"]
        return els

    p = plan("UPG-T-2", elements=hang)
    started_window(p)
    result = upgrade_element.fn(p.id, "GZ-CR-01", "Zhou Qiang", datetime.now(UTC) + timedelta(hours=2))
    assert result.status == "step-failed" and "did not finish" in result.note
    outcome = conclude_element.fn(p.id, "GZ-CR-01", "Zhou Qiang", "rollback", "system:step-failed", "system")
    row = element_row(p.id, "GZ-CR-01")
    assert outcome == "rolled-back" and row.version_after == p.elements[0].software_version
    assert row.differences == [] and "step failed: prepare: Set the target software" in row.note
