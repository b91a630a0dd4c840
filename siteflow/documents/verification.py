"""What the public verify page may say about a printed document (issue #12).

Anyone holding a paper — the customer's construction department, an auditor, a courier —
types its code or scans its QR code and learns only: the document's title, version and
SHA-256, who signed it and when, whether a signed scan of the paper is on file, and its state
— the current signed version; superseded by a newer version (ENG-15: a corrected paper needs
a new signature, the old one no longer counts); or issued and not yet signed. Nothing else of
the project (customer, sites, addresses, other contacts, emails, the body) is in this view, so
no page built from it can leak them.
"""

from __future__ import annotations

import enum

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.document import Document, DocumentStatus
from models.document_print import DocumentScan
from models.gate import Gate, GateDecision
from models.gate_spec import Decision
from siteflow.documents import codes
from siteflow.site_time import site_time, zone_of


class PaperState(enum.StrEnum):
    CURRENT_SIGNED = "current-signed"
    SUPERSEDED = "superseded"  # ENG-15
    NOT_SIGNED = "not-signed"


class PublicSigner(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    at: str  # the site's clock, UTC beside it


class Verified(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: str  # grouped, as printed
    title_zh: str
    title_en: str
    version: int
    sha256: str
    state: PaperState
    signed_at: str | None
    signers: list[PublicSigner]
    newest_version: int  # the newest version of the same document
    newest_signed: bool
    scan_on_file: bool


SIGNING = (Decision.APPROVE.value, Decision.SIGN.value)
"""The answers that sign a version; a refusal names nobody as a signer on the public page."""


def _signers(session: Session, doc: Document, zone: str | None) -> list[PublicSigner]:
    rows = session.execute(
        select(GateDecision.signer_name, GateDecision.decided_at)
        .join(Gate, Gate.id == GateDecision.gate_id)
        .where(Gate.document_id == doc.id, GateDecision.decision.in_(SIGNING))
        .order_by(GateDecision.decided_at)
    ).all()
    if rows:
        return [PublicSigner(name=name, at=site_time(at, zone)) for name, at in rows]
    names = [p.split("<", 1)[0].strip() for p in (doc.signed_by or "").split(";") if p.strip()]
    when = site_time(doc.signed_at, zone) if doc.signed_at else ""
    return [PublicSigner(name=n, at=when) for n in names]


def verify(session: Session, typed_code: str) -> Verified | None:
    """The public view of the version a code belongs to; None for an unknown code."""
    document_id = codes.document_of(session, typed_code)
    doc = session.get(Document, document_id) if document_id else None
    if doc is None:
        return None
    newest = session.execute(
        select(Document)
        .where(Document.subject == doc.subject, Document.doc_key == doc.doc_key)
        .order_by(Document.version.desc())
        .limit(1)
    ).scalar_one()
    if newest.version > doc.version or doc.status == DocumentStatus.SUPERSEDED.value:
        state = PaperState.SUPERSEDED
    elif doc.status == DocumentStatus.SIGNED.value:
        state = PaperState.CURRENT_SIGNED
    else:
        state = PaperState.NOT_SIGNED
    zone = zone_of(session, doc.subject)
    scans = session.scalar(select(func.count(DocumentScan.id)).where(DocumentScan.document_id == doc.id))
    title_zh, _, title_en = doc.title.partition(" / ")
    return Verified(
        code=codes.grouped(codes.canonical(typed_code) or ""),
        title_zh=title_zh,
        title_en=title_en,
        version=doc.version,
        sha256=doc.sha256,
        state=state,
        signed_at=site_time(doc.signed_at, zone) if doc.signed_at else None,
        signers=_signers(session, doc, zone),
        newest_version=newest.version,
        newest_signed=newest.status == DocumentStatus.SIGNED.value,
        scan_on_file=bool(scans),
    )
