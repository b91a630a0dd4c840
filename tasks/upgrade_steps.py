"""Upgrade work on one element, every command journaled exactly once (UPG-1, UPG-4 … UPG-11).

Each task runs one stage of one element. Commands go through :class:`~tasks.step_journal.Journal`,
which writes the journal row before the command and completes it after; a re-run (resume,
retry, restart after a kill) skips finished rows and reconciles an interrupted one by reading
the element. The element's phase moves with the journal's writes, and each task flushes the
journal before it returns, so the flow only ever sees recorded results.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import select

from models.project_input import Role
from models.runbook import Runbook
from models.upgrade import (
    ElementOutcome,
    ElementPhase,
    Stage,
    UpgradeElement,
    UpgradeResult,
    UpgradeStatus,
)
from models.upgrade_evidence import BASELINE, OPERATORS, unqualified
from models.upgrade_plan import UpgradePlanIn
from siteflow.db import read_scope
from siteflow.elements import ElementDriver, ElementUnreachable, connect
from siteflow.elements.driver import Unreachable
from siteflow.settings import get_settings
from tasks import side_effect
from tasks.project_records import notify
from tasks.step_journal import Entry, Journal
from tasks.upgrade_records import load_plan

__all__ = ["Entry", "Journal", "conclude_element", "precheck_element", "upgrade_element"]

VERSION_RE = re.compile(r"Version\s+(?P<v>\S+)")
HARDWARE_RE = re.compile(r"Hardware version:\s*(?P<v>\S+)")
SHA_RE = re.compile(r"sha256=(?P<v>[0-9a-f]{64})")
T = TypeVar("T")


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
        journal = Journal(window_id, element, operator, driver, scale)
        try:
            return await work(plan, book, journal)
        finally:
            await driver.close()
            journal.flush()  # before the flow sees the result (or the error): it acts on what is recorded

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
    journal.flush()
    return missing


@side_effect(name="pre-checks")
def precheck_element(window_id: str, element: str, operator: str) -> bool:
    """UPG-1, item by item: versions, compatibility, backup verified by checksum, rollback
    procedure present, and a baseline of every test for the comparison after a rollback."""

    async def work(plan: UpgradePlanIn, book: Runbook, j: Journal) -> bool:
        el = plan.element(element)
        j.phase(ElementPhase.PRECHECKS)
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
        j.phase(
            ElementPhase.GO_NO_GO,
            version_before=software or None,
            snapshot_before={"software": software, "hardware": hardware, "tests": baseline},
        )
        return all(e.ok for e in entries if not e.item.startswith(BASELINE))

    return _with_element(window_id, element, operator, work)


@side_effect(name="upgrade-element")
def upgrade_element(window_id: str, element: str, operator: str, deadline: datetime) -> UpgradeResult:
    """UPG-4 … UPG-7: the steps phase by phase, then the tests; the result for the decision."""

    async def work(plan: UpgradePlanIn, book: Runbook, j: Journal) -> UpgradeResult:
        started = j.started(Stage.UPGRADE, book.phases[0].steps[0].id)
        needed = book.upgrade_seconds() * j.scale
        left = (deadline - datetime.now(UTC)).total_seconds()
        if not started and needed > left:
            note = (
                f"not started: upgrade, tests and rollback need about {needed:.0f}s and only {left:.0f}s "
                "were left before the deadline (UPG-8)"
            )
            j.phase(ElementPhase.DONE, outcome=ElementOutcome.NOT_STARTED.value, note=note)
            return UpgradeResult(element=element, status=UpgradeStatus.NOT_STARTED, note=note)
        j.phase(ElementPhase.UPGRADING)
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
            j.phase(ElementPhase.UPGRADING, note=note)  # kept for the report
            return UpgradeResult(element=element, status=UpgradeStatus.STEP_FAILED, note=note)
        j.phase(ElementPhase.TESTING)
        results = [await j.run(Stage.TEST, t) for t in book.tests]
        unexpected = [r for r in results if not r.ok]
        criteria = book.criteria()
        met = all(r.ok for r in results if r.item in criteria)
        if unexpected:  # UPG-7: the upgrade guide is told, not left to notice
            j.flush()  # the results the mail reports, recorded first
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
        j.phase(ElementPhase.DECIDING)
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
        with read_scope() as session:
            row = session.execute(
                select(UpgradeElement).where(
                    UpgradeElement.window_id == window_id, UpgradeElement.name == element
                )
            ).scalar_one()
            before: dict[str, Any] = row.snapshot_before or {}
            note = row.note
        if decision == "commit":
            version = await _current_version(j.driver, book)
            j.phase(
                ElementPhase.DONE,
                outcome=ElementOutcome.COMMITTED.value,
                version_after=version,
                decided_by=decided_by,
                decision_door=door,
            )
            return ElementOutcome.COMMITTED.value
        j.phase(ElementPhase.ROLLING_BACK, decided_by=decided_by, decision_door=door)
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
            j.flush()  # the rollback's record first, then the mail that reports it
            people = [f"{c.name} <{c.email}>" for c in plan.contacts_with(Role.UPGRADE_GUIDE, Role.PM)]
            notify.fn(
                window_id,
                f"rollback-failed:{element}",
                people,
                f"[{window_id}] 回退失败 / Rollback failed on {element}",
                f"Rollback of {element} did not complete; the element needs emergency handling.\n{note}\n",
            )
        j.phase(
            ElementPhase.DONE,
            outcome=outcome.value,
            version_after=version,
            differences=differences,
            note=note,
        )
        return outcome.value

    return _with_element(window_id, element, operator, work)
