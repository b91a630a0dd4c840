"""Upgrade work on one element, every command journaled exactly once (UPG-1, UPG-4 … UPG-11).

Each task runs one stage of one element. Commands go through :class:`Journal`, which writes
the journal row before the command and completes it after; a re-run (resume, retry, restart
after a kill) skips finished rows and reconciles an interrupted one by reading the element.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from models.project_input import Role
from models.runbook import Command, Runbook, Step
from models.upgrade import (
    ElementOutcome,
    ElementPhase,
    JournalEntry,
    Stage,
    StepResult,
    UpgradeElement,
    UpgradeResult,
    UpgradeStatus,
)
from models.upgrade_evidence import BASELINE, OPERATORS, unqualified
from models.upgrade_plan import UpgradePlanIn
from siteflow.db import session_scope
from siteflow.elements import ElementDriver, ElementUnreachable, connect
from siteflow.elements.driver import Unreachable
from siteflow.settings import get_settings
from tasks import side_effect
from tasks.project_records import notify
from tasks.upgrade_records import load_plan, set_phase

VERSION_RE = re.compile(r"Version\s+(?P<v>\S+)")
HARDWARE_RE = re.compile(r"Hardware version:\s*(?P<v>\S+)")
SHA_RE = re.compile(r"sha256=(?P<v>[0-9a-f]{64})")
T = TypeVar("T")


@dataclass(frozen=True)
class Entry:
    item: str
    result: StepResult
    output: str
    note: str

    @property
    def ok(self) -> bool:
        return self.result in (StepResult.PASSED, StepResult.RECONCILED)


def _entry(row: JournalEntry) -> Entry:
    return Entry(row.item, StepResult(row.result), row.output, row.note)


def _latest(window_id: str, element: str, stage: Stage, item: str) -> JournalEntry | None:
    with session_scope() as session:
        row = session.execute(
            select(JournalEntry)
            .where(
                JournalEntry.window_id == window_id,
                JournalEntry.element == element,
                JournalEntry.stage == stage.value,
                JournalEntry.item == item,
            )
            .order_by(JournalEntry.attempt.desc())
            .limit(1)
        ).scalar_one_or_none()
        if row is not None:
            session.expunge(row)
        return row


def _finish(entry_id: str, result: StepResult, output: str, note: str = "") -> None:
    with session_scope() as session:
        row = session.get(JournalEntry, entry_id)
        assert row is not None
        row.result, row.output, row.note = result.value, output[-20000:], note
        row.ended_at = datetime.now(UTC)


class Journal:
    """The journal of one element in one window."""

    def __init__(
        self, window_id: str, element: str, operator: str, driver: ElementDriver, scale: float
    ) -> None:
        self.window_id, self.element, self.operator = window_id, element, operator
        self.driver, self.scale = driver, scale

    def timeout(self, cmd: Command) -> float:
        return max(5.0, cmd.est_seconds * 3) * self.scale + 5.0

    def check(self, stage: Stage, item: str, title: str, ok: bool, note: str) -> Entry:
        """An evaluated item (no command), recorded once."""
        prev = _latest(self.window_id, self.element, stage, item)
        if prev is not None and prev.result != StepResult.RUNNING.value:
            return _entry(prev)
        entry_id = self._begin(stage, Command(id="check", title=title, command="-"), item, 1)
        result = StepResult.PASSED if ok else StepResult.FAILED
        if entry_id:
            _finish(entry_id, result, "", note)
        return Entry(item, result, "", note)

    def _begin(self, stage: Stage, cmd: Command, item: str, attempt: int) -> str | None:
        try:
            with session_scope() as session:
                row = JournalEntry(
                    window_id=self.window_id,
                    element=self.element,
                    stage=stage.value,
                    item=item,
                    attempt=attempt,
                    title=cmd.title,
                    operator=self.operator,
                    command=cmd.command,
                    expected=cmd.expect,
                )
                session.add(row)
                session.flush()
                return row.id
        except IntegrityError:
            return None  # another worker holds this attempt: it is theirs to finish

    async def run(self, stage: Stage, cmd: Command, item: str | None = None) -> Entry:
        item = item or cmd.id
        prev = _latest(self.window_id, self.element, stage, item)
        attempt = 1
        if prev is not None and prev.result != StepResult.RUNNING.value:
            return _entry(prev)  # done before: never run twice (UPG-5)
        if prev is not None:  # interrupted half-way: reconcile by reading the element (UPG-5)
            reconciled = await self._reconcile(prev, cmd)
            if reconciled is not None:
                return reconciled
            attempt = prev.attempt + 1
        entry_id = self._begin(stage, cmd, item, attempt)
        if entry_id is None:
            latest = _latest(self.window_id, self.element, stage, item)
            assert latest is not None
            return _entry(latest)
        try:
            result = await self.driver.run(cmd, self.timeout(cmd))
        except (TimeoutError, ElementUnreachable) as exc:
            _finish(entry_id, StepResult.FAILED, "", str(exc))
            return Entry(item, StepResult.FAILED, "", str(exc))
        outcome = StepResult.PASSED if result.ok else StepResult.FAILED
        note = "" if result.ok else f"output does not match the expected {cmd.expect!r}"
        _finish(entry_id, outcome, result.output, note)
        return Entry(item, outcome, result.output, note)

    async def _reconcile(self, prev: JournalEntry, cmd: Command) -> Entry | None:
        """Settle an interrupted attempt; None means: run it again as a new attempt."""
        if not isinstance(cmd, Step):  # a read-only command: reading again is harmless
            _finish(prev.id, StepResult.FAILED, prev.output, "interrupted; read again")
            return None
        if cmd.verify is None:
            note = "interrupted, and the runbook gives no way to read back its effect: roll back"
            _finish(prev.id, StepResult.FAILED, prev.output, note)
            return Entry(prev.item, StepResult.FAILED, prev.output, note)
        try:
            check = await self.driver.run(cmd.verify, self.timeout(cmd.verify))
        except (TimeoutError, ElementUnreachable) as exc:
            note = f"interrupted, and its effect could not be read back ({exc}): roll back"
            _finish(prev.id, StepResult.FAILED, prev.output, note)
            return Entry(prev.item, StepResult.FAILED, prev.output, note)
        if check.ok:
            note = f"interrupted; found applied on the element ({cmd.verify.command!r})"
            _finish(prev.id, StepResult.RECONCILED, check.output, note)
            return Entry(prev.item, StepResult.RECONCILED, check.output, note)
        _finish(prev.id, StepResult.FAILED, check.output, "interrupted before it took effect; run again")
        return None


def operator_for(plan: UpgradePlanIn, index: int, replacements: dict[str, str]) -> str:
    """Operators take elements in turn; a replaced one's place goes to the replacement (UPG-2)."""
    name = plan.operators[index % len(plan.operators)].name
    return replacements.get(name, name)


