"""One read of everything a project has already done, taken at the start of each (re-)run.

A suspended run re-runs from the top at every resume (docs/architecture.md); without this, a project at
its 40th gate would replay hundreds of task runs each time. With it, a re-run passes through
what is already recorded without touching Prefect or the database again.
"""

from __future__ import annotations

from datetime import date, timedelta

from pydantic import BaseModel
from sqlalchemy import select

from models.calendar_invite import CalendarInvite
from models.document import Document
from models.gate import Gate, GateStatus
from models.memo import Memo
from models.outbox import OutboxMessage
from models.project import Project
from siteflow.db import session_scope
from tasks import side_effect
from tasks.gates import GateRead, read_gates
from tasks.project_records import notice_seen


class DocumentState(BaseModel):
    id: str
    kind: str
    title: str
    version: int
    sha256: str
    body_sha256: str
    status: str


class Progress(BaseModel):
    phase: str
    closed_gates: dict[str, GateRead]
    documents: dict[str, list[DocumentState]]
    notices: set[str]
    memos: set[str]
    invites: dict[str, tuple[date, date]]  # key → first and last day, of confirmed invites
    opened_gates: set[str] = set()  # every gate key the project has, open or decided


@side_effect(name="load-progress")
def load_progress(code: str) -> Progress:
    with session_scope() as session:
        project = session.get(Project, code)
        assert project is not None, "load-progress runs after register-project"
        closed = (
            session.execute(select(Gate).where(Gate.subject == code, Gate.status == GateStatus.DECIDED.value))
            .scalars()
            .all()
        )
        documents: dict[str, list[DocumentState]] = {}
        for d in session.execute(
            select(Document).where(Document.subject == code).order_by(Document.version)
        ).scalars():
            documents.setdefault(d.doc_key, []).append(
                DocumentState(
                    id=d.id,
                    kind=d.kind,
                    title=d.title,
                    version=d.version,
                    sha256=d.sha256,
                    body_sha256=d.body_sha256,
                    status=d.status,
                )
            )
        return Progress(
            phase=project.phase,
            closed_gates={g.key: g for g in read_gates(session, list(closed))},
            documents=documents,
            notices={
                notice_seen(code, key)
                for key in session.scalars(
                    select(OutboxMessage.dedup_key).where(OutboxMessage.subject_ref == code)
                )
            },
            memos=set(session.scalars(select(Memo.memo_key).where(Memo.subject == code))),
            opened_gates=set(session.scalars(select(Gate.key).where(Gate.subject == code))),
            invites={
                i.key: (i.starts_at.date(), (i.ends_at - timedelta(days=1)).date())
                for i in session.scalars(
                    select(CalendarInvite).where(
                        CalendarInvite.subject == code, CalendarInvite.status == "confirmed"
                    )
                )
            },
        )
