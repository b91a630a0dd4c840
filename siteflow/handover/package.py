"""Build the handover package (竣工资料, ENG-29) of an engineering project.

ENG-29 hands the completion documents over *after preliminary acceptance*, so a project whose
acceptance test record is not signed yet is refused (ENG-30: accept first, then hand over).
The package holds, for every document, its final version (the newest, signed where it was
signed) twice: as PDF for people, and as the stored HTML whose SHA-256 the audit chain holds,
so anyone can check the original against the trail. Beside them the audit report (JSON and
PDF), the memos open and closed (ENG-28), the audit keys' public keyring, and the signed
manifest (:mod:`.manifest`).

The document renderer is a parameter (``document id -> PDF bytes``): the documents' PDF
layout belongs to :mod:`siteflow.documents` and is not duplicated here.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

import siteflow
from models.document import Document, DocumentStatus
from models.incident import Incident
from models.memo import Memo
from models.project import Project
from models.upgrade import UpgradeWindow
from siteflow import audit_chain, audit_checkpoints, audit_keys, audit_report
from siteflow.db import read_scope, session_scope
from siteflow.handover.manifest import (
    FORMAT,
    MANIFEST,
    SIGNATURE,
    ChainHead,
    DocumentRef,
    FileKind,
    Manifest,
    ManifestFile,
    ManifestSignature,
    ProjectRef,
    sha256,
    signed_message,
)

DocumentRenderer = Callable[[str], bytes]
"""A document version's id to its PDF (``siteflow.documents.pdf.render_pdf``)."""
AuditRenderer = Callable[[str], bytes]
"""The audit report's HTML to its PDF (:func:`siteflow.handover.audit_pdf.render`)."""

ACCEPTANCE_RECORD = "acceptance-test-record"  # ENG-27: signed by the customer = preliminary acceptance
AUDIT_JSON = "audit/audit-report.json"
AUDIT_PDF = "audit/audit-report.pdf"
KEYRING = "audit/keyring.json"
MEMOS = "memos/memos.json"


class HandoverRefused(Exception):
    """No package was built, and why, in words for the person who asked (Chinese, English)."""


@dataclass(frozen=True)
class BuiltPackage:
    data: bytes
    manifest: Manifest
    manifest_sha256: str


@dataclass(frozen=True)
class _File:
    path: str
    kind: FileKind
    data: bytes
    document: DocumentRef | None = None


def build_package(
    code: str,
    render_document: DocumentRenderer,
    render_audit: AuditRenderer,
    built_by: str,
    via: str = "cli",
) -> BuiltPackage:
    """The zip of project ``code``'s handover package; the build is recorded in its trail as
    ``handover.built`` (who, how, the manifest's SHA-256, the head it covers)."""
    _refuse_unless_accepted(code)
    report, checkpoint = _report_with_signed_head(code)
    files = _documents(report, render_document)
    files.append(_File(MEMOS, FileKind.MEMOS_JSON, _memos_json(code, files)))
    files.append(_File(AUDIT_JSON, FileKind.AUDIT_JSON, _json_bytes(report)))
    files.append(_File(AUDIT_PDF, FileKind.AUDIT_PDF, render_audit(audit_report.render_html(report))))
    keyring = audit_keys.keys_dir() / audit_keys.KEYRING
    files.append(_File(KEYRING, FileKind.KEYRING, keyring.read_bytes()))

    header = report["project"]
    built_at = datetime.now(UTC)
    manifest = Manifest(
        format=FORMAT,
        project=ProjectRef(
            code=header["code"], customer=header["customer"], phase=header["phase"], state=header["state"]
        ),
        built_at=built_at,
        built_by=built_by,
        siteflow_version=siteflow.__version__,
        audit_chain=ChainHead(
            stream=code,
            seq=checkpoint.seq,
            hash=checkpoint.hash,
            verified=True,
            signed_at=checkpoint.signed_at,
            key_id=checkpoint.key_id,
            signature=checkpoint.signature,
        ),
        files=[
            ManifestFile(
                path=f.path, kind=f.kind, size=len(f.data), sha256=sha256(f.data), document=f.document
            )
            for f in files
        ],
    )
    manifest_bytes = _json_bytes(manifest.model_dump(mode="json"))
    digest = sha256(manifest_bytes)
    key = audit_keys.signing_key()
    signed_at = datetime.now(UTC).isoformat(timespec="microseconds")
    signature = ManifestSignature(
        key_id=key.key_id,
        signed_at=signed_at,
        manifest_sha256=digest,
        signature=key.sign(signed_message(digest, signed_at)),
    )
    data = _zip(
        built_at, [(MANIFEST, manifest_bytes), (SIGNATURE, _json_bytes(signature.model_dump()))], files
    )
    with session_scope() as session:
        audit_chain.append(
            session,
            code,
            "handover.built",
            built_by,
            {
                "via": via,
                "manifest_sha256": digest,
                "files": len(files),
                "records": checkpoint.seq,
                "head": checkpoint.hash,
            },
        )
    return BuiltPackage(data=data, manifest=manifest, manifest_sha256=digest)


