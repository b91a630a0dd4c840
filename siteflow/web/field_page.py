"""The engineer's phone page for an incident: /field and /field/{key} (INC-4, COM-8).

Why a page of its own: in the field an engineer has a phone, not a laptop with the CLI. One tap
records "contacted", "on-site needed", "on my way", "on site" or "restored" as the signed-in
person, stamped now — or at the local time typed beside it when the tap comes late (the
clocks run from when things happened, not from when they were typed). The same core checks
as the CLI and the API apply (never in the future, in order, COM-8's departure rule): a
refusal is shown on the page with the rule first, and nothing changes. After each event the
run's clocks artifact is published again.

Who: a browser session only (the API serves tokens); any signed-in staff member sees the open
incidents, as in the service desk's queue and its API (``siteflow incidents list``), and records
as themselves. Forms are CSRF-checked like every other form.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select

from models.incident import Incident, IncidentState
from models.incident_input import EVENT_ADAPTER, EventKind
from models.text_kinds import problems as form_problems
from siteflow.db import read_scope, session_scope
from siteflow.incidents import records
from siteflow.incidents.refusals import IncidentRefused
from siteflow.incidents.run_view import publish_clocks
from siteflow.incidents.views import IncidentView, clock_rows, incident_view
from siteflow.site_time import site_time
from siteflow.web.access import Actor, page_session
from siteflow.web.csrf import FIELD, form_ok, form_page
from siteflow.web.pages import HEADERS

router = APIRouter()

TAPS: list[tuple[EventKind, str]] = [
    (EventKind.CONTACTED, "已联系客户 / Contacted"),
    (EventKind.ON_SITE_NEEDED, "需要到现场 / On-site needed"),
    (EventKind.ON_MY_WAY, "在路上 / On my way"),
    (EventKind.ON_SITE, "已到现场 / On site"),
    (EventKind.RESTORED, "已恢复 / Restored"),
]
"""Response; the on-site decision that starts the travel clock (INC-4: recorded before "on my
way"); travel; arrival, which stops it; restoration."""

FORM_EXPIRED = "页面已过期，请重新点击 / This page had expired; please tap again"


@router.get("/field", response_class=HTMLResponse)
def field_list(request: Request) -> Response:
    """The open incidents, the signed-in person's own first."""
    actor = page_session(request)
    if isinstance(actor, Response):
        return actor
    now = datetime.now(UTC)
    with read_scope() as session:
        keys = list(
            session.scalars(
                select(Incident.key)
                .where(Incident.state == IncidentState.OPEN.value)
                .order_by(Incident.received_at.desc())
            )
        )
        views = [incident_view(session, key=k, now=now) for k in keys]
    views.sort(key=lambda v: not v.owned_by(actor.user.email))
    return form_page(
        request,
        "field_list.html.j2",
        who=actor.user,
        incidents=[
            {"view": v, "mine": v.owned_by(actor.user.email), "received": site_time(v.received_at, v.zone)}
            for v in views
        ],
    )


def _page(
    request: Request, actor: Actor, key: str, status: int = 200, *, error: str = "", recorded: str = ""
) -> Response:
    now = datetime.now(UTC)
    try:
        with read_scope() as session:
            view = incident_view(session, key=key, now=now)
            record = records.load_incident(session, key=key)
    except IncidentRefused:
        return form_page(request, "ws_not_found.html.j2", status=404, who=actor.user, what=key)
    done = {e.kind: e for e in record.events}
    return form_page(
        request,
        "field_incident.html.j2",
        status=status,
        who=actor.user,
        view=view,
        clocks=clock_rows(view),
        taps=[
            {
                "kind": kind.value,
                "label": label,
                "done": site_time(done[kind].at, view.zone) if kind in done else None,
                "by": done[kind].by if kind in done else None,
            }
            for kind, label in TAPS
        ],
        open=view.state is IncidentState.OPEN,
        error=error,
        recorded=recorded,
        local_now=now.astimezone(ZoneInfo(view.zone)).strftime("%H:%M"),
    )


@router.get("/field/{key}", response_class=HTMLResponse)
def field_incident(key: str, request: Request, recorded: str = "") -> Response:
    actor = page_session(request)
    if isinstance(actor, Response):
        return actor
    label = dict((k.value, text) for k, text in TAPS).get(recorded, "")
    return _page(request, actor, key, recorded=label)


def happened_at(typed: str, view: IncidentView, now: datetime) -> datetime:
    """The instant a tap stands for: now, or today's local time typed (HH:MM, the incident's
    zone); a time later than now is yesterday's — a night call recorded after midnight."""
    if not typed.strip():
        return now
    try:
        clock = time.fromisoformat(typed.strip())
    except ValueError:
        raise ValueError(
            f"时间 {typed!r} 无效 / {typed!r} is not a time: type HH:MM or leave it empty for now"
        ) from None
    zone = ZoneInfo(view.zone)
    local = datetime.combine(now.astimezone(zone).date(), clock.replace(second=0), tzinfo=zone)
    if local > now:
        local -= timedelta(days=1)
    return local.astimezone(UTC)


@router.post("/field/{key}", response_class=HTMLResponse)
def tap(
    key: str,
    request: Request,
    background: BackgroundTasks,
    kind: Annotated[str, Form()] = "",
    at: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    duty_staff: Annotated[str, Form()] = "",
    badge: Annotated[str, Form()] = "",
    removable_media: Annotated[str, Form()] = "",
    room_supervisor: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form(alias=FIELD)] = "",
) -> Response:
    """One tap: the event as the signed-in person, through the core's checks; "on site" carries
    the COM-7 site-access checklist from the fields beside its button."""
    actor = page_session(request)
    if isinstance(actor, Response):
        return actor
    if not form_ok(request, csrf):
        return _page(request, actor, key, 403, error=FORM_EXPIRED)
    if kind not in {k.value for k, _ in TAPS}:
        return _page(request, actor, key, 422, error=f"未知操作 / Unknown action {kind[:40]!r}")
    now = datetime.now(UTC)
    try:
        with read_scope() as session:
            view = incident_view(session, key=key, now=now)
        instant = happened_at(at, view, now)
    except IncidentRefused:
        return _page(request, actor, key, 404)
    except ValueError as exc:
        return _page(request, actor, key, 422, error=str(exc))
    raw: dict[str, Any] = {"kind": kind, "at": instant, "by": actor.user.name, "note": note}
    if kind == EventKind.ON_SITE.value:
        raw["site_access"] = {
            "duty_staff_consent": bool(duty_staff.strip()),
            "duty_staff_name": duty_staff,
            "badge": badge == "yes",
            "removable_media": removable_media == "yes",
            "room_supervisor_consent": bool(room_supervisor.strip()),
            "room_supervisor_name": room_supervisor,
        }
    try:
        event = EVENT_ADAPTER.validate_python(raw)
    except ValidationError as exc:
        return _page(request, actor, key, 422, error="; ".join(form_problems(exc)))
    try:
        with session_scope() as session:
            records.record_event(session, key=key, event=event, now=now, actor=actor.user.email)
    except IncidentRefused as exc:
        return _page(request, actor, key, 409, error=str(exc))
    background.add_task(publish_clocks, key)
    return RedirectResponse(f"/field/{key}?recorded={kind}", status_code=303, headers=HEADERS)