def _with_element(
    window_id: str,
    element: str,
    operator: str,
    work: Callable[[UpgradePlanIn, Runbook, Journal], Awaitable[T]],
) -> T:
    plan = load_plan(window_id)
    el = plan.element(element)
    driver = connect(window_id, el, plan.runbook)
    runbook = plan.runbook

    async def go() -> T:
        book = runbook.expand(plan.target_version, el.software_version)  # pre-checks verify it
        scale = get_settings().simulator_time_scale if el.driver.value == "simulator" else 1.0
        try:
            return await work(plan, book, Journal(window_id, element, operator, driver, scale))
        finally:
            await driver.close()

    return asyncio.run(go())


async def _current_version(driver: ElementDriver, runbook: Runbook) -> str | None:
    try:
        result = await driver.run(runbook.read_version, 30)
    except (TimeoutError, ElementUnreachable):
        return None
    m = VERSION_RE.search(result.output)
    return m["v"] if m else None


def record_operator_checks(window_id: str, plan: UpgradePlanIn) -> list[str]:
    """UPG-2: each operator's qualification, recorded; returns the unqualified ones."""
    need = plan.runbook.required_qualification
    missing = unqualified(plan)
    journal = Journal(
        window_id, OPERATORS, "upgrade guide", Unreachable("no element: a check of people"), 1.0
    )
    for op in plan.operators:
        ok = op.name not in missing
        note = "qualified" if ok else f"lacks {need!r}: replace before go (UPG-2)"
        journal.check(Stage.PRECHECK, f"operator-{op.name}", f"Operator {op.name} holds {need}", ok, note)
    return missing


