"""``/projects/{code}/handover.zip``: the handover package (竣工资料, ENG-29) for signed-in staff.

The same package `siteflow handover CODE` builds, for those who may export the project's audit
trail (COM-6: the auditor and office roles, or the pm role on a project they are a contact
of) — the package holds the whole audit report. A project the user may not see answers 404,
as one that does not exist; one they see but may not export, 403; one not accepted yet (ENG-29:
after preliminary acceptance), 409 with the reason. The build is recorded in the project's
trail as ``handover.built`` with who took it and how (session or token).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import Response

from models.project import Project
from siteflow.db import read_scope
from siteflow.handover import audit_pdf
from siteflow.handover.package import HandoverRefused, build_package
from siteflow.web.access import Actor, may_export, may_see, require_actor
from siteflow.web.pages import HEADERS
from siteflow.web.subjects import EXPORT_REFUSED, NOT_FOUND

router = APIRouter()


@router.get("/projects/{code}/handover.zip")
def project_handover(code: str, actor: Annotated[Actor, Depends(require_actor)]) -> Response:
    from siteflow.documents.pdf import render_pdf

    with read_scope() as session:
        exists = session.get(Project, code) is not None
    if not exists or not may_see(actor, code):
        raise HTTPException(status_code=404, detail=NOT_FOUND.format(subject=code))
    if not may_export(actor, code):
        raise HTTPException(status_code=403, detail=EXPORT_REFUSED)
    try:
        built = build_package(
            code, render_pdf, audit_pdf.render, actor.user.email, via=f"web:{actor.via.value}"
        )
    except HandoverRefused as refused:
        raise HTTPException(status_code=409, detail=str(refused)) from None
    name = quote(f"handover-{code}.zip", safe="")
    return Response(
        built.data,
        media_type="application/zip",
        headers={
            **HEADERS,
            "Content-Disposition": f"attachment; filename*=UTF-8''{name}",
            "X-Manifest-SHA256": built.manifest_sha256,
        },
    )
