"""Problem reports through the web API, as the user its token names (INC-8; issue #11).

A problem report asks the office for a root-cause fix and is tracked apart from its incident
(TL 9000), with its own due date; it is overdue from the day after that date until it is closed.

- ``POST /api/incidents/{key}/problems`` raises one: title, office, due date, detail; ``by`` is
  you. The incident's owner or the office (office, admin roles) may (:mod:`siteflow.incidents.rights`).
- ``GET /api/problems[?open=true&overdue=true]`` lists them by due date, each marked overdue.
- ``POST /api/problems/{id}/close`` closes one: the office, or whoever raised it.

Each raise and close is a record of the incident's audit chain, signed as you. A refusal is 409
(422 for a form that does not parse) with the rule id first; nothing changed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from models.text_kinds import Line, Name, Note
from siteflow.db import read_scope, session_scope
from siteflow.incidents import records, rights, staff_acts
from siteflow.incidents.records import ProblemRecord
from siteflow.incidents.refusals import IncidentRefused
from siteflow.web.access import Actor
from siteflow.web.api import token_actor

router = APIRouter()


class ProblemIn(BaseModel):
    title: Line = Field(description="What is to be fixed at its root")
    office: Name = Field(description="Who at the office receives it")
    due: date = Field(description="When the fix is due (YYYY-MM-DD)")
    detail: Note = ""


class ProblemOut(BaseModel):
    id: str
    incident_key: str
    title: str
    office: str
    detail: str
    due: date
    opened_by: str
    opened_at: datetime
    closed_at: datetime | None
    overdue: bool = Field(description="Open and past its due date (counted from the day after)")

    @classmethod
    def of(cls, problem: ProblemRecord, today: date) -> ProblemOut:
        return cls(
            **problem.model_dump(include=set(cls.model_fields) - {"overdue"}),
            overdue=problem.overdue(today),
        )


def _refused(exc: IncidentRefused) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, 409)


@router.post("/api/incidents/{key}/problems", status_code=201, response_model=ProblemOut)
def raise_problem(
    key: str, body: ProblemIn, actor: Annotated[Actor, Depends(token_actor)]
) -> Response | ProblemOut:
    """Raise a problem report for the incident, as you (INC-8): :func:`staff_acts.raise_problem`,
    the workspace's too."""
    now = datetime.now(UTC)
    try:
        with session_scope() as session:
            problem = staff_acts.raise_problem(
                session,
                key=key,
                title=body.title,
                office=body.office,
                due=body.due,
                detail=body.detail,
                user=actor.user,
                now=now,
            )
    except IncidentRefused as exc:
        return _refused(exc)
    return ProblemOut.of(problem, now.date())


@router.get("/api/problems", response_model=list[ProblemOut])
def list_problems(
    actor: Annotated[Actor, Depends(token_actor)], open: bool = False, overdue: bool = False
) -> list[ProblemOut]:
    today = datetime.now(UTC).date()
    with read_scope() as session:
        found = records.list_problem_reports(session, on=today, open_only=open, overdue_only=overdue)
    return [ProblemOut.of(p, today) for p in found]


@router.post("/api/problems/{report_id}/close", response_model=ProblemOut)
def close_problem(report_id: str, actor: Annotated[Actor, Depends(token_actor)]) -> Response | ProblemOut:
    """Close a problem report (its root cause fixed): the office, or whoever raised it."""
    now = datetime.now(UTC)
    try:
        with session_scope() as session:
            problem = records.problem_report(session, report_id=report_id)
            rights.check_may_close_problem(
                report_id=report_id,
                email=actor.user.email,
                roles=actor.user.roles,
                raiser_email=problem.opened_by_email,
            )
            records.close_problem_report(session, report_id=report_id, now=now, actor=actor.user.email)
            problem = records.problem_report(session, report_id=report_id)
    except IncidentRefused as exc:
        return _refused(exc)
    return ProblemOut.of(problem, now.date())