@side_effect(name="pre-checks")
def precheck_element(window_id: str, element: str, operator: str) -> bool:
    """UPG-1, item by item: versions, compatibility, backup verified by checksum, rollback
    procedure present, and a baseline of every test for the comparison after a rollback."""

    async def work(plan: UpgradePlanIn, book: Runbook, j: Journal) -> bool:
        el = plan.element(element)
        read = await j.run(Stage.PRECHECK, book.read_version)
        software = (m["v"] if (m := VERSION_RE.search(read.output)) else "") if read.ok else ""
        hardware = (m["v"] if (m := HARDWARE_RE.search(read.output)) else "") if read.ok else ""
        entries = [read]
        entries.append(
            j.check(
                Stage.PRECHECK,
                "software-version",
                "Software version as planned",
                software == el.software_version,
                f"element runs {software or 'unknown'}, plan says {el.software_version}",
            )
        )
        entries.append(
            j.check(
                Stage.PRECHECK,
                "compatibility",
                f"Target {plan.target_version} supports hardware {hardware or '?'}",
                bool(hardware) and book.supports(hardware, plan.target_version),
                f"compatibility matrix: {hardware or '?'} → "
                + (", ".join(book.compatibility.get(hardware, [])) or "none"),
            )
        )
        backup = await j.run(Stage.PRECHECK, book.backup)
        entries.append(backup)
        taken = SHA_RE.search(backup.output)
        if book.backup.verify is not None and taken:
            verify = await j.run(Stage.PRECHECK, book.backup.verify, item="backup-readback")
            again = SHA_RE.search(verify.output)
            same = again is not None and again["v"] == taken["v"]
            note = f"taken {taken['v'][:12]}…, read back {again['v'][:12] if again else 'nothing'}…"
        else:
            same, note = False, "the backup's output carries no sha256 to verify"
        entries.append(j.check(Stage.PRECHECK, "backup-verified", "Backup verified by checksum", same, note))
        entries.append(
            j.check(
                Stage.PRECHECK,
                "rollback-procedure",
                "Emergency (rollback) procedure present",
                bool(book.rollback_steps and book.rollback_tests),
                f"{len(book.rollback_steps)} rollback steps, {len(book.rollback_tests)} rollback tests",
            )
        )
        for test in book.tests + book.rollback_tests:
            if any(e.item == f"baseline-{test.id}" for e in entries):
                continue
            entries.append(await j.run(Stage.PRECHECK, test, item=f"baseline-{test.id}"))
        baseline = {
            e.item.removeprefix("baseline-"): e.output for e in entries if e.item.startswith("baseline-")
        }
        set_phase(
            window_id,
            element,
            ElementPhase.GO_NO_GO,
            version_before=software or None,
            snapshot_before={"software": software, "hardware": hardware, "tests": baseline},
        )
        return all(e.ok for e in entries if not e.item.startswith(BASELINE))

    set_phase(window_id, element, ElementPhase.PRECHECKS)
    return _with_element(window_id, element, operator, work)


