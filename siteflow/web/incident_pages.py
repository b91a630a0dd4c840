"""Incidents in the staff workspace: the service desk's queue (/incidents) and one incident's
page (/incidents/{key}) with what an agent does to it (issue #11).

Why pages of their own: the CLI and the web API serve people at a terminal; a service-desk
agent works in the browser, where the queue shows at a glance whose incident is whose and how
far each SLA clock has run (INC-4), and the incident page holds the whole story — header,
clocks, the record with the customer's messages (COM-2), outages with their cause segments and
dispute state (INC-5 … INC-7), problem reports (INC-8), a pending handover (INC-9).

Every action is a form that calls the SAME core function the web API calls — never a copy:
field events go to the phone page (/field/{key}, :mod:`siteflow.web.field_page`); handovers to
:mod:`siteflow.incidents.handover`; problem reports, disputes and closure to
:mod:`siteflow.incidents.staff_acts` (closure through the closure gate and the one decision
path, door web, proof session). Who may see and do what is the API's: any signed-in staff
member sees the incidents (the service desk's queue, as ``siteflow incidents list``); the core
refuses what is not theirs (only the owner hands over, only the receiver answers, the owner or
the office raise problems and dispute, only the owner closes). A refusal is shown in the form
it came from with the rule first, nothing changed, and the form keeps what was typed.

Who: a browser session only (a token acts through the API, never through these forms); every
form is CSRF-checked (:mod:`siteflow.web.csrf`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select

from models.gate import Gate, GateStatus
from models.gate_spec import Door, Proof
from models.incident import Incident, IncidentState
from models.incident_handover import HandoverState, IncidentHandover
from models.incident_run import IncidentRun
from models.staff import StaffUser
from models.text_kinds import problems as form_problems
from siteflow.db import read_scope, session_scope
from siteflow.decisions import DecisionRefused
from siteflow.incidents import handover, records, rights, staff_acts
from siteflow.incidents.attribution import WAKE_KEY, segments_text
from siteflow.incidents.closure import CLOSURE_PARTS
from siteflow.incidents.refusals import IncidentRefused
from siteflow.incidents.views import IncidentView, clock_rows, duration, incident_view, incident_views
from siteflow.resumer import resume_run, wake_run
from siteflow.settings import get_settings
from siteflow.site_time import site_time
from siteflow.web.access import Actor, page_session
from siteflow.web.csrf import FIELD, form_ok, form_page
from siteflow.web.incidents_api import DisputeIn, HandoverIn
from siteflow.web.pages import HEADERS
from siteflow.web.problems_api import ProblemIn

router = APIRouter()

FORM_EXPIRED = "页面已过期，请重新提交 / This page had expired; please submit it again"
DONE = {
    "handover": "已请求移交，对方接受前负责人不变 / Handover requested; you stay the owner until they accept",
    "accepted": "您已接手此故障 / You now own this incident",
    "declined": "您已拒绝移交，负责人不变 / You declined; the owner is unchanged",
    "problem": "问题报告已提交 / Problem report raised",
    "dispute": "争议已记录，将请客户决定 / Dispute recorded; the customer will decide",
    "close": "关闭已记录 / Closure recorded",
}
CLOSURE_LABELS = {
    "description": "故障描述 / Description",
    "cause": "原因 / Cause",
    "solution": "解决方案 / Solution",
    "process": "处理过程 / Process",
    "summary": "总结（发给客户）/ Summary (mailed to the customer)",
}


def _row(view: IncidentView, email: str) -> dict[str, Any]:
    return {
        "view": view,
        "mine": view.owned_by(email),
        "received": site_time(view.received_at, view.zone),
        "clocks": [
            {
                "clock": c.clock.value,
                "percent": f"{c.percent:.0f} %" if c.percent is not None else "—",
                "due": site_time(c.due_at, view.zone) if c.due_at is not None else "—",
                "breached": c.breached,
                "state": c.state.value,
            }
            for c in view.clocks
        ],
    }


def my_open_incidents(actor: Actor) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The home page's two lines: the open incidents this person owns, and the handovers that
    wait for their answer (INC-9)."""
    now = datetime.now(UTC)
    email = actor.user.email.lower()
    with read_scope() as session:
        keys = list(
            session.scalars(
                select(IncidentRun.key)
                .join(Incident, Incident.key == IncidentRun.key)
                .where(IncidentRun.owner_email == email, Incident.state == IncidentState.OPEN.value)
                .order_by(Incident.received_at)
            )
        )
        mine = [_row(v, email) for v in (incident_view(session, key=k, now=now) for k in keys)]
        asked = [
            {"key": h.incident_key, "from": f"{h.from_name} <{h.from_email}>", "note": h.note}
            for h in session.scalars(
                select(IncidentHandover)
                .where(
                    IncidentHandover.to_email == email,
                    IncidentHandover.state == HandoverState.PENDING.value,
                )
                .order_by(IncidentHandover.requested_at)
            )
        ]
    return mine, asked


