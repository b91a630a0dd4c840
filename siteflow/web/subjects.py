"""Project and upgrade-window pages of the staff workspace, their JSON views, documents and
audit exports (issue #9 items 2 and 7).

- ``/projects``, ``/windows``: what the signed-in user may see; ``/projects/{code}`` and
  ``/windows/{window_id}`` (the addresses of `siteflow.links`): phase and state, the gates
  with who signed and how, the documents (viewable in the page, ``/documents/{id}`` on their
  own, ``/documents/{id}/download`` as a file) and the audit trail with the chain's
  verification. The page's address is the link a PM sends a colleague: it carries no
  credential, so the colleague signs in and sees it only if they may.
- ``/api/projects``, ``/api/gates``, ``/api/windows``: the same lists as JSON, for the CLI with
  a personal token.
- ``/projects/{code}/audit.json|html``, ``/windows/{window_id}/audit.json|html``: the audit
  report `siteflow audit` prints, for the auditor, office and pm roles (a PM for their own
  subjects); each export is appended to the subject's trail as ``audit.exported``.

COM-6: every route here is behind the app's guard (`siteflow.web.access.guard`); a subject
the user may not see answers 404 — the same answer as one that does not exist.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from models.document import Document
from models.project import Project
from models.upgrade import UpgradeWindow
from siteflow import audit_chain, audit_report, links
from siteflow.db import read_scope, session_scope
from siteflow.queries import as_json, list_gates, list_projects, list_windows
from siteflow.site_time import site_time, subject_zone
from siteflow.subject_view import subject_page
from siteflow.web.access import (
    Actor,
    may_export,
    may_see,
    require_actor,
    require_page_actor,
    visible_subjects,
)
from siteflow.web.csrf import form_page
from siteflow.web.pages import HEADERS

router = APIRouter()

PageActor = Annotated[Actor, Depends(require_page_actor)]
ApiActor = Annotated[Actor, Depends(require_actor)]

NOT_FOUND = "没有您可查看的项目或窗口 {subject} / No project or window {subject} that you may see"
NO_DOCUMENT = "没有您可查看的文件 {subject} / No document {subject} that you may see"
EXPORT_REFUSED = (
    "导出审计记录需要审计或办公室角色，或本项目的项目经理 / Exporting the audit trail needs the "
    "auditor or office role, or the pm role on a subject you are a contact of (COM-6)"
)


def _kind_of(subject: str) -> str | None:
    with read_scope() as session:
        if session.get(Project, subject) is not None:
            return "project"
        if session.get(UpgradeWindow, subject) is not None:
            return "window"
    return None


def _not_found(request: Request, actor: Actor, subject: str, message: str = NOT_FOUND) -> Response:
    return _page(request, actor, "not_found.html.j2", 404, message=message.format(subject=subject))


def _page(request: Request, actor: Actor, template: str, status: int = 200, **context: Any) -> Response:
    """A workspace page with the user's name and a sign-out form (CSRF-bound)."""
    return form_page(request, template, status, who=actor.user, **context)


# --- lists ------------------------------------------------------------------------------


@router.get("/projects", response_class=HTMLResponse)
def projects_page(request: Request, actor: PageActor) -> Response:
    seen = visible_subjects(actor)
    rows = [
        {**p.model_dump(), "updated": site_time(p.updated_at, subject_zone(p.code))}
        for p in list_projects()
        if seen is None or p.code in seen
    ]
    return _page(request, actor, "projects.html.j2", projects=rows)


@router.get("/windows", response_class=HTMLResponse)
def windows_page(request: Request, actor: PageActor) -> Response:
    seen = visible_subjects(actor)
    rows = [
        {**w.model_dump(), "starts": site_time(w.starts_at, w.timezone)}
        for w in list_windows()
        if seen is None or w.id in seen
    ]
    return _page(request, actor, "windows.html.j2", windows=rows)


@router.get("/api/projects")
def projects_json(actor: ApiActor) -> list[dict[str, Any]]:
    seen = visible_subjects(actor)
    return as_json([p for p in list_projects() if seen is None or p.code in seen])


@router.get("/api/windows")
def windows_json(actor: ApiActor) -> list[dict[str, Any]]:
    seen = visible_subjects(actor)
    return as_json([w for w in list_windows() if seen is None or w.id in seen])


@router.get("/api/gates")
def gates_json(
    actor: ApiActor, project: str | None = None, include_closed: bool = False
) -> list[dict[str, Any]]:
    """Gates of what the user may see; asking for one subject they may not see is a 404."""
    if project and not may_see(actor, project):
        raise HTTPException(status_code=404, detail=NOT_FOUND.format(subject=project))
    seen = visible_subjects(actor)
    return as_json([g for g in list_gates(project, include_closed) if seen is None or g.project in seen])


# --- one subject ------------------------------------------------------------------------