@side_effect(name="upgrade-element")
def upgrade_element(window_id: str, element: str, operator: str, deadline: datetime) -> UpgradeResult:
    """UPG-4 … UPG-7: the steps phase by phase, then the tests; the result for the decision."""

    async def work(plan: UpgradePlanIn, book: Runbook, j: Journal) -> UpgradeResult:
        started = _latest(window_id, element, Stage.UPGRADE, book.phases[0].steps[0].id) is not None
        needed = book.upgrade_seconds() * j.scale
        left = (deadline - datetime.now(UTC)).total_seconds()
        if not started and needed > left:
            note = (
                f"not started: upgrade, tests and rollback need about {needed:.0f}s and only {left:.0f}s "
                "were left before the deadline (UPG-8)"
            )
            set_phase(
                window_id, element, ElementPhase.DONE, outcome=ElementOutcome.NOT_STARTED.value, note=note
            )
            return UpgradeResult(element=element, status=UpgradeStatus.NOT_STARTED, note=note)
        set_phase(window_id, element, ElementPhase.UPGRADING)
        failed_step = None
        for phase in book.phases:
            for step in phase.steps:
                entry = await j.run(Stage.UPGRADE, step)
                if not entry.ok:
                    failed_step = f"{phase.name}: {step.title} — {entry.note or entry.output[:200]}"
                    break
            if failed_step:
                break
        if failed_step:
            note = f"step failed: {failed_step}"
            set_phase(window_id, element, ElementPhase.UPGRADING, note=note)  # kept for the report
            return UpgradeResult(element=element, status=UpgradeStatus.STEP_FAILED, note=note)
        set_phase(window_id, element, ElementPhase.TESTING)
        results = [await j.run(Stage.TEST, t) for t in book.tests]
        unexpected = [r for r in results if not r.ok]
        criteria = book.criteria()
        met = all(r.ok for r in results if r.item in criteria)
        if unexpected:  # UPG-7: the upgrade guide is told, not left to notice
            guides = [f"{c.name} <{c.email}>" for c in plan.contacts_with(Role.UPGRADE_GUIDE, Role.PM)]
            lines = "\n".join(f"- {r.item}: {r.note}\n  output: {r.output[:300]}" for r in unexpected)
            notify.fn(
                window_id,
                f"unexpected-test:{element}",
                guides,
                f"[{window_id}] 测试结果异常 / Unexpected test result on {element}",
                f"升级后测试结果与预期不符，请紧急处理与分析 (UPG-7).\n"
                f"Post-upgrade tests on {element} differ from the expected results:\n{lines}\n",
            )
        set_phase(window_id, element, ElementPhase.DECIDING)
        return UpgradeResult(
            element=element,
            status=UpgradeStatus.AWAIT_DECISION,
            criteria_met=met,
            tests={r.item: r.result.value for r in results},
            unexpected=[r.item for r in unexpected],
        )

    return _with_element(window_id, element, operator, work)


@side_effect(name="conclude-element")
def conclude_element(
    window_id: str, element: str, operator: str, decision: str, decided_by: str, door: str
) -> str:
    """Commit, or roll back and compare with the pre-upgrade snapshot (UPG-9, UPG-11)."""

    async def work(plan: UpgradePlanIn, book: Runbook, j: Journal) -> str:
        with session_scope() as session:
            row = session.execute(
                select(UpgradeElement).where(
                    UpgradeElement.window_id == window_id, UpgradeElement.name == element
                )
            ).scalar_one()
            before: dict[str, Any] = row.snapshot_before or {}
            note = row.note
        if decision == "commit":
            version = await _current_version(j.driver, book)
            set_phase(
                window_id,
                element,
                ElementPhase.DONE,
                outcome=ElementOutcome.COMMITTED.value,
                version_after=version,
                decided_by=decided_by,
                decision_door=door,
            )
            return ElementOutcome.COMMITTED.value
        set_phase(window_id, element, ElementPhase.ROLLING_BACK, decided_by=decided_by, decision_door=door)
        steps_ok = True
        for step in book.rollback_steps:
            entry = await j.run(Stage.ROLLBACK, step)
            if not entry.ok:
                steps_ok = False
                note = f"{note}\nrollback step {step.id} failed: {entry.note}".strip()
                break
        tests = [await j.run(Stage.ROLLBACK_TEST, t) for t in book.rollback_tests] if steps_ok else []
        read = await j.run(Stage.ROLLBACK_TEST, book.read_version, item="read-version-after")
        version = (m["v"] if (m := VERSION_RE.search(read.output)) else None) if read.ok else None
        differences = []
        if version != before.get("software"):
            differences.append(f"software version: before {before.get('software')}, after {version}")
        for t in tests:
            was = before.get("tests", {}).get(t.item)
            if was is not None and was != t.output:
                differences.append(f"test {t.item}: before {was!r}, after {t.output!r}")
            if not t.ok:
                differences.append(f"test {t.item} failed after rollback: {t.note}")
        ok = steps_ok and all(t.ok for t in tests)
        outcome = ElementOutcome.ROLLED_BACK if ok else ElementOutcome.ROLLBACK_FAILED
        if not ok:
            people = [f"{c.name} <{c.email}>" for c in plan.contacts_with(Role.UPGRADE_GUIDE, Role.PM)]
            notify.fn(
                window_id,
                f"rollback-failed:{element}",
                people,
                f"[{window_id}] 回退失败 / Rollback failed on {element}",
                f"Rollback of {element} did not complete; the element needs emergency handling.\n{note}\n",
            )
        set_phase(
            window_id,
            element,
            ElementPhase.DONE,
            outcome=outcome.value,
            version_after=version,
            differences=differences,
            note=note,
        )
        return outcome.value

    return _with_element(window_id, element, operator, work)