@router.get("/incidents", response_class=HTMLResponse)
def incident_list(request: Request, show: str = "open", breached: str = "") -> Response:
    """The queue: open incidents by default (``show=all`` for every one, ``breached=1`` for the
    breached ones only), the signed-in person's own first, then by receipt."""
    actor = page_session(request)
    if isinstance(actor, Response):
        return actor
    every = show == "all"
    only_breached = bool(breached)
    with read_scope() as session:
        views = incident_views(
            session, now=datetime.now(UTC), open_only=not every, breached_only=only_breached
        )
    rows = [_row(v, actor.user.email) for v in reversed(views)]  # newest first …
    rows.sort(key=lambda r: not r["mine"])  # … and mine before the rest (a stable sort)
    return form_page(
        request,
        "ws_incidents.html.j2",
        who=actor.user,
        incidents=rows,
        every=every,
        breached=only_breached,
        clock_names=[c["clock"] for c in rows[0]["clocks"]] if rows else [],
    )


def _outages(session: Any, key: str, zone: str) -> list[dict[str, Any]]:
    threshold = get_settings().outage_threshold_seconds
    disputes = {d.outage_id: d for d in records.disputes_of(session, key=key)}
    rows = []
    for o in records.outages_of(session, key=key):
        dispute = disputes.get(o.id)
        rows.append(
            {
                "id": o.id,
                "element": o.outage.element,
                "type": o.outage.type.value,
                "start": site_time(o.outage.start, zone),
                "end": site_time(o.outage.end, zone),
                "duration": duration(o.outage.duration.total_seconds()),
                "units": f"{o.outage.affected_units} / {o.outage.units_in_service}",
                "counted": o.outage.duration.total_seconds() > threshold,
                "segments": segments_text(o.outage.causes),
                "attribution": o.attribution.value,
                "dispute": dispute,
                "disputable": o.attribution.value == "recorded",
            }
        )
    return rows