def _subject_page(request: Request, actor: Actor, subject: str, kind: str) -> Response:
    if _kind_of(subject) != kind or not may_see(actor, subject):
        return _not_found(request, actor, subject)
    view = subject_page(subject)
    address = links.project_page(subject) if kind == "project" else links.window_page(subject)
    base = f"/{'projects' if kind == 'project' else 'windows'}/{quote(subject, safe='')}"
    return _page(
        request,
        actor,
        "subject.html.j2",
        kind=kind,
        v=view,
        address=address,
        export_base=f"{base}/audit" if may_export(actor, subject) else None,
    )


@router.get("/projects/{code}", response_class=HTMLResponse)
def project_page(code: str, request: Request, actor: PageActor) -> Response:
    return _subject_page(request, actor, code, "project")


@router.get("/windows/{window_id}", response_class=HTMLResponse)
def window_page(window_id: str, request: Request, actor: PageActor) -> Response:
    return _subject_page(request, actor, window_id, "window")


# --- documents --------------------------------------------------------------------------


def _document(actor: Actor, document_id: str) -> Document | None:
    with read_scope() as session:
        doc = session.get(Document, document_id)
    return doc if doc is not None and may_see(actor, doc.subject) else None


@router.get("/documents/{document_id}", response_class=HTMLResponse)
def document_view(document_id: str, request: Request, actor: PageActor) -> Response:
    """The stored HTML as it was hashed and signed (ENG-15), on a page of its own."""
    doc = _document(actor, document_id)
    if doc is None:
        return _not_found(request, actor, document_id, NO_DOCUMENT)
    return HTMLResponse(doc.content, headers=HEADERS)


@router.get("/documents/{document_id}/download", response_class=HTMLResponse)
def document_download(document_id: str, request: Request, actor: PageActor) -> Response:
    """The stored HTML as a file: its SHA-256 is the one in the trail and on the page."""
    doc = _document(actor, document_id)
    if doc is None:
        return _not_found(request, actor, document_id, NO_DOCUMENT)
    name = f"{doc.subject}-{doc.doc_key}-v{doc.version}.html"
    return Response(
        doc.content.encode(),
        media_type="text/html; charset=utf-8",
        headers={
            **HEADERS,
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name, safe='')}",
            "X-Content-SHA256": doc.sha256,
        },
    )


# --- audit exports ----------------------------------------------------------------------


class ExportRefused(Exception):
    """404 for a subject the user may not see, 403 for a user without an export role."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _export(actor: Actor, subject: str, kind: str, fmt: str) -> dict[str, Any]:
    """The report `siteflow audit` prints, with the export appended to the subject's trail
    (COM-6: audit data leaves siteflow only for the auditor, office and pm roles, and the
    trail says who took it, how, and up to which record)."""
    if _kind_of(subject) != kind or not may_see(actor, subject):
        raise ExportRefused(404, NOT_FOUND.format(subject=subject))
    if not may_export(actor, subject):
        raise ExportRefused(403, EXPORT_REFUSED)
    report = audit_report.build(subject)
    with session_scope() as session:
        audit_chain.append(
            session,
            subject,
            "audit.exported",
            actor.user.email,
            {
                "user_id": actor.user.user_id,
                "name": actor.user.name,
                "via": actor.via.value,
                "format": fmt,
                "records": report["chain"]["records"],
                "head": report["chain"]["head"],
                "verified": report["chain"]["verified"],
            },
        )
    return report


def _file_name(subject: str, fmt: str) -> dict[str, str]:
    return {"Content-Disposition": f"attachment; filename*=UTF-8''{quote(f'audit-{subject}.{fmt}', safe='')}"}


def _json_export(actor: Actor, subject: str, kind: str) -> Response:
    try:
        report = _export(actor, subject, kind, "json")
    except ExportRefused as refused:
        raise HTTPException(status_code=refused.status, detail=refused.message) from None
    return JSONResponse(report, headers={**HEADERS, **_file_name(subject, "json")})


def _html_export(request: Request, actor: Actor, subject: str, kind: str) -> Response:
    try:
        report = _export(actor, subject, kind, "html")
    except ExportRefused as refused:
        return _page(request, actor, "not_found.html.j2", refused.status, message=refused.message)
    return HTMLResponse(audit_report.render_html(report), headers={**HEADERS, **_file_name(subject, "html")})


@router.get("/projects/{code}/audit.json")
def project_audit_json(code: str, actor: ApiActor) -> Response:
    return _json_export(actor, code, "project")


@router.get("/windows/{window_id}/audit.json")
def window_audit_json(window_id: str, actor: ApiActor) -> Response:
    return _json_export(actor, window_id, "window")


@router.get("/projects/{code}/audit.html", response_class=HTMLResponse)
def project_audit_html(code: str, request: Request, actor: PageActor) -> Response:
    return _html_export(request, actor, code, "project")


@router.get("/windows/{window_id}/audit.html", response_class=HTMLResponse)
def window_audit_html(window_id: str, request: Request, actor: PageActor) -> Response:
    return _html_export(request, actor, window_id, "window")
