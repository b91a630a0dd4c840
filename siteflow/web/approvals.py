"""Approval pages behind email links (issue #4, docs/architecture.md "Mail").

GET/HEAD never decide (mail scanners open links): they show a confirmation page. Only a
POST with the page's form token decides, through the same `decide` as every other door.
A used link shows what was recorded; an unknown, expired or foreign one gets one plain page
that says nothing about any gate. Repeated bad tokens from one address are slowed down,
while a valid token is always served.

The page asks for every field its gate needs, with the same typed inputs as the workspace
(`siteflow.web.gate_form`): a customer answering a coordination meeting or a readiness check
by mail fills the form there, never a JSON file. The signature is the link's recipient's, as
listed on the project, proven by the mailbox the single-use link was sent to (door email,
proof mailbox; issue #9 item 5): nothing on the page names the signer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from models.document import Document
from models.gate import Gate, GateDecision, GateStatus
from models.gate_spec import Door, Proof
from models.roster import roster_of
from models.service_language import check_service_language
from siteflow.approval_links import find_link, form_token, form_token_ok
from siteflow.db import session_scope
from siteflow.decisions import DecisionRefused, DecisionRequest, Signer, decide
from siteflow.link_throttle import note_bad_token
from siteflow.resumer import resume_run
from siteflow.signature_proof import Evidence
from siteflow.web import gate_form
from siteflow.web.pages import page
from siteflow.web.workspace import Posted

router = APIRouter()


def invalid_page(status: int) -> HTMLResponse:
    return page("link_invalid.html.j2", status=status)


def _invalid(request: Request) -> HTMLResponse:
    client = request.client.host if request.client else "?"
    return invalid_page(429 if note_bad_token(client) else 404)


def _view(token: str) -> dict[str, Any] | None:
    """Everything the page shows, or None when the link must not reveal anything."""
    with session_scope() as session:
        link = find_link(session, token)
        if link is None:
            return None
        gate = session.get(Gate, link.gate_id)
        assert gate is not None
        expired = link.expires_at is not None and link.expires_at < datetime.now(UTC)
        if expired and link.used_at is None:
            return None
        document = session.get(Document, gate.document_id) if gate.document_id else None
        signatures = (
            session.execute(
                select(GateDecision).where(GateDecision.gate_id == gate.id).order_by(GateDecision.decided_at)
            )
            .scalars()
            .all()
        )
        return {
            "link": {"name": link.recipient_name, "email": link.recipient_email, "used": link.used_at},
            "roster": roster_of(session, gate.subject),
            "gate": {
                "data_model": gate.data_model,
                "data_required_for": list(gate.data_required_for),
                "title": gate.title,
                "rule": gate.rule,
                "description": gate.description,
                "decisions": list(gate.decisions),
                "status": gate.status,
                "outcome": gate.outcome,
                "open": gate.status == GateStatus.OPEN.value,
                "project": gate.subject,
                "id": gate.id,
            },
            "document": {
                "title": document.title,
                "version": document.version,
                "sha256": document.sha256,
                "content": document.content,
            }
            if document
            else None,
            "signatures": [
                {
                    "by": f"{s.signer_name}",
                    "decision": s.decision,
                    "door": s.door,
                    "at": s.decided_at.strftime("%Y-%m-%d %H:%M UTC"),
                    "comment": s.comment,
                }
                for s in signatures
            ],
            "mine": next((s for s in signatures if s.signer_email == link.recipient_email), None) is not None,
            "link_id": link.id,
        }


@router.head("/a/{token}", response_class=HTMLResponse, include_in_schema=False)  # mail scanners
@router.get("/a/{token}", response_class=HTMLResponse)
def confirmation_page(token: str, request: Request) -> HTMLResponse:
    view = _view(token)
    if view is None:
        return _invalid(request)
    if view["link"]["used"] or view["mine"] or not view["gate"]["open"]:
        return page("link_recorded.html.j2", **view)
    values = gate_form.initial_values(view["gate"]["data_model"], view["roster"])
    return _confirm(token, view, 200, values, {}, None, "", "")


def _confirm(
    token: str,
    view: dict[str, Any],
    status: int,
    values: dict[str, str],
    errors: dict[str, str],
    error: str | None,
    chosen: str,
    comment: str,
) -> HTMLResponse:
    """The confirmation page with the gate's typed fields, filled with what was typed."""
    fields = gate_form.fields(view["gate"]["data_model"], view["roster"], values, errors)
    return page(
        "link_confirm.html.j2",
        status=status,
        form_token=form_token(token),
        error=error,
        fields=fields,
        form_error=errors.get(gate_form.PREFIX),
        chosen=chosen,
        comment=comment,
        label=gate_form.decision_label,
        **view,
    )


@router.post("/a/{token}", response_class=HTMLResponse)
def submit_decision(
    token: str, request: Request, background: BackgroundTasks, posted: Posted
) -> HTMLResponse:
    view = _view(token)
    if view is None:
        return _invalid(request)
    if not form_token_ok(token, posted.get("form_token", "")):
        return invalid_page(403)
    if view["link"]["used"] or view["mine"] or not view["gate"]["open"]:
        return page("link_recorded.html.j2", **view)
    decision = posted.get("decision", "")
    comment = posted.get("comment", "")
    values = gate_form.posted_values(posted)
    model, roster = view["gate"]["data_model"], view["roster"]

    def again(error: str | None, status: int, errors: dict[str, str] | None = None) -> HTMLResponse:
        return _confirm(token, view, status, values, errors or {}, error, decision, comment)

    if values.get(gate_form.ADD):  # "add a row": the same page with one more row, nothing decided
        return again(None, 200)
    violations = check_service_language(comment)  # COM-1 applies to what the record keeps too
    if violations:
        return again("; ".join(str(v) for v in violations), 422)
    parsed = gate_form.parse(model, roster, values)
    if parsed.errors:
        return again(
            "请更正标出的内容，未做任何决定 / Please correct the marked fields; nothing was decided",
            422,
            parsed.errors,
        )
    data = (
        None
        if model is None or (parsed.empty and decision not in view["gate"]["data_required_for"])
        else parsed.data
    )
    # the signature names the person the link was mailed to, as listed; a typed name changes nothing
    signer = Signer(name=view["link"]["name"], email=view["link"]["email"])
    try:
        result = decide(
            DecisionRequest(
                data=data,
                gate_id=view["gate"]["id"],
                decision=decision,
                signer=signer,
                door=Door.EMAIL,
                comment=comment.strip(),
                evidence=Evidence(Proof.MAILBOX, link=view["link_id"]),  # the link proves the mailbox
            ),
            resume=False,
        )
    except DecisionRefused as refused:
        fresh = _view(token)
        if fresh is not None and not fresh["gate"]["open"]:
            return page("link_recorded.html.j2", **fresh)
        errors = gate_form.field_errors(model, roster, data, decision) if data is not None else {}
        return again(refused.reason, 409, errors)
    if result.complete and result.flow_run_id:
        # After the page is sent: the signer sees the record at once, not after Prefect's answer.
        background.add_task(resume_run, result.flow_run_id, wait_seconds=result.pause_wait)
    fresh = _view(token)
    assert fresh is not None
    return page("link_recorded.html.j2", **fresh)