def _page(
    request: Request,
    actor: Actor,
    key: str,
    status: int = 200,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, dict[str, str]] | None = None,
    done: str = "",
) -> Response:
    """The incident page; ``errors`` and ``values`` put a refusal and what was typed back into
    the form it came from (keyed by form: handover, answer, problem, dispute-<id>, close)."""
    now = datetime.now(UTC)
    email = actor.user.email.lower()
    try:
        with read_scope() as session:
            view = incident_view(session, key=key, now=now, with_record=True)
            run = session.get(IncidentRun, key)
            waiting = handover.pending_handover(session, key)
            outages = _outages(session, key, view.zone)
            problems = records.list_problem_reports(session, on=now.date(), incident_key=key)
            closure_gate = session.scalar(
                select(Gate.id).where(
                    Gate.subject == key,
                    Gate.key == staff_acts.CLOSURE_GATE,
                    Gate.status == GateStatus.OPEN.value,
                )
            )
            colleagues = list(
                session.scalars(
                    select(StaffUser.email)
                    .where(StaffUser.disabled_at.is_(None), StaffUser.email != email)
                    .order_by(StaffUser.email)
                )
            )
            record = records.load_incident(session, key=key)
    except IncidentRefused:
        return form_page(request, "ws_not_found.html.j2", status=404, who=actor.user, what=key)
    owner_email = run.owner_email.lower() if run is not None else ""
    owner = email == owner_email
    office = any(r in rights.OFFICE for r in actor.user.roles)
    is_open = view.state is IncidentState.OPEN
    known = {"handover", "answer", "problem", "close"} | {f"dispute-{o['id']}" for o in outages}
    return form_page(
        request,
        "ws_incident.html.j2",
        status=status,
        who=actor.user,
        view=view,
        contract=record.contract,
        elements=record.elements,
        received=site_time(view.received_at, view.zone),
        clocks=clock_rows(view),
        record=[{"at": site_time(r.at, view.zone), "line": r} for r in view.record],
        outages=outages,
        problems=[{"p": p, "overdue": p.overdue(now.date())} for p in problems],
        waiting=(
            {
                "from": f"{waiting.from_name} <{waiting.from_email}>",
                "to": f"{waiting.to_name} <{waiting.to_email}>",
                "note": waiting.note,
                "at": site_time(waiting.requested_at, view.zone),
                "mine": waiting.to_email == email,
            }
            if waiting is not None
            else None
        ),
        reassignments=run.reassignments if run is not None else 0,
        open=is_open,
        owner=owner,
        may_act=owner or office,  # INC-7/INC-8: problems and disputes (rights.py)
        closure_waiting=closure_gate is not None,
        closure_parts=[(p, CLOSURE_LABELS[p]) for p in CLOSURE_PARTS],
        colleagues=colleagues,
        errors=errors or {},
        stray=[e for k, e in (errors or {}).items() if k not in known],  # e.g. an unknown outage
        values=values or {},
        done=DONE.get(done, ""),
    )


@router.get("/incidents/{key}", response_class=HTMLResponse)
def incident_page(key: str, request: Request, done: str = "") -> Response:
    actor = page_session(request)
    if isinstance(actor, Response):
        return actor
    return _page(request, actor, key, done=done)


def _done(key: str, what: str) -> Response:
    """After an act: show the page again (a reload does not post twice)."""
    return RedirectResponse(f"/incidents/{key}?done={what}", status_code=303, headers=HEADERS)


def _refusal(exc: IncidentRefused | DecisionRefused) -> str:
    return str(exc) if isinstance(exc, IncidentRefused) else exc.reason


@router.post("/incidents/{key}/handover", response_class=HTMLResponse)
def hand_over(
    key: str,
    request: Request,
    to: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form(alias=FIELD)] = "",
) -> Response:
    """INC-9: the owner asks a colleague to take it over (:func:`handover.request_handover`)."""
    actor = page_session(request)
    if isinstance(actor, Response):
        return actor
    kept = {"handover": {"to": to, "note": note}}

    def again(status: int, error: str) -> Response:
        return _page(request, actor, key, status, errors={"handover": error}, values=kept)

    if not form_ok(request, csrf):
        return again(403, FORM_EXPIRED)
    try:
        asked = HandoverIn.model_validate({"to": to, "note": note})
    except ValidationError as exc:
        return again(422, "; ".join(form_problems(exc)))
    me = handover.Person(name=actor.user.name, email=actor.user.email)
    try:
        with session_scope() as session:
            handover.request_handover(
                session, key=key, by=me, to_email=asked.to, note=asked.note, now=datetime.now(UTC)
            )
    except IncidentRefused as exc:
        return again(409, str(exc))
    return _done(key, "handover")


@router.post("/incidents/{key}/handover/{answer}", response_class=HTMLResponse)
def answer_handover(
    key: str, answer: str, request: Request, csrf: Annotated[str, Form(alias=FIELD)] = ""
) -> Response:
    """INC-9: the person it is handed to accepts or declines (:func:`handover.answer_handover`)."""
    actor = page_session(request)
    if isinstance(actor, Response):
        return actor
    if answer not in {"accept", "decline"}:
        return _page(request, actor, key, 404)
    if not form_ok(request, csrf):
        return _page(request, actor, key, 403, errors={"answer": FORM_EXPIRED})
    me = handover.Person(name=actor.user.name, email=actor.user.email)
    try:
        with session_scope() as session:
            handover.answer_handover(
                session, key=key, by=me, accept=answer == "accept", now=datetime.now(UTC)
            )
    except IncidentRefused as exc:
        return _page(request, actor, key, 409, errors={"answer": str(exc)})
    return _done(key, "accepted" if answer == "accept" else "declined")


