"""The web API the CLI acts through, as the user its personal token names (issue #9 item 3).

`siteflow login` trades an email and password for a token (`POST /api/tokens`, throttled like
the sign-in page); every other call sends it as ``Authorization: Bearer sft_…`` and acts as
that user. Nobody names a signer: a decision is signed by the token's owner (door `cli`,
proof `token`). Writes take only tokens — a browser's session cookie would let another site
post on its behalf — and the workspace's forms carry CSRF tokens instead.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError

from models.gate_spec import Door, Proof
from models.project_input import ProjectIn, Role
from models.roster import window_plan
from models.text_kinds import Label, Note
from models.text_kinds import problems as form_problems
from models.upgrade import UpgradeWindow
from models.upgrade_plan import UpgradePlanIn
from siteflow.decisions import DecisionRefused, DecisionRequest, Signer, decide
from siteflow.identity.api_tokens import revoke_token
from siteflow.identity.audit import StaffAudit, StaffEvent, record
from siteflow.identity.roles import StaffRole
from siteflow.identity.signin import SigninResult, token_sign_in
from siteflow.links import gate_page, prefect_run_page, project_page, window_page
from siteflow.resumer import resume_run
from siteflow.signature_proof import Evidence
from siteflow.web.access import Actor, Via, bearer, require_actor

router = APIRouter(prefix="/api")
STARTS_PROJECTS = frozenset({StaffRole.PM, StaffRole.OFFICE, StaffRole.ADMIN})


class LoginIn(BaseModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)
    label: str = Field(default="", max_length=120, description="Where the token is kept, e.g. the host")


class TokenOut(BaseModel):
    token: str
    token_id: str
    expires_at: datetime
    name: str
    email: str


class MeOut(BaseModel):
    user_id: str
    name: str
    email: str
    roles: list[StaffRole]
    via: Via
    expires_at: datetime


class DecisionIn(BaseModel):
    decision: Label
    comment: Note = ""
    data: dict[str, Any] | None = None
    role: Role | None = Field(default=None, description="Your role on the subject, checked if given")


class DecisionOut(BaseModel):
    gate_id: str
    gate_key: str
    subject: str
    slot: str
    complete: bool
    outcome: str | None
    flow_run_id: str | None
    message: str
    signed_as: str
    resuming: bool


class StartedOut(BaseModel):
    code: str
    flow_run_id: str
    workspace_url: str
    prefect_url: str


def token_actor(actor: Annotated[Actor, Depends(require_actor)]) -> Actor:
    """Writes need a personal token (see the module's docstring)."""
    if actor.via is not Via.TOKEN:
        raise HTTPException(
            status_code=403, detail="this call takes a personal API token (`siteflow login`), not a cookie"
        )
    return actor


def _address(request: Request) -> str:
    return request.client.host if request.client else "?"


@router.post("/tokens", status_code=201, response_model=TokenOut)
def login(body: LoginIn, request: Request) -> Response | TokenOut:
    outcome = token_sign_in(body.email, body.password, _address(request), body.label)
    if outcome.result is SigninResult.THROTTLED:
        wait = outcome.retry_after_seconds or 60
        return JSONResponse(
            {"detail": f"too many failed sign-ins; try again in {max(1, -(-wait // 60))} minute(s)"},
            status_code=429,
            headers={"Retry-After": str(wait)},
        )
    if outcome.token is None:
        return JSONResponse({"detail": "wrong email or password"}, status_code=401)
    from siteflow.identity.api_tokens import token_user

    who = token_user(outcome.token.token.get_secret_value())
    assert who is not None
    return TokenOut(
        token=outcome.token.token.get_secret_value(),
        token_id=outcome.token.id,
        expires_at=outcome.token.expires_at,
        name=who.name,
        email=who.email,
    )


@router.delete("/tokens/current", status_code=204)
def logout(request: Request, actor: Annotated[Actor, Depends(token_actor)]) -> Response:
    from siteflow.db import session_scope

    secret = bearer(request)
    assert secret is not None
    with session_scope() as session:
        row = revoke_token(session, secret)
        if row is not None:
            record(
                session,
                StaffEvent.TOKEN_REVOKED,
                actor.user.email,
                StaffAudit(
                    user_id=actor.user.user_id,
                    email=actor.user.email,
                    address=_address(request),
                    token_id=row.id,
                ),
            )
    return Response(status_code=204)


@router.get("/me", response_model=MeOut)
def me(actor: Annotated[Actor, Depends(require_actor)]) -> MeOut:
    u = actor.user
    return MeOut(
        user_id=u.user_id,
        name=u.name,
        email=u.email,
        roles=u.roles,
        via=actor.via,
        expires_at=u.session_expires_at,
    )


@router.post("/gates/{gate_id}/decisions", response_model=DecisionOut)
def decide_gate(
    gate_id: str,
    body: DecisionIn,
    background: BackgroundTasks,
    actor: Annotated[Actor, Depends(token_actor)],
) -> Response | DecisionOut:
    """Sign a gate as the token's owner; 409 with the reason when refused (the refusal is recorded)."""
    at = datetime.now(UTC)  # when the decision reached siteflow: what deadlines are judged by
    user = actor.user
    try:
        result = decide(
            DecisionRequest(
                gate_id=gate_id,
                decision=body.decision,
                signer=Signer(user.name, user.email),
                door=Door.CLI,
                role=body.role.value if body.role else None,
                comment=body.comment,
                data=body.data,
                at=at,
                evidence=Evidence(Proof.TOKEN, account=user.user_id),
            ),
            resume=False,
        )
    except DecisionRefused as refused:
        status = 404 if refused.reason.startswith("no gate with id") else 409
        return JSONResponse({"detail": refused.reason, "gate_url": gate_page(gate_id)}, status_code=status)
    resuming = bool(result.complete and result.flow_run_id)
    if resuming and result.flow_run_id:
        background.add_task(resume_run, result.flow_run_id, wait_seconds=result.pause_wait)
    return DecisionOut(
        gate_id=result.gate_id,
        gate_key=result.gate_key,
        subject=result.subject,
        slot=result.slot,
        complete=result.complete,
        outcome=result.outcome,
        flow_run_id=result.flow_run_id,
        message=result.message,
        signed_as=f"{user.name} <{user.email}>",
        resuming=resuming,
    )


@router.post("/projects", status_code=201, response_model=StartedOut)
def start_project(
    body: dict[str, Any], actor: Annotated[Actor, Depends(token_actor)]
) -> Response | StartedOut:
    """Start a project's run. A PM starts projects they are listed on as PM; office and admins any."""
    from siteflow.launch import LaunchError
    from siteflow.launch import start_project as launch

    try:
        form = ProjectIn.model_validate(body)
    except ValidationError as exc:
        problems = form_problems(exc)
        return JSONResponse(
            {"detail": "the project form is not valid", "problems": problems}, status_code=422
        )
    if not actor.has(STARTS_PROJECTS):
        return JSONResponse(
            {"detail": "starting a project needs the pm, office or admin role"}, status_code=403
        )
    listed = form.contact(actor.user.email)
    if not actor.has(frozenset({StaffRole.OFFICE, StaffRole.ADMIN})) and (
        listed is None or listed.role is not Role.PM
    ):
        return JSONResponse(
            {"detail": f"{actor.user.email} is not listed as the PM of {form.code}; list yourself as its pm"},
            status_code=403,
        )
    try:
        run_id = launch(form)
    except LaunchError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=409)
    return StartedOut(
        code=form.code,
        flow_run_id=run_id,
        workspace_url=project_page(form.code),
        prefect_url=prefect_run_page(run_id),
    )


