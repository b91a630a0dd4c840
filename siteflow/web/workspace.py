"""The staff workspace: home, "waiting on me" and the gate page (issue #9 items 2 and 5).

Every page here needs a signed-in browser session (COM-6); without one the browser is sent
to /signin and back. A gate the person may not see answers 404, as if it did not exist.

A decision made here is recorded through the one decision door (`siteflow.decisions.decide`)
as the signed-in person, door ``web`` with the session as proof: the signer's name and email
are the account's, never anything the form says, so no one signs for someone else. Staff
sign only the contractor's side; a customer's slot is filled by the customer's own mailed
link or — on gates that accept it (ENG-13's arrival certificate) — by a contractor contact
recording the paper the customer signed and stamped on site, with its scan (door ``paper``).
A refusal is shown on the page with its reason, the form kept filled in.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.document import Document
from models.document_print import DocumentScan
from models.gate import Gate, GateDecision, GateStatus
from models.gate_spec import Door, Proof
from models.project import Project
from models.project_input import ROLE_SIDE, ContactIn, Role, Side
from models.roster import Roster, roster_of
from models.upgrade import UpgradeWindow
from siteflow.db import read_scope
from siteflow.decisions import DecisionRefused, DecisionRequest, DecisionResult, Signer, decide
from siteflow.documents import scans
from siteflow.resumer import resume_run
from siteflow.signature_proof import Evidence
from siteflow.site_time import site_time
from siteflow.web import gate_form
from siteflow.web.access import Actor, actor_of, may_see, session_actor, signin_redirect, visible_subjects
from siteflow.web.csrf import FIELD, form_ok, form_page
from siteflow.web.incident_pages import my_open_incidents
from siteflow.web.pages import HEADERS, page

router = APIRouter()

SCAN_MAX_BYTES = scans.MAX_BYTES
SCAN_TYPES = scans.TYPES  # one store and one sniffing rule for every scan (siteflow.documents.scans)
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")

FORM_EXPIRED = "页面已过期，请重新提交 / This page had expired; please submit it again"
FIX_FIELDS = "请更正标出的内容，未做任何决定 / Please correct the marked fields; nothing was decided"
PROOF_LABELS = {
    Proof.SESSION.value: "已登录 / signed in",
    Proof.TOKEN.value: "个人令牌 / personal token",
    Proof.MAILBOX.value: "本人邮件链接 / own mailed link",
    Proof.SYSTEM.value: "系统 / system",
    Proof.UNVERIFIED.value: "身份未核实 / identity not verified",
}


async def posted_form(request: Request) -> dict[str, str]:
    """Every text field of a posted form (a gate's data fields are not known in advance)."""
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


Posted = Annotated[dict[str, str], Depends(posted_form)]


def _to_signin(request: Request) -> Response:
    return RedirectResponse(signin_redirect(request), status_code=303, headers=HEADERS)


def _not_found() -> Response:
    return page("ws_not_found.html.j2", status=404)


def when(instant: datetime | None, zone: str) -> str | None:
    """A moment on the site's clock with the UTC instant beside it (issue #9 item 8)."""
    return site_time(instant, zone) if instant is not None else None


def subject_link(session: Session, subject: str) -> str:
    if session.get(UpgradeWindow, subject) is not None:
        return f"/windows/{subject}"
    return f"/projects/{subject}"


@dataclass(frozen=True)
class MyPart:
    """What the signed-in person can do at one gate."""

    decide: bool  # they fill one of its free contractor-side slots
    paper: bool  # they may record a customer's paper for it
    customers: list[ContactIn]  # whose paper it can be
    why_not: str


def my_part(gate: Gate, signed: list[GateDecision], form: Roster | None, email: str) -> MyPart:
    """Whether `email` may decide `gate` here or record a paper for it: a contact of the
    subject whose role is in one of the gate's free slots, on the contractor's side (issue #9
    item 5: customer slots only through the customer's link or a paper)."""
    if gate.status != GateStatus.OPEN.value:
        return MyPart(False, False, [], "此关口已决定 / This gate is decided")
    contact = form.contact(email) if form is not None else None
    if contact is None:
        return MyPart(False, False, [], "您不是此项目的联系人 / You are not a contact of this subject")
    if ROLE_SIDE.get(contact.role) is not Side.CONTRACTOR:
        return MyPart(False, False, [], "客户通过邮件链接签字 / Customers sign through their mailed link")
    filled = {d.party for d in signed}
    free = [p for p in gate.parties if p["slot"] not in filled]
    mine = any(contact.role.value in p["roles"] for p in free) and all(
        d.signer_email != contact.email for d in signed
    )
    customer_free = any(Role.CUSTOMER.value in p["roles"] for p in free)
    paper = bool(gate.accepts_paper and customer_free and form is not None)
    customers = (
        [c for c in form.contacts_with(Role.CUSTOMER) if all(d.signer_email != c.email for d in signed)]
        if paper and form is not None
        else []
    )
    if not mine and not paper:
        return MyPart(
            False, False, [], f"此关口不由您的角色（{contact.role.value}）决定 / Not decided by your role"
        )
    return MyPart(mine, paper, customers, "")


def _signatures(signed: list[GateDecision], zone: str, gate_id: str) -> list[dict[str, Any]]:
    rows = []
    for s in signed:
        if s.proof == Proof.PAPER.value:
            proof = (
                f"由 {s.recorded_by} 根据 {s.signer_name} 签字的纸质文件录入 / recorded by "
                f"{s.recorded_by} from a paper signed by {s.signer_name} <{s.signer_email}>"
            )
        else:
            proof = PROOF_LABELS.get(s.proof, s.proof)
        rows.append(
            {
                "by": f"{s.signer_name} <{s.signer_email}>",
                "role": s.role,
                "slot": s.party,
                "decision": s.decision,
                "door": s.door,
                "proof": proof,
                "unverified": s.proof == Proof.UNVERIFIED.value,
                "scan": s.evidence_sha256,
                "scan_url": f"/gates/{gate_id}/scans/{s.evidence_sha256}" if s.evidence_sha256 else None,
                "at": when(s.decided_at, zone),
                "comment": s.comment,
            }
        )
    return rows


def _signed(session: Session, gate_id: str) -> list[GateDecision]:
    return list(
        session.execute(
            select(GateDecision).where(GateDecision.gate_id == gate_id).order_by(GateDecision.decided_at)
        ).scalars()
    )


def _gate_context(
    session: Session, gate: Gate, actor: Actor, values: dict[str, str] | None, errors: dict[str, str]
) -> dict[str, Any]:
    form = roster_of(session, gate.subject)
    zone = gate_form.zone_of(form)
    signed = _signed(session, gate.id)
    part = my_part(gate, signed, form, actor.user.email)
    document = session.get(Document, gate.document_id) if gate.document_id else None
    shown = values if values is not None else gate_form.initial_values(gate.data_model, form)
    return {
        "who": actor.user,
        "gate": gate,
        "zone": zone,
        "subject_url": subject_link(session, gate.subject),
        "opened": when(gate.opened_at, zone),
        "deadline": when(gate.deadline, zone),
        "not_before": when(gate.not_before, zone),
        "decided": when(gate.decided_at, zone),
        "document": document,
        "signatures": _signatures(signed, zone, gate.id),
        "part": part,
        "fields": gate_form.fields(gate.data_model, form, shown, errors),
        "form_error": errors.get(gate_form.PREFIX),
        "label": gate_form.decision_label,
        "waiting": [  # who may still sign, by role: a slot's name says nothing to a person
            " / ".join(p["roles"]) for p in gate.parties if p["slot"] not in {d.party for d in signed}
        ],
    }


def _gate_page(
    request: Request,
    gate_id: str,
    actor: Actor,
    status: int = 200,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    with read_scope() as session:
        gate = session.get(Gate, gate_id)
        if gate is None or not may_see(actor, gate.subject):
            return _not_found()
        context = _gate_context(session, gate, actor, values, errors or {})
    defaults: dict[str, Any] = {
        "error": None,
        "chosen": "",
        "comment": "",
        "notice": None,
        "paper": {},
        "paper_error": None,
    }
    return form_page(request, "ws_gate.html.j2", status=status, **(defaults | context | extra))


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    actor = session_actor(request)
    if actor is None:
        return _to_signin(request)
    subjects = visible_subjects(actor)
    with read_scope() as session:
        projects = [
            p
            for p in session.execute(select(Project).order_by(Project.created_at)).scalars()
            if subjects is None or p.code in subjects
        ]
        windows = [
            w
            for w in session.execute(select(UpgradeWindow).order_by(UpgradeWindow.starts_at)).scalars()
            if subjects is None or w.id in subjects
        ]
    waiting = _waiting_on(actor)
    my_incidents, handovers = my_open_incidents(actor)
    return form_page(
        request,
        "ws_home.html.j2",
        my_incidents=my_incidents,
        handovers=handovers,
        who=actor.user,
        waiting=waiting,
        deciding=sum(1 for w in waiting if w["decide"]),
        papers=sum(1 for w in waiting if w["paper"]),
        projects=projects,
        windows=windows,
    )


def _waiting_on(actor: Actor) -> list[dict[str, Any]]:
    """The open gates this person may decide, or record a customer's paper for."""
    rows = []
    with read_scope() as session:
        gates = list(
            session.execute(
                select(Gate).where(Gate.status == GateStatus.OPEN.value).order_by(Gate.opened_at)
            ).scalars()
        )
        signed: dict[str, list[GateDecision]] = {g.id: [] for g in gates}
        for d in session.execute(  # one read for all, not one per gate: a window has hundreds
            select(GateDecision)
            .join(Gate, Gate.id == GateDecision.gate_id)
            .where(Gate.status == GateStatus.OPEN.value)
        ).scalars():
            signed.setdefault(d.gate_id, []).append(d)
        rosters: dict[str, Roster | None] = {}
        for gate in gates:
            if gate.subject not in rosters:
                rosters[gate.subject] = roster_of(session, gate.subject)
            form = rosters[gate.subject]
            if form is None or form.contact(actor.user.email) is None:
                continue
            part = my_part(gate, signed[gate.id], form, actor.user.email)
            if not (part.decide or part.paper):
                continue
            zone = gate_form.zone_of(form)
            rows.append(
                {
                    "id": gate.id,
                    "title": gate.title,
                    "rule": gate.rule,
                    "subject": gate.subject,
                    "subject_url": subject_link(session, gate.subject),
                    "opened": when(gate.opened_at, zone),
                    "deadline": when(gate.deadline, zone),
                    "decide": part.decide,
                    "paper": part.paper and not part.decide,
                }
            )
    return rows


@router.get("/inbox", response_class=HTMLResponse)
def inbox(request: Request) -> Response:
    actor = session_actor(request)
    if actor is None:
        return _to_signin(request)
    return form_page(request, "ws_inbox.html.j2", who=actor.user, waiting=_waiting_on(actor))


@router.get("/gates/{gate_id}", response_class=HTMLResponse)
def gate_page(gate_id: str, request: Request, recorded: str = "") -> Response:
    actor = session_actor(request)
    if actor is None:
        return _to_signin(request)
    notice = "您的决定已记录 / Your decision is recorded" if recorded else None
    return _gate_page(request, gate_id, actor, notice=notice)


def _acting_on_gate(request: Request, gate_id: str) -> tuple[Actor, Gate, Roster | None] | Response:
    """The signed-in actor and the gate they post to, or the answer to send instead: the
    sign-in redirect, or 404 for a gate they may not see."""
    actor = session_actor(request)
    if actor is None:
        return _to_signin(request)
    found = _visible_gate(actor, gate_id)
    if found is None:
        return _not_found()
    return (actor, *found)


def _visible_gate(actor: Actor, gate_id: str) -> tuple[Gate, Roster | None] | None:
    with read_scope() as session:
        gate = session.get(Gate, gate_id)
        if gate is None or not may_see(actor, gate.subject):
            return None
        return gate, roster_of(session, gate.subject)


@router.post("/gates/{gate_id}", response_class=HTMLResponse)
def decide_gate(gate_id: str, request: Request, background: BackgroundTasks, posted: Posted) -> Response:
    """Decide as the signed-in person (door web, proof session). Any signer name or email in
    the form is ignored: the account signs for itself."""
    acting = _acting_on_gate(request, gate_id)
    if isinstance(acting, Response):
        return acting
    actor, gate, form = acting
    values = gate_form.posted_values(posted)
    decision = posted.get("decision", "")
    comment = posted.get("comment", "")
    kept: dict[str, Any] = {"chosen": decision, "comment": comment}
    if not form_ok(request, posted.get(FIELD, "")):
        return _gate_page(request, gate_id, actor, 403, values, error=FORM_EXPIRED, **kept)
    if values.get(gate_form.ADD):  # "add a row": the same form with one more row, nothing decided
        return _gate_page(request, gate_id, actor, 200, values, **kept)
    parsed = gate_form.parse(gate.data_model, form, values)
    if parsed.errors:
        return _gate_page(request, gate_id, actor, 422, values, parsed.errors, error=FIX_FIELDS, **kept)
    data = (
        None
        if gate.data_model is None or (parsed.empty and decision not in gate.data_required_for)
        else parsed.data
    )
    try:
        result = decide(
            DecisionRequest(
                gate_id=gate.id,
                decision=decision,
                signer=Signer(name=actor.user.name, email=actor.user.email),
                door=Door.WEB,
                comment=comment.strip(),
                data=data,
                evidence=Evidence(Proof.SESSION, account=actor.user.user_id),
            ),
            resume=False,
        )
    except DecisionRefused as refused:
        errors = gate_form.field_errors(gate.data_model, form, data, decision) if data is not None else {}
        return _gate_page(request, gate_id, actor, 409, values, errors, error=refused.reason, **kept)
    return _recorded(result, background)


def _recorded(result: DecisionResult, background: BackgroundTasks) -> Response:
    """After a recorded decision: resume the run once the page is sent (the person sees the
    record at once), and show the gate again (a reload does not post twice)."""
    if result.complete and result.flow_run_id:
        background.add_task(resume_run, result.flow_run_id, wait_seconds=result.pause_wait)
    return RedirectResponse(f"/gates/{result.gate_id}?recorded=1", status_code=303, headers=HEADERS)


_scan_path = scans.scan_path
_store_scan = scans.store
_scan_type = scans.scan_type


@router.post("/gates/{gate_id}/paper", response_class=HTMLResponse)
def record_paper(
    gate_id: str,
    request: Request,
    background: BackgroundTasks,
    signer: Annotated[str, Form()] = "",
    decision: Annotated[str, Form()] = "",
    comment: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form(alias=FIELD)] = "",
    scan: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Record a paper a customer signed and stamped on site (ENG-13), with its scan: door
    paper, recorded by the signed-in contractor contact, signed by the customer contact
    chosen from the project's own list; the scan's SHA-256 goes into the trail."""
    acting = _acting_on_gate(request, gate_id)
    if isinstance(acting, Response):
        return acting
    actor, gate, form = acting
    kept: dict[str, Any] = {"paper": {"signer": signer, "decision": decision, "comment": comment}}

    def again(status: int, error: str) -> Response:
        return _gate_page(request, gate_id, actor, status, paper_error=error, **kept)

    if not form_ok(request, csrf):
        return again(403, FORM_EXPIRED)
    recorder = form.contact(actor.user.email) if form is not None else None
    if recorder is None or ROLE_SIDE.get(recorder.role) is not Side.CONTRACTOR:
        return again(403, "纸质文件由我方项目联系人录入 / A paper is recorded by one of our project contacts")
    content = scan.file.read(SCAN_MAX_BYTES + 1) if scan is not None else b""
    if not content:
        return again(422, "请附上扫描件 / Attach the scan of the signed paper")
    if len(content) > SCAN_MAX_BYTES:
        return again(413, f"扫描件过大（上限 {SCAN_MAX_BYTES // 2**20} MB）/ The scan is too large")
    kind = _scan_type(content)
    if kind is None:
        return again(415, "扫描件须为 PDF、JPEG 或 PNG / The scan must be a PDF, JPEG or PNG file")
    sha256 = hashlib.sha256(content).hexdigest()
    named = form.contact(signer) if form is not None else None
    who = Signer(name=named.name, email=named.email) if named is not None else Signer(signer, signer)
    stored = _store_scan(content, sha256, kind[0]) if gate.accepts_paper else None
    try:
        result = decide(
            DecisionRequest(
                gate_id=gate.id,
                decision=decision,
                signer=who,
                door=Door.PAPER,
                comment=comment.strip(),
                evidence=Evidence(Proof.PAPER, account=actor.user.user_id, scan_sha256=sha256),
            ),
            resume=False,
        )
    except DecisionRefused as refused:
        if stored is not None and not _scan_recorded(sha256):
            stored.unlink(missing_ok=True)
        return again(409, refused.reason)
    return _recorded(result, background)


def _scan_recorded(sha256: str, gate_id: str | None = None) -> bool:
    """The scan is evidence of a signature (of this gate, when named) — or, without a gate,
    of anything: the store is content-addressed, so the same file may also be a document's
    signed paper (document_scans), which a refused gate decision must not delete."""
    with read_scope() as session:
        q = select(GateDecision.id).where(GateDecision.evidence_sha256 == sha256)
        if gate_id is not None:
            q = q.where(GateDecision.gate_id == gate_id)
        elif session.execute(select(DocumentScan.id).where(DocumentScan.sha256 == sha256).limit(1)).first():
            return True
        return session.execute(q.limit(1)).first() is not None


@router.get("/gates/{gate_id}/scans/{sha256}")
def scan_file(gate_id: str, sha256: str, request: Request) -> Response:
    """The scan behind a paper signature, to whoever may see its gate (COM-6)."""
    actor = actor_of(request)
    if actor is None:
        return _to_signin(request)
    if not SHA256_RE.match(sha256) or _visible_gate(actor, gate_id) is None:
        return _not_found()
    if not _scan_recorded(sha256, gate_id):
        return _not_found()
    for extension, media in SCAN_TYPES.values():
        path = _scan_path(sha256, extension)
        if path.exists():
            return FileResponse(
                path, media_type=media, headers=HEADERS, filename=f"scan-{sha256[:12]}.{extension}"
            )
    return _not_found()
