"""A flow's notices are once per subject and recipient — not once per recipient overall.

The flows name their notices by what they are ("survey-copies", "certificate-to-office",
"incident-acknowledged"); the same PM or caller is on many projects and incidents, and must
hear from each. A notice queued before the subject was part of the key still counts as sent,
so an upgrade does not mail a running project's people twice.
"""

from __future__ import annotations

from sqlalchemy import select

from models.outbox import OutboxMessage
from siteflow.db import session_scope
from tasks.progress import load_progress
from tasks.project_records import notice_key, notify
from tests.test_decisions import add_project, project_form

PM = "李娜 Li Na <li.na@siteflow.example>"


def queued(code: str) -> list[str]:
    with session_scope() as session:
        return list(session.scalars(select(OutboxMessage.dedup_key).where(OutboxMessage.subject_ref == code)))


def test_the_same_notice_reaches_the_same_person_once_per_subject(database_url: str) -> None:
    for code in ("GD-2026-101", "GD-2026-102"):
        notify.fn(code, "survey-copies", [PM], f"[{code}] copies", "…")
        notify.fn(code, "survey-copies", [PM], f"[{code}] copies", "…")  # a replay: nothing more
    assert queued("GD-2026-101") == [notice_key("GD-2026-101", "survey-copies", PM)]
    assert queued("GD-2026-102") == [notice_key("GD-2026-102", "survey-copies", PM)]


def test_a_notice_queued_before_the_subject_was_in_its_key_counts_as_sent(database_url: str) -> None:
    form = project_form()
    add_project(form)
    with session_scope() as session:  # as an earlier version stored it
        session.add(
            OutboxMessage(
                dedup_key=f"preparation-requirements:{PM}",
                subject_ref=form.code,
                recipient=PM,
                title="t",
                body_text="b",
            )
        )
    notify.fn(form.code, "preparation-requirements", [PM], "t", "b")
    assert queued(form.code) == [f"preparation-requirements:{PM}"]
    assert f"preparation-requirements:{PM}" in load_progress.fn(form.code).notices  # the replay agrees
