"""What people read about a window: the go/no-go evidence, the element table, the report.

Read-only transactions (``read_scope``): on SQLite they never take the write lock, so the
element table shown every few seconds, or a 1,000-element report, never holds up the step
journal's writers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from models.document_body import DocumentBody
from models.gate import Gate, GateDecision
from models.paperwork import field, section
from models.roster import window_plan
from models.upgrade import JournalEntry, Stage, StepResult, UpgradeElement, UpgradeWindow
from models.upgrade_evidence import (
    BASELINE,
    OPERATORS,
    element_decisions,
    failed_prechecks,
    gate_key_for,
    latest_results,
)
from siteflow.db import read_scope
from siteflow.site_time import clock_time, site_span
from tasks import side_effect
from tasks.documents import body_for, issue_document


def element_summary(window_id: str, element: str) -> dict[str, Any]:
    """Post-upgrade test results and the success criteria evaluated on them (UPG-6, UPG-8)."""
    with read_scope() as session:
        window = session.get(UpgradeWindow, window_id)
        assert window is not None
        plan = window_plan(window)
        tests = {
            item: row for (_, item), row in latest_results(session, window_id, Stage.TEST, element).items()
        }
        results = {t.id: tests[t.id].result if t.id in tests else "not run" for t in plan.runbook.tests}
    passed = StepResult.PASSED.value
    return {
        "tests": results,
        "criteria_met": all(results.get(c) == passed for c in plan.runbook.criteria()),
        "unexpected": [t for t, r in results.items() if r != passed],
    }


def precheck_failures(window_id: str) -> list[str]:
    with read_scope() as session:
        return failed_prechecks(session, window_id)


def evidence_markdown(window_id: str) -> str:
    """The go/no-go evidence bundle (UPG-1 … UPG-3): every pre-check item with its result."""
    with read_scope() as session:
        checks = latest_results(session, window_id, Stage.PRECHECK)
    lines = ["| element | check | result | detail |", "|---|---|---|---|"]
    for (element, _), row in sorted(checks.items(), key=lambda kv: (kv[0][0] == OPERATORS, kv[0][0])):
        mark = (
            "📷" if row.item.startswith(BASELINE) else "✅" if row.result == StepResult.PASSED.value else "❌"
        )
        detail = (row.note or row.output.splitlines()[0] if row.output else row.note).replace("|", "/")
        lines.append(f"| {element} | {row.title} | {mark} {row.result} | {detail[:160]} |")
    failed = sum(
        1 for r in checks.values() if r.result != StepResult.PASSED.value and not r.item.startswith(BASELINE)
    )
    head = (
        f"### Pre-check evidence (UPG-1, UPG-2)\n\n{failed} item(s) failed. 📷 = pre-upgrade reading kept "
        "for the comparison after a rollback (UPG-11).\n\n"
    )
    return head + "\n".join(lines)


def window_table(window_id: str) -> list[dict[str, Any]]:
    """The Prefect UI's element table: a decision and who took it show as soon as recorded."""
    with read_scope() as session:
        rows = session.execute(
            select(UpgradeElement).where(UpgradeElement.window_id == window_id).order_by(UpgradeElement.name)
        ).scalars()
        decided = element_decisions(session, [window_id])
        table = []
        for r in rows:
            d = decided.get((window_id, gate_key_for(r.name)))
            table.append(
                {
                    "element": r.name,
                    "phase": r.phase,
                    "decision": d.decision if d else "",
                    "decided by": r.decided_by or (f"{d.by} ({d.door})" if d else ""),
                    "outcome": r.outcome or "",
                    "before": r.version_before or "",
                    "after": r.version_after or "",
                }
            )
        return table


@side_effect(name="issue-upgrade-report")
def issue_upgrade_report(window_id: str) -> str:
    """Build and store the report in one task: its body (every journal row of every element)
    can be megabytes, too big to pass as a task's input to the Prefect server."""
    return issue_document.fn("upgrade-report", upgrade_report(window_id)).id


def upgrade_report(window_id: str) -> DocumentBody:
    """The upgrade report (bilingual): per element, versions, steps, tests, decision, rollback."""
    with read_scope() as session:
        window = session.get(UpgradeWindow, window_id)
        assert window is not None
        plan = window_plan(window)
        elements = {
            r.name: r
            for r in session.execute(
                select(UpgradeElement).where(UpgradeElement.window_id == window_id)
            ).scalars()
        }
        journal = list(
            session.execute(
                select(JournalEntry)
                .where(JournalEntry.window_id == window_id)
                .order_by(JournalEntry.element, JournalEntry.started_at, JournalEntry.attempt)
            ).scalars()
        )
        gates = {g.key: g for g in session.execute(select(Gate).where(Gate.subject == window_id)).scalars()}
        go = gates.get("go-no-go")
        go_by = (
            session.execute(select(GateDecision).where(GateDecision.gate_id == go.id)).scalars().first()
            if go is not None
            else None
        )
        sections = [
            section(
                "升级窗口",
                "Window",
                fields=[
                    field("标题", "Title", plan.title),
                    field("目标版本", "Target version", plan.target_version),
                    field(
                        "时间",
                        "Time",
                        site_span(plan.window.starts_at, plan.window.deadline_at, plan.window.timezone),
                    ),
                    field("指导书", "Runbook", plan.runbook.title),
                    field(
                        "开始决定",
                        "Go / no-go",
                        f"{go.outcome} by {go_by.signer_name} ({go_by.door})"
                        if go and go_by
                        else "not decided",
                    ),
                ],
            )
        ]
        for el in plan.elements:
            row = elements.get(el.name)
            if row is None:
                continue
            sections.append(
                section(
                    f"网元 {el.name}",
                    f"Element {el.name}",
                    fields=[
                        field("站点", "Site", el.site),
                        field("升级前版本", "Version before", row.version_before or "-"),
                        field("升级后版本", "Version after", row.version_after or "-"),
                        field("结果", "Outcome", row.outcome or "-"),
                        field(
                            "决定人", "Decided by", f"{row.decided_by or '-'} ({row.decision_door or '-'})"
                        ),
                        field(
                            "回退比较",
                            "Comparison after rollback",
                            "; ".join(row.differences)
                            if row.differences
                            else ("no difference" if row.outcome == "rolled-back" else "-"),
                        ),
                        field("备注", "Note", row.note or "-"),
                    ],
                    headers=["stage", "item", "try", "operator", "start", "end", "result", "output"],
                    rows=[
                        [
                            j.stage,
                            j.item,
                            j.attempt,
                            j.operator,
                            clock_time(j.started_at, plan.window.timezone),
                            clock_time(j.ended_at, plan.window.timezone) if j.ended_at else "-",
                            j.result,
                            (j.note or j.output)[:120],
                        ]
                        for j in journal
                        if j.element == el.name
                    ],
                )
            )
    customer = ", ".join(sorted({e.site for e in plan.elements}))
    return body_for("upgrade-report", window_id, customer, sections=[s.model_dump() for s in sections])