def _refuse_unless_accepted(code: str) -> None:
    with read_scope() as session:
        project = session.get(Project, code)
        if project is None:
            if session.get(UpgradeWindow, code) is not None or session.get(Incident, code) is not None:
                raise HandoverRefused(
                    f"{code} 不是工程项目，没有竣工资料 / {code} is not an engineering project: "
                    "only projects have a handover package (ENG-29)"
                )
            raise HandoverRefused(f"没有项目 {code} / no project {code}; `siteflow projects list` shows them")
        record = session.execute(
            select(Document.status)
            .where(Document.subject == code, Document.doc_key == ACCEPTANCE_RECORD)
            .order_by(Document.version.desc())
            .limit(1)
        ).scalar_one_or_none()
        if record != DocumentStatus.SIGNED.value:
            raise HandoverRefused(
                f"项目 {code} 尚未初验，竣工资料在初验后移交 / project {code} is not accepted yet "
                f"(phase {project.phase}, state {project.state}; its acceptance test record is "
                f"{'not issued' if record is None else record}, not signed): ENG-29 hands the "
                "completion documents over after preliminary acceptance. Nothing was built."
            )


def _report_with_signed_head(code: str) -> tuple[dict[str, Any], audit_checkpoints.Checkpoint]:
    """The audit report and a checkpoint of exactly the head it covers. A chain that does not
    verify gets no package: the package would carry a signature vouching for it."""
    for _ in range(5):  # a record appended between the report and the signature: read again
        report = audit_report.build(code)
        chain = report["chain"]
        if not chain["verified"]:
            problems = "; ".join(chain["problems"][:3])
            raise HandoverRefused(
                f"项目 {code} 的审计记录校验失败，不能移交 / the audit trail of {code} does not verify "
                f"({problems}); see `siteflow audit verify {code}`. Nothing was built."
            )
        with session_scope() as session:
            checkpoint = audit_checkpoints.sign_head(session, code, "handover")
        if checkpoint is not None and checkpoint.seq == chain["records"] and checkpoint.hash == chain["head"]:
            return report, checkpoint
    raise HandoverRefused(f"the audit trail of {code} kept changing while the package was built; try again")


def _documents(report: dict[str, Any], render_document: DocumentRenderer) -> list[_File]:
    """Each document's final version: the newest one (a signed version is superseded only by a
    correction, ENG-15, which is then the final one)."""
    final: dict[str, dict[str, Any]] = {}
    for doc in report["documents"]:
        if doc["doc_key"] not in final or doc["version"] > final[doc["doc_key"]]["version"]:
            final[doc["doc_key"]] = doc
    with read_scope() as session:
        stored = {
            d.id: d.content
            for d in session.execute(
                select(Document).where(Document.id.in_([d["id"] for d in final.values()]))
            ).scalars()
        }
    files: list[_File] = []
    for doc_key in sorted(final):
        doc = final[doc_key]
        ref = DocumentRef(
            document_id=doc["id"],
            doc_key=doc_key,
            kind=doc["kind"],
            title=doc["title"],
            version=doc["version"],
            status=doc["status"],
            sha256=doc["sha256"],
            signed_by=doc["signed_by"],
        )
        stem = f"documents/{doc_key}-v{doc['version']}"
        files.append(_File(f"{stem}.pdf", FileKind.DOCUMENT_PDF, render_document(doc["id"]), ref))
        files.append(_File(f"{stem}.html", FileKind.DOCUMENT_HTML, stored[doc["id"]].encode(), ref))
    return files


def _memos_json(code: str, files: list[_File]) -> bytes:
    """ENG-28: every memo, open ones first, each with its resolution date, owner and the PDF of
    its memo document in this package."""
    pdf_of = {f.document.document_id: f.path for f in files if f.document and f.kind is FileKind.DOCUMENT_PDF}
    with read_scope() as session:
        memos = [
            {
                "memo": m.memo_key,
                "kind": m.kind,
                "description": m.description,
                "owner": m.owner,
                "resolution_date": m.resolution_date.isoformat() if m.resolution_date else None,
                "status": m.status,
                "filed_at": m.created_at.isoformat(),
                "document": pdf_of.get(m.document_id or ""),
            }
            for m in session.execute(
                select(Memo).where(Memo.subject == code).order_by(Memo.created_at)
            ).scalars()
        ]
    return _json_bytes(
        {
            "project": code,
            "open": [m for m in memos if m["status"] == "open"],
            "closed": [m for m in memos if m["status"] != "open"],
        }
    )


def _json_bytes(body: Any) -> bytes:
    return (json.dumps(body, ensure_ascii=False, indent=2, default=str) + "\n").encode("utf-8")


def _zip(built_at: datetime, head: list[tuple[str, bytes]], files: list[_File]) -> bytes:
    stamp = built_at.timetuple()[:6]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, data in [*head, *((f.path, f.data) for f in files)]:
            info = zipfile.ZipInfo(path, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()