class WindowIn(BaseModel):
    plan: dict[str, Any]  # an UpgradePlanIn with its runbook resolved (the CLI reads the files)
    start_now: bool = False


class BookedOut(BaseModel):
    window_id: str
    summary: str
    elements: int
    started: bool
    workspace_url: str


def _may_run_window(actor: Actor, plan: UpgradePlanIn) -> str | None:
    """Why this actor may not book or start this window, or None. The plan's PM may; office
    and admins may any."""
    if actor.has(frozenset({StaffRole.OFFICE, StaffRole.ADMIN})):
        return None
    listed = plan.contact(actor.user.email)
    if not actor.has(STARTS_PROJECTS) or listed is None or listed.role is not Role.PM:
        return (
            f"{actor.user.email} is not listed as the PM of upgrade window {plan.id}; list yourself as its pm"
        )
    return None


@router.post("/windows", status_code=201, response_model=BookedOut)
def book_window(body: WindowIn, actor: Annotated[Actor, Depends(token_actor)]) -> Response | BookedOut:
    """Book an upgrade window for its night (`siteflow upgrade plan`), and start it if asked."""
    from tasks.upgrade_records import PlanRefused, register_window

    try:
        plan = UpgradePlanIn.model_validate(body.plan)
    except ValidationError as exc:
        problems = form_problems(exc)
        return JSONResponse({"detail": "the plan is not valid", "problems": problems}, status_code=422)
    why_not = _may_run_window(actor, plan)
    if why_not:
        return JSONResponse({"detail": why_not}, status_code=403)
    try:
        booking = register_window(plan)
    except PlanRefused as exc:
        return JSONResponse({"detail": str(exc)}, status_code=409)
    started = bool(body.start_now and _start(plan.id))
    return BookedOut(
        window_id=booking.window_id,
        summary=booking.summary(),
        elements=len(plan.elements),
        started=started,
        workspace_url=window_page(plan.id),
    )


@router.post("/windows/{window_id}/start", response_model=BookedOut)
def start_window(window_id: str, actor: Annotated[Actor, Depends(token_actor)]) -> Response | BookedOut:
    """Start a booked window's run now (`siteflow upgrade start`)."""
    from siteflow.db import read_scope
    from siteflow.web.access import may_see

    with read_scope() as session:
        window = session.get(UpgradeWindow, window_id)
        plan = window_plan(window) if window is not None else None
    if plan is None or not may_see(actor, window_id):
        return JSONResponse({"detail": f"no upgrade window {window_id!r} that you may see"}, status_code=404)
    why_not = _may_run_window(actor, plan)
    if why_not:
        return JSONResponse({"detail": why_not}, status_code=403)
    if not _start(window_id):
        return JSONResponse(
            {
                "detail": f"window {window_id} is not booked (or its deadline has passed); "
                "see `siteflow upgrade list`"
            },
            status_code=409,
        )
    return BookedOut(
        window_id=window_id,
        summary="started",
        elements=len(plan.elements),
        started=True,
        workspace_url=window_page(window_id),
    )


def _start(window_id: str) -> bool:
    from siteflow.launch import start_due_windows

    return bool(start_due_windows(until=None, only=window_id))
