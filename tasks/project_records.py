"""Project register, phase transitions, memos and notices: the project's own records."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select

from models.memo import Memo
from models.outbox import OutboxMessage
from models.project import Project, ProjectState
from models.project_input import ProjectIn
from siteflow import audit_chain
from siteflow.db import session_scope
from tasks import side_effect

PHASES = ["survey", "installation", "commissioning", "completion", "done"]
"""§1's four phases in order, then done; a project only ever moves forward."""


class DuplicateProject(ValueError):
    """A second run for a project code that already has one."""


@side_effect(name="register-project")
def register_project(form: ProjectIn, flow_run_id: str) -> None:
    """First step of every run: one project per code, refused before any work starts."""
    with session_scope() as session:
        existing = session.get(Project, form.code)
        if existing is not None and existing.flow_run_id == flow_run_id:
            return
        if existing is not None:
            if existing.flow_run_id is not None or existing.params != form.model_dump(mode="json"):
                raise DuplicateProject(
                    f"project code {form.code} is already used by flow run {existing.flow_run_id} "
                    f"(state {existing.state}); choose another code"
                )
            existing.flow_run_id = flow_run_id  # reserved by `siteflow projects start`
        else:
            session.add(Project.from_form(form, flow_run_id))
            session.flush()
        audit_chain.append(
            session,
            form.code,
            "project.registered",
            "system:siteflow",
            {"flow_run_id": flow_run_id, "form": form.model_dump(mode="json")},
        )
        audit_chain.append(session, form.code, "phase.started", "system:siteflow", {"phase": PHASES[0]})


@side_effect(name="enter-phase")
def enter_phase(code: str, phase: str) -> None:
    """Record a phase transition once (§1: survey → installation → commissioning → completion)."""
    with session_scope() as session:
        project = session.get(Project, code)
        assert project is not None
        if PHASES.index(phase) <= PHASES.index(project.phase):
            return  # a re-run after resume passes earlier phases again: nothing to record
        previous = project.phase
        project.phase = phase
        audit_chain.append(session, code, "phase.completed", "system:siteflow", {"phase": previous})
        if phase != "done":
            audit_chain.append(session, code, "phase.started", "system:siteflow", {"phase": phase})


@side_effect(name="set-project-state")
def set_project_state(code: str, state: ProjectState) -> None:
    with session_scope() as session:
        project = session.get(Project, code)
        assert project is not None
        if project.state == state.value:
            return
        project.state = state.value
        if state in (ProjectState.COMPLETED, ProjectState.FAILED):
            audit_chain.append(session, code, f"project.{state.value}", "system:siteflow", {})


@side_effect(name="record-memo")
def record_memo(
    code: str,
    memo_key: str,
    kind: str,
    description: str,
    owner: str,
    resolution_date: date | None,
    document_id: str | None,
) -> None:
    """ENG-7 / ENG-28: a memo with a resolution date that is tracked until resolved."""
    with session_scope() as session:
        if session.execute(select(Memo.id).where(Memo.subject == code, Memo.memo_key == memo_key)).first():
            return
        session.add(
            Memo(
                subject=code,
                memo_key=memo_key,
                kind=kind,
                description=description,
                owner=owner,
                resolution_date=resolution_date,
                document_id=document_id,
            )
        )
        audit_chain.append(
            session,
            code,
            "memo.filed",
            "system:siteflow",
            {
                "memo": memo_key,
                "kind": kind,
                "description": description,
                "resolution_date": resolution_date.isoformat() if resolution_date else None,
            },
        )


def notice_key(code: str, dedup_key: str, recipient: str) -> str:
    """The outbox key of one notice: unique across subjects (the outbox's key is global)."""
    return f"notice:{code}:{dedup_key}:{recipient}"[:200]


def notice_seen(code: str, stored: str) -> str:
    """A stored outbox key as the flow's replay compares it (``dedup_key:recipient``), for
    notices of either form."""
    prefix = f"notice:{code}:"
    return stored[len(prefix) :] if stored.startswith(prefix) else stored


@side_effect(name="notify")
def notify(code: str, dedup_key: str, recipients: list[str], title: str, text: str) -> None:
    """Queue a notice in the outbox once per recipient and subject (the relay sends it).

    The stored key names the subject (:func:`notice_key`): a flow's keys ("survey-copies",
    "certificate-to-office") are the same in every project, and the PM of two projects must
    hear from both. Rows written before the subject was in the key still count as sent."""
    with session_scope() as session:
        for recipient in recipients:
            key = notice_key(code, dedup_key, recipient)
            legacy = f"{dedup_key}:{recipient}"
            if session.execute(
                select(OutboxMessage.id).where(
                    (OutboxMessage.dedup_key == key)
                    | ((OutboxMessage.dedup_key == legacy) & (OutboxMessage.subject_ref == code))
                )
            ).first():
                continue
            session.add(
                OutboxMessage(
                    dedup_key=key,
                    subject_ref=code,
                    recipient=recipient,
                    title=title,
                    body_text=text,
                )
            )
            audit_chain.append(
                session,
                code,
                "notice.queued",
                "system:siteflow",
                {
                    "to": recipient,
                    "title": title,
                    "key": dedup_key,
                },
            )


@side_effect(name="send-invite")
def send_invite(
    code: str,
    key: str,
    summary: str,
    first_day: date,
    last_day: date,
    attendees: list[tuple[str, str]],
    description: str = "",
    location: str = "",
) -> int | None:
    """An all-day calendar invite (COM-3), moved (higher SEQUENCE) when the dates change."""
    from siteflow import invites

    start = datetime.combine(first_day, time(0), tzinfo=UTC)
    end = datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=UTC)
    with session_scope() as session:
        return invites.schedule(
            session,
            code,
            key,
            summary,
            start,
            end,
            [invites.Attendee(name, email) for name, email in attendees],
            description=description,
            location=location,
            all_day=True,
        )


def mark_project_failed(flow: object, flow_run: Any, state: Any) -> None:
    """Flow hook (on failure/crash): the project list and the audit show the truth."""
    code = (flow_run.parameters or {}).get("project", {}).get("code")
    if not code:
        return
    with session_scope() as session:
        project = session.get(Project, code)
        if project is None or project.flow_run_id not in (None, str(flow_run.id)):
            return
        project.state = ProjectState.FAILED.value
        audit_chain.append(
            session,
            code,
            "project.failed",
            "system:prefect",
            {
                "flow_run_id": str(flow_run.id),
                "state": state.name,
                "message": state.message or "",
            },
        )
