"""Approval pages behind email links (issue #4, DESIGN.md "Mail").

GET/HEAD never decide (mail scanners open links): they show a confirmation page. Only a
POST with the page's form token decides, through the same `decide` as every other door.
A used link shows what was recorded; an unknown, expired or foreign one gets one plain page
that says nothing about any gate. Repeated bad tokens from one address are slowed down,
while a valid token is always served.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from models.document import Document
from models.gate import Gate, GateDecision, GateStatus
from models.gate_spec import Door, Proof
from models.service_language import check_service_language
from siteflow.approval_links import find_link, form_token, form_token_ok
from siteflow.db import session_scope
from siteflow.decisions import DecisionRefused, DecisionRequest, Signer, decide
from siteflow.link_throttle import note_bad_token
from siteflow.resumer import resume_run
from siteflow.signature_proof import Evidence
from siteflow.web.pages import page

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
            "gate": {
                "asks_date": gate.data_model == "ReadinessIn",
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


@router.api_route("/a/{token}", methods=["GET", "HEAD"], response_class=HTMLResponse)
def confirmation_page(token: str, request: Request) -> HTMLResponse:
    view = _view(token)
    if view is None:
        return _invalid(request)
    if view["link"]["used"] or view["mine"] or not view["gate"]["open"]:
        return page("link_recorded.html.j2", **view)
    return page("link_confirm.html.j2", form_token=form_token(token), error=None, **view)


@router.post("/a/{token}", response_class=HTMLResponse)
def submit_decision(
    token: str,
    request: Request,
    background: BackgroundTasks,
    decision: Annotated[str, Form()] = "",
    signer_name: Annotated[str, Form()] = "",
    comment: Annotated[str, Form()] = "",
    agreed_date: Annotated[str, Form()] = "",
    form_token_field: Annotated[str, Form(alias="form_token")] = "",
) -> HTMLResponse:
    view = _view(token)
    if view is None:
        return _invalid(request)
    if not form_token_ok(token, form_token_field):
        return invalid_page(403)
    if view["link"]["used"] or view["mine"] or not view["gate"]["open"]:
        return page("link_recorded.html.j2", **view)

    def again(error: str, status: int) -> HTMLResponse:
        return page("link_confirm.html.j2", status=status, form_token=form_token(token), error=error, **view)

    violations = check_service_language(comment)  # COM-1 applies to what the record keeps too
    if violations:
        return again("; ".join(str(v) for v in violations), 422)
    # the signature names the person the link was mailed to, as listed; a typed name changes nothing
    signer = Signer(name=view["link"]["name"], email=view["link"]["email"])
    try:
        data = {"agreed_date": agreed_date} if agreed_date and view["gate"]["asks_date"] else None
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
        return again(refused.reason, 409)
    if result.complete and result.flow_run_id:
        # After the page is sent: the signer sees the record at once, not after Prefect's answer.
        background.add_task(resume_run, result.flow_run_id, wait_seconds=result.pause_wait)
    fresh = _view(token)
    assert fresh is not None
    return page("link_recorded.html.j2", **fresh)
