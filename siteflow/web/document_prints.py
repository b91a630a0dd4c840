"""Printed documents in the workspace and the web API (issue #12): the PDF of a version, its
paper page (verification code, QR code, scans on file, the upload form) and scan uploads.

- ``/documents/{id}/pdf`` (a signed-in browser) and ``/api/documents/{id}/pdf`` (a personal
  token, `siteflow documents pdf`): the version's PDF as it stands now.
- ``/documents/{id}/paper``: the paper page; its form posts the scan of the signed, stamped
  paper to ``/documents/{id}/scans`` (CSRF-bound like every workspace form).
- ``/api/documents?subject=CODE``: the versions of a subject (`siteflow documents list`);
  ``POST /api/documents/{id}/scans``: a scan uploaded with a personal token
  (`siteflow documents scan`).

COM-6: everything here is behind the app's guard; a version of a subject the user may not see
answers 404, like one that does not exist. A scan is added by one of the subject's own
contacts or the office (the acceptance certificate's copies go back to the office's interface
person, ENG-31), never by an auditor reading the trail; it is kept hashed beside the version
and recorded in the trail (`siteflow.documents.scans`).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from models.document import Document
from models.gate_spec import Door
from siteflow.db import read_scope, session_scope
from siteflow.documents import codes, scans
from siteflow.documents.fonts import CjkFontMissing
from siteflow.documents.pdf import render_pdf
from siteflow.documents.qr import qr_svg
from siteflow.identity.roles import StaffRole
from siteflow.web.access import Actor, Via, is_contact, may_see, require_actor, require_page_actor
from siteflow.web.api import token_actor
from siteflow.web.csrf import FIELD, form_ok, form_page
from siteflow.web.pages import HEADERS

router = APIRouter()

PageActor = Annotated[Actor, Depends(require_page_actor)]
ApiActor = Annotated[Actor, Depends(require_actor)]

NO_DOCUMENT = "没有您可查看的文件 {id} / No document {id} that you may see"
NOT_YOURS = (
    "扫描件由本项目的联系人或办事处上传 / A scan is added by one of this project's contacts or the "
    "office (ENG-31: the papers go back to the office's interface person)"
)
FORM_EXPIRED = "页面已过期，请重新上传 / This page had expired; please upload the scan again"


def _visible(actor: Actor, document_id: str) -> Document | None:
    with read_scope() as session:
        doc = session.get(Document, document_id)
    return doc if doc is not None and may_see(actor, doc.subject) else None


def _may_add_scan(actor: Actor, doc: Document) -> bool:
    return is_contact(actor, doc.subject) or actor.has(frozenset({StaffRole.OFFICE}))


def _pdf_response(doc: Document) -> Response:
    try:
        content = render_pdf(doc.id)
    except CjkFontMissing as missing:
        raise HTTPException(status_code=503, detail=str(missing)) from None
    name = f"{doc.subject}-{doc.doc_key}-v{doc.version}.pdf"
    return Response(
        content,
        media_type="application/pdf",
        headers={
            **HEADERS,
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name, safe='')}",
            "X-Document-SHA256": doc.sha256,
        },
    )


@router.get("/documents/{document_id}/pdf", response_class=HTMLResponse)
def document_pdf(document_id: str, request: Request, actor: PageActor) -> Response:
    doc = _visible(actor, document_id)
    if doc is None:
        return _paper_page(request, actor, None, 404, error=NO_DOCUMENT.format(id=document_id))
    return _pdf_response(doc)


@router.get("/api/documents/{document_id}/pdf")
def document_pdf_api(document_id: str, actor: ApiActor) -> Response:
    doc = _visible(actor, document_id)
    if doc is None:
        raise HTTPException(status_code=404, detail=NO_DOCUMENT.format(id=document_id))
    return _pdf_response(doc)


def _versions(subject: str) -> list[dict[str, Any]]:
    with session_scope() as session:  # a version without a code yet gets one now
        docs = list(
            session.execute(
                select(Document)
                .where(Document.subject == subject)
                .order_by(Document.doc_key, Document.version)
            ).scalars()
        )
        return [
            {
                "id": d.id,
                "doc_key": d.doc_key,
                "kind": d.kind,
                "title": d.title,
                "version": d.version,
                "status": d.status,
                "sha256": d.sha256,
                "copies": d.copies,
                "signed_by": d.signed_by,
                "signed_at": d.signed_at.isoformat() if d.signed_at else None,
                "verification_code": codes.grouped(codes.code_for(session, d.id)),
            }
            for d in docs
        ]


@router.get("/api/documents")
def documents_json(subject: str, actor: ApiActor) -> list[dict[str, Any]]:
    """Every version of a subject's documents, oldest first per document (404 for a subject
    the user may not see)."""
    if not may_see(actor, subject):
        raise HTTPException(status_code=404, detail=f"no project or window {subject!r} that you may see")
    return _versions(subject)


def _paper_page(
    request: Request, actor: Actor, doc: Document | None, status: int = 200, **extra: Any
) -> Response:
    context: dict[str, Any] = {"who": actor.user, "doc": None, "error": None, "notice": None} | extra
    if doc is not None:
        with session_scope() as session:
            code = codes.code_for(session, doc.id)
        context |= {
            "doc": doc,
            "code": codes.grouped(code),
            "verify_url": codes.verify_url(code),
            "qr": qr_svg(codes.verify_url(code)),
            "scans": scans.scans_of(doc.id),
            "may_add": _may_add_scan(actor, doc),
            "max_mb": scans.MAX_BYTES // 2**20,
        }
    return form_page(request, "ws_paper.html.j2", status, **context)


@router.get("/documents/{document_id}/paper", response_class=HTMLResponse)
def paper_page(document_id: str, request: Request, actor: PageActor, added: str = "") -> Response:
    doc = _visible(actor, document_id)
    if doc is None:
        return _paper_page(request, actor, None, 404, error=NO_DOCUMENT.format(id=document_id))
    notice = "扫描件已存档 / The scan is on file" if added else None
    return _paper_page(request, actor, doc, notice=notice)


def _add_scan(actor: Actor, doc: Document, upload: UploadFile | None, door: Door) -> scans.ScanRecorded:
    if not _may_add_scan(actor, doc):
        raise scans.ScanRefused(403, NOT_YOURS)
    content = upload.file.read(scans.MAX_BYTES + 1) if upload is not None else b""
    who = f"{actor.user.name} <{actor.user.email}>"
    return scans.record_document_scan(doc.id, content, who, door.value)


@router.post("/documents/{document_id}/scans", response_class=HTMLResponse)
def add_scan(
    document_id: str,
    request: Request,
    actor: PageActor,
    csrf: Annotated[str, Form(alias=FIELD)] = "",
    scan: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """A scan from the paper page: the signed-in person (door web), CSRF-checked."""
    doc = _visible(actor, document_id)
    if doc is None:
        return _paper_page(request, actor, None, 404, error=NO_DOCUMENT.format(id=document_id))
    if actor.via is not Via.SESSION or not form_ok(request, csrf):
        return _paper_page(request, actor, doc, 403, error=FORM_EXPIRED)
    try:
        _add_scan(actor, doc, scan, Door.WEB)
    except scans.ScanRefused as refused:
        return _paper_page(request, actor, doc, refused.status, error=refused.message)
    return RedirectResponse(
        f"/documents/{quote(doc.id, safe='')}/paper?added=1", status_code=303, headers=HEADERS
    )


@router.post("/api/documents/{document_id}/scans")
def add_scan_api(
    document_id: str,
    actor: Annotated[Actor, Depends(token_actor)],
    scan: Annotated[UploadFile | None, File()] = None,
) -> dict[str, Any]:
    """A scan with a personal token (`siteflow documents scan`, door cli). A token only: a
    browser session uploads through the paper page's CSRF-bound form, never through here."""
    doc = _visible(actor, document_id)
    if doc is None:
        raise HTTPException(status_code=404, detail=NO_DOCUMENT.format(id=document_id))
    try:
        added = _add_scan(actor, doc, scan, Door.CLI)
    except scans.ScanRefused as refused:
        raise HTTPException(status_code=refused.status, detail=refused.message) from None
    return {
        "document_id": added.document_id,
        "doc_key": added.doc_key,
        "version": added.version,
        "sha256": added.sha256,
        "media_type": added.media_type,
        "size": added.size,
        "new": added.new,
    }