@router.post("/incidents/{key}/problems", response_class=HTMLResponse)
def raise_problem(
    key: str,
    request: Request,
    title: Annotated[str, Form()] = "",
    office: Annotated[str, Form()] = "",
    due: Annotated[str, Form()] = "",
    detail: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form(alias=FIELD)] = "",
) -> Response:
    """INC-8: a problem report to the office (:func:`staff_acts.raise_problem`)."""
    actor = page_session(request)
    if isinstance(actor, Response):
        return actor
    kept = {"problem": {"title": title, "office": office, "due": due, "detail": detail}}

    def again(status: int, error: str) -> Response:
        return _page(request, actor, key, status, errors={"problem": error}, values=kept)

    if not form_ok(request, csrf):
        return again(403, FORM_EXPIRED)
    try:
        form = ProblemIn.model_validate(
            {"title": title, "office": office, "due": due or None, "detail": detail}
        )
    except ValidationError as exc:
        return again(422, "请更正 / Please correct: " + "; ".join(form_problems(exc)))
    try:
        with session_scope() as session:
            staff_acts.raise_problem(
                session,
                key=key,
                title=form.title,
                office=form.office,
                due=form.due,
                detail=form.detail,
                user=actor.user,
                now=datetime.now(UTC),
            )
    except IncidentRefused as exc:
        return again(409, str(exc))
    return _done(key, "problem")


@router.post("/incidents/{key}/outages/{outage_id}/dispute", response_class=HTMLResponse)
def dispute_outage(
    key: str,
    outage_id: str,
    request: Request,
    background: BackgroundTasks,
    reason: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form(alias=FIELD)] = "",
) -> Response:
    """INC-7: the owner or the office disputes an outage's attribution
    (:func:`staff_acts.dispute_outage`); the run is woken to ask the customer."""
    actor = page_session(request)
    if isinstance(actor, Response):
        return actor
    form_key = f"dispute-{outage_id}"
    kept = {form_key: {"reason": reason}}

    def again(status: int, error: str) -> Response:
        return _page(request, actor, key, status, errors={form_key: error}, values=kept)

    if not form_ok(request, csrf):
        return again(403, FORM_EXPIRED)
    try:
        body = DisputeIn.model_validate({"reason": reason})
    except ValidationError as exc:
        return again(422, "INC-7: " + "; ".join(form_problems(exc)))
    try:
        with session_scope() as session:
            run_id = staff_acts.dispute_outage(
                session,
                key=key,
                outage_id=outage_id,
                reason=body.reason,
                user=actor.user,
                now=datetime.now(UTC),
            )
    except IncidentRefused as exc:
        return again(409, str(exc))
    if run_id:
        background.add_task(wake_run, run_id, WAKE_KEY)
    return _done(key, "dispute")


@router.post("/incidents/{key}/close", response_class=HTMLResponse)
def close(
    key: str,
    request: Request,
    background: BackgroundTasks,
    description: Annotated[str, Form()] = "",
    cause: Annotated[str, Form()] = "",
    solution: Annotated[str, Form()] = "",
    process: Annotated[str, Form()] = "",
    summary: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form(alias=FIELD)] = "",
) -> Response:
    """INC-8 through the closure gate and the one decision path (:func:`staff_acts.close`, the
    API's too), signed as the session's person (door web)."""
    actor = page_session(request)
    if isinstance(actor, Response):
        return actor
    parts = {
        "description": description,
        "cause": cause,
        "solution": solution,
        "process": process,
        "summary": summary,
    }

    def again(status: int, error: str) -> Response:
        return _page(request, actor, key, status, errors={"close": error}, values={"close": parts})

    if not form_ok(request, csrf):
        return again(403, FORM_EXPIRED)
    try:
        closing = staff_acts.close(key=key, parts=parts, user=actor.user, door=Door.WEB, proof=Proof.SESSION)
    except (IncidentRefused, DecisionRefused) as exc:
        return again(409, _refusal(exc))
    if closing.resume:
        background.add_task(resume_run, closing.resume, wait_seconds=closing.result.pause_wait)
    return _done(key, "close")
