"""Scans of signed, stamped papers, kept by their SHA-256 (issue #12; ENG-13, ENG-31).

Two kinds of scan share one store, ``SITEFLOW_HOME/scans/<sha256>.<ext>``: the paper a
customer signed for a gate (recorded through the decision path, door ``paper``) and the paper
of a document version that came back signed and stamped (the acceptance certificate's copies
returned to the office, ENG-31; the arrival certificate stamped on site, ENG-13), uploaded by a
staff member and kept beside the version (``document_scans``). A scan is taken only as PDF,
JPEG or PNG, recognised by its first bytes (not its name or the browser's word), and at most
10 MB. Its hash is the file's name and goes into the audit chain, so a file changed later no
longer matches its record.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from models.document import Document
from models.document_print import DocumentScan
from siteflow import audit_chain
from siteflow.db import session_scope
from siteflow.settings import get_settings

MAX_BYTES = 10 * 1024 * 1024
TYPES = {  # magic bytes → (extension, media type); nothing else is taken as a scan
    b"%PDF-": ("pdf", "application/pdf"),
    b"\xff\xd8\xff": ("jpg", "image/jpeg"),
    b"\x89PNG\r\n\x1a\n": ("png", "image/png"),
}

EMPTY = "请附上扫描件 / Attach the scan of the signed paper"
TOO_LARGE = (
    f"扫描件过大（上限 {MAX_BYTES // 2**20} MB）/ The scan is too large (at most {MAX_BYTES // 2**20} MB)"
)
WRONG_TYPE = "扫描件须为 PDF、JPEG 或 PNG / The scan must be a PDF, JPEG or PNG file"


def scan_type(content: bytes) -> tuple[str, str] | None:
    """(extension, media type) from the file's first bytes, or None."""
    return next((kind for magic, kind in TYPES.items() if content.startswith(magic)), None)


def scan_path(sha256: str, extension: str) -> Path:
    return get_settings().home / "scans" / f"{sha256}.{extension}"


def store(content: bytes, sha256: str, extension: str) -> Path:
    """Content-addressed: the same paper is one file, written whole or not at all."""
    path = scan_path(sha256, extension)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        partial = path.with_suffix(f".{os.getpid()}.part")
        partial.write_bytes(content)
        partial.replace(path)
    return path


class ScanRefused(Exception):
    """A scan not taken; `status` is the HTTP answer, the message says what to do."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def checked(content: bytes) -> tuple[str, str]:
    """The scan's (extension, media type), or why it is refused. `content` may be one byte
    longer than the limit (read that much to tell "too large")."""
    if not content:
        raise ScanRefused(422, EMPTY)
    if len(content) > MAX_BYTES:
        raise ScanRefused(413, TOO_LARGE)
    kind = scan_type(content)
    if kind is None:
        raise ScanRefused(415, WRONG_TYPE)
    return kind


@dataclass(frozen=True)
class ScanRecorded:
    document_id: str
    subject: str
    doc_key: str
    version: int
    sha256: str
    media_type: str
    size: int
    new: bool  # False: the same scan was on file for this version already


def record_document_scan(document_id: str, content: bytes, uploaded_by: str, door: str) -> ScanRecorded:
    """Keep a scan beside a document version and append ``document.scan-added`` to the
    subject's trail (who, through which door, the hash). The same file for the same version
    again is the record already made."""
    extension, media = checked(content)
    sha256 = hashlib.sha256(content).hexdigest()
    with session_scope() as session:
        doc = session.get(Document, document_id)
        if doc is None:
            raise ScanRefused(404, f"没有此文件 / No document {document_id}")
        existing = session.execute(
            select(DocumentScan).where(DocumentScan.document_id == doc.id, DocumentScan.sha256 == sha256)
        ).scalar_one_or_none()
        result = ScanRecorded(
            doc.id, doc.subject, doc.doc_key, doc.version, sha256, media, len(content), False
        )
        if existing is not None:
            return result
        store(content, sha256, extension)
        session.add(
            DocumentScan(
                document_id=doc.id,
                sha256=sha256,
                media_type=media,
                size=len(content),
                uploaded_by=uploaded_by,
                door=door,
            )
        )
        audit_chain.append(
            session,
            doc.subject,
            "document.scan-added",
            uploaded_by,
            {
                "doc_key": doc.doc_key,
                "version": doc.version,
                "document_id": doc.id,
                "document_sha256": doc.sha256,
                "scan_sha256": sha256,
                "media_type": media,
                "size": len(content),
                "door": door,
            },
        )
    return ScanRecorded(doc.id, doc.subject, doc.doc_key, doc.version, sha256, media, len(content), True)


def scans_of(document_id: str) -> list[DocumentScan]:
    with session_scope() as session:
        return list(
            session.execute(
                select(DocumentScan)
                .where(DocumentScan.document_id == document_id)
                .order_by(DocumentScan.uploaded_at)
            ).scalars()
        )
