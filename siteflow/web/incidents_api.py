"""The incidents' web API: what `siteflow incidents …` calls, as the user its token names.

- ``POST /api/incidents`` opens one: the logged-in user is the first receiver and owner
  (INC-9), whatever the form says; the incident is reserved under its key with every core
  check (unknown contract, a report from the future, a key in use — refused, nothing written)
  before its **incident** run is started.
- ``POST /api/incidents/{key}/events`` records a field event by the user (INC-4, INC-10,
  COM-8: never in the future, in order, no departure before restoration), stamped now unless
  ``at`` says when it happened; ``…/outages`` an outage with its cause segments (INC-5 …
  INC-7; one recorded ``disputed`` goes to the customer at a gate of the run),
  ``…/outages/{id}/dispute`` disputes one afterwards (INC-7: owner or office; the customer's
  answer is final); ``…/problems`` raises a problem report (INC-8, owner or office, in
  :mod:`siteflow.web.problems_api`); ``…/close`` closes through the closure gate and the one
  decision path (INC-8);
  ``…/handover`` asks a colleague to take it over, ``…/handover/accept|decline`` is their
  answer (INC-9: the owner is unchanged until the receiver accepts).
- ``GET /api/incidents[?open=true&breached=true]`` and ``GET /api/incidents/{key}``: the clocks.

A refusal is 409 (or 422 for a form that does not parse) with the rule id first; nothing changed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError

from models.gate_spec import Door, Proof
from models.incident_input import EVENT_ADAPTER, EventKind, Instant, OutageIn
from models.incident_run import IncidentReportIn
from models.site_access import SiteAccessIn
from models.text_kinds import Email, Note, ReasonCode
from models.text_kinds import problems as form_problems
from siteflow.db import read_scope, session_scope
from siteflow.decisions import DecisionRefused
from siteflow.incidents import handover, intake, records, rights, staff_acts
from siteflow.incidents.attribution import WAKE_KEY
from siteflow.incidents.refusals import IncidentRefused
from siteflow.incidents.run_start import start_incident_run
from siteflow.incidents.run_view import publish_clocks
from siteflow.incidents.views import IncidentView, incident_view, incident_views
from siteflow.links import prefect_run_page
from siteflow.resumer import resume_run, wake_run
from siteflow.web.access import Actor
from siteflow.web.api import token_actor

router = APIRouter(prefix="/api/incidents")

FIELD_EVENTS = (
    EventKind.CONTACTED,
    EventKind.ON_SITE_NEEDED,
    EventKind.ON_MY_WAY,
    EventKind.ON_SITE,
    EventKind.RESTORED,
    EventKind.PAUSE,
    EventKind.RESUME,
    EventKind.DEPARTURE,
    EventKind.REQUEST,
    EventKind.PROMISE,
)
"""The events a person records by one word (the CLI's `incidents event`); a request or promise
to the customer (COM-2) with what and, for a promise, by when."""


class OpenedOut(BaseModel):
    key: str
    severity: str
    settled: bool
    owner: str
    flow_run_id: str
    prefect_url: str


class FieldEventIn(BaseModel):
    kind: EventKind
    at: Instant | None = Field(default=None, description="When it happened; default: now")
    reason: ReasonCode | None = Field(default=None, description="A pause's reason code (INC-4)")
    note: Note = ""
    what: Note = Field(default="", description="A request or promise to the customer: what (COM-2)")
    due: Instant | None = Field(default=None, description="A promise: by when (COM-2)")
    site_access: SiteAccessIn | None = Field(
        default=None, description="With on-site: the site-access checklist (COM-7)"
    )


class RecordedOut(BaseModel):
    key: str
    kind: EventKind
    at: datetime
    by: str
    incident: IncidentView


class OutageOut(BaseModel):
    key: str
    outage_id: str
    counted: bool
    disputed: bool = False


class DisputeIn(BaseModel):
    reason: Note = Field(
        min_length=1, description="What is disputed, and by whom (the customer's word or ours)"
    )


class DisputeOut(BaseModel):
    key: str
    outage_id: str
    gate_key: str
    waking: bool


class ClosingOut(BaseModel):
    key: str
    message: str
    resuming: bool


def _refused(exc: IncidentRefused | DecisionRefused) -> JSONResponse:
    return JSONResponse({"detail": str(exc) if isinstance(exc, IncidentRefused) else exc.reason}, 409)


def _invalid(what: str, exc: ValidationError) -> JSONResponse:
    return JSONResponse({"detail": f"the {what} is not valid", "problems": form_problems(exc)}, 422)


@router.post("", status_code=201, response_model=OpenedOut)
def open_incident(
    body: dict[str, Any], actor: Annotated[Actor, Depends(token_actor)]
) -> Response | OpenedOut:
    """Reserve the incident (every core check), then start its run; its owner is you (INC-9)."""
    try:
        report = IncidentReportIn.model_validate(
            body | {"owner_name": actor.user.name, "owner_email": actor.user.email}
        )
    except ValidationError as exc:
        return _invalid("incident form", exc)
    try:
        with session_scope() as session:
            taken = intake.take_intake(session, report=report, now=datetime.now(UTC))
    except IncidentRefused as exc:
        return _refused(exc)
    try:
        run_id = start_incident_run(report)
    except Exception as exc:  # no run: the reservation stays, a retry of the same form adopts it
        return JSONResponse(
            {"detail": f"incident {report.key} is recorded but its run did not start ({exc})"}, 503
        )
    return OpenedOut(
        key=report.key,
        severity=taken.severity.value,
        settled=taken.settled,
        owner=taken.owner,
        flow_run_id=run_id,
        prefect_url=prefect_run_page(run_id),
    )


@router.post("/{key}/events", status_code=201, response_model=RecordedOut)
def record_event(
    key: str, body: FieldEventIn, background: BackgroundTasks, actor: Annotated[Actor, Depends(token_actor)]
) -> Response | RecordedOut:
    """A field event by you, checked by the core (INC-4, COM-8); the run's clocks are published."""
    now = datetime.now(UTC)
    if body.kind not in FIELD_EVENTS:
        return JSONResponse({"detail": f"INC-4: {body.kind.value} is not a field event"}, 422)
    raw: dict[str, Any] = {
        "kind": body.kind.value,
        "at": body.at or now,
        "by": actor.user.name,
        "note": body.note,
    }
    if body.kind is EventKind.PAUSE:
        if body.reason is None:
            return JSONResponse({"detail": "INC-4: a pause needs its reason code (--reason)"}, 422)
        raw["reason"] = body.reason
    if body.kind in (EventKind.REQUEST, EventKind.PROMISE):
        if not body.what.strip():
            return JSONResponse({"detail": f"COM-2: say what the {body.kind.value} is (--what)"}, 422)
        raw["what"] = body.what
        if body.kind is EventKind.PROMISE:
            raw["due"] = body.due
    if body.kind is EventKind.ON_SITE and body.site_access is not None:  # COM-7
        raw["site_access"] = body.site_access.model_dump()
    try:
        event = EVENT_ADAPTER.validate_python(raw)
    except ValidationError as exc:
        return _invalid("event", exc)
    try:
        with session_scope() as session:
            records.record_event(session, key=key, event=event, now=now, actor=actor.user.email)
            view = incident_view(session, key=key, now=now)
    except IncidentRefused as exc:
        return _refused(exc)
    background.add_task(publish_clocks, key)
    return RecordedOut(key=key, kind=event.kind, at=event.at, by=event.by, incident=view)


def _wake(run_id: str | None) -> None:
    """INC-7: wake the incident's run so it opens the disputed outage's customer gate (the
    keeper's pass does it later if the run was not waiting at its open-gates form yet)."""
    if run_id:
        wake_run(run_id, WAKE_KEY)


@router.post("/{key}/outages", status_code=201, response_model=OutageOut)
def record_outage(
    key: str, body: dict[str, Any], background: BackgroundTasks, actor: Annotated[Actor, Depends(token_actor)]
) -> Response | OutageOut:
    """An outage with its cause segments (INC-5 … INC-7), checked before anything is written;
    one recorded as disputed goes to the customer (INC-7: only the owner or the office say so)."""
    from siteflow.settings import get_settings

    try:
        outage = OutageIn.model_validate(body)
    except ValidationError as exc:
        return _invalid("outage", exc)
    try:
        with session_scope() as session:
            run = staff_acts.run_of(session, key)
            if outage.disputed:
                rights.check_may_dispute(
                    key=key, email=actor.user.email, roles=actor.user.roles, owner_email=run.owner_email
                )
            outage_id = records.record_outage(
                session, key=key, outage=outage, now=datetime.now(UTC), actor=actor.user.email
            )
            run_id = run.flow_run_id
    except IncidentRefused as exc:
        return _refused(exc)
    if outage.disputed:
        background.add_task(_wake, run_id)
    counted = outage.duration.total_seconds() > get_settings().outage_threshold_seconds
    return OutageOut(key=key, outage_id=outage_id, counted=counted, disputed=outage.disputed)


@router.post("/{key}/outages/{outage_id}/dispute", status_code=201, response_model=DisputeOut)
def dispute_outage(
    key: str,
    outage_id: str,
    body: DisputeIn,
    background: BackgroundTasks,
    actor: Annotated[Actor, Depends(token_actor)],
) -> Response | DisputeOut:
    """INC-7: dispute a recorded outage's attribution; the run asks the customer, whose answer
    is final (a second dispute is refused). The act is :func:`staff_acts.dispute_outage`."""
    from siteflow.incidents.attribution import gate_key

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
        return _refused(exc)
    background.add_task(_wake, run_id)
    return DisputeOut(key=key, outage_id=outage_id, gate_key=gate_key(outage_id), waking=bool(run_id))


@router.post("/{key}/close", response_model=ClosingOut)
def close(
    key: str, body: dict[str, Any], background: BackgroundTasks, actor: Annotated[Actor, Depends(token_actor)]
) -> Response | ClosingOut:
    """INC-8 through the closure gate: the core's check first (every missing part named), then
    the one decision path (only the owner decides it, signed with your token) —
    :func:`staff_acts.close`, the workspace's too."""
    try:
        closing = staff_acts.close(key=key, parts=body, user=actor.user, door=Door.CLI, proof=Proof.TOKEN)
    except (IncidentRefused, DecisionRefused) as exc:
        return _refused(exc)
    if closing.resume:
        background.add_task(resume_run, closing.resume, wait_seconds=closing.result.pause_wait)
    return ClosingOut(key=key, message=closing.result.message, resuming=closing.resume is not None)


@router.get("", response_model=list[IncidentView])
def list_incidents(
    actor: Annotated[Actor, Depends(token_actor)], open: bool = False, breached: bool = False
) -> list[IncidentView]:
    with read_scope() as session:
        return incident_views(session, now=datetime.now(UTC), open_only=open, breached_only=breached)


@router.get("/{key}", response_model=IncidentView)
def show(key: str, actor: Annotated[Actor, Depends(token_actor)]) -> Response | IncidentView:
    try:
        with read_scope() as session:
            return incident_view(session, key=key, now=datetime.now(UTC), with_record=True)
    except IncidentRefused as exc:
        return JSONResponse({"detail": str(exc)}, 404)


class HandoverIn(BaseModel):
    to: Email = Field(description="The staff email of the person asked to take the incident over")
    note: Note = ""


def _me(actor: Actor) -> handover.Person:
    return handover.Person(name=actor.user.name, email=actor.user.email)


@router.post("/{key}/handover", status_code=201, response_model=handover.HandoverView)
def hand_over(
    key: str, body: HandoverIn, actor: Annotated[Actor, Depends(token_actor)]
) -> Response | handover.HandoverView:
    """INC-9: the owner asks a colleague to take over; the owner is unchanged until they accept."""
    try:
        with session_scope() as session:
            return handover.request_handover(
                session, key=key, by=_me(actor), to_email=body.to, note=body.note, now=datetime.now(UTC)
            )
    except IncidentRefused as exc:
        return _refused(exc)


@router.post("/{key}/handover/accept", response_model=handover.HandoverView)
def accept_handover(
    key: str, actor: Annotated[Actor, Depends(token_actor)]
) -> Response | handover.HandoverView:
    return _answer(key, actor, accept=True)


@router.post("/{key}/handover/decline", response_model=handover.HandoverView)
def decline_handover(
    key: str, actor: Annotated[Actor, Depends(token_actor)]
) -> Response | handover.HandoverView:
    return _answer(key, actor, accept=False)


def _answer(key: str, actor: Actor, *, accept: bool) -> Response | handover.HandoverView:
    """Only the person it is handed to answers (INC-9)."""
    try:
        with session_scope() as session:
            return handover.answer_handover(
                session, key=key, by=_me(actor), accept=accept, now=datetime.now(UTC)
            )
    except IncidentRefused as exc:
        return _refused(exc)
