"""Render, version, store and sign documents (docs/architecture.md "Documents", ENG-15).

A document is rendered from a typed :class:`DocumentBody` by a bilingual Jinja2 template.
Issuing the same content again returns the stored version (flows re-run from the top);
different content becomes a new version that supersedes the old one and needs its own
signature. A signed version is never altered (enforced again in ``models.document``).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel
from sqlalchemy import select

from models.document import Document, DocumentStatus
from models.document_body import DOCUMENT_KINDS, DocumentBody
from siteflow import audit_chain
from siteflow.db import session_scope
from siteflow.documents import codes
from siteflow.mail_body import literal
from siteflow.settings import get_settings
from tasks import side_effect

TEMPLATES = Path(__file__).parent / "templates"


class DocumentRead(BaseModel):
    id: str
    subject: str
    kind: str
    doc_key: str
    version: int
    title: str
    sha256: str
    status: str
    summary_md: str
    verification_code: str = ""  # printed on the PDF, opens /verify/CODE (issue #12)


def _md_escape(value: object) -> str:
    """A typed value as literal Markdown text, on one line: what a person typed never becomes
    a link, a heading or a table cell break in the summary, the Prefect artifact or a mail."""
    return literal(str(value).replace("\n", " "))


@lru_cache(maxsize=1)
def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "html.j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = _md_escape
    return env


def render_html(body: DocumentBody, version: int) -> str:
    return _env().get_template("document.html.j2").render(doc=body, version=version)


def render_summary(body: DocumentBody, version: int, sha256: str) -> str:
    return _env().get_template("document.md.j2").render(doc=body, version=version, sha256=sha256)


def body_for(kind: str, project_code: str, customer: str, **content: object) -> DocumentBody:
    """A body with the kind's bilingual title and rule filled in from the registry."""
    zh, en, rule = DOCUMENT_KINDS[kind]
    return DocumentBody.model_validate(
        {
            "kind": kind,
            "title_zh": zh,
            "title_en": en,
            "rule": rule,
            "project_code": project_code,
            "customer": customer,
            **content,
        }
    )


def _read(doc: Document, body: DocumentBody, code: str = "") -> DocumentRead:
    return DocumentRead(
        id=doc.id,
        subject=doc.subject,
        kind=doc.kind,
        doc_key=doc.doc_key,
        version=doc.version,
        title=doc.title,
        sha256=doc.sha256,
        status=doc.status,
        summary_md=render_summary(body, doc.version, doc.sha256),
        verification_code=code,
    )


def body_digest(body: DocumentBody) -> str:
    """Identity of a document's content, independent of the version number printed on it."""
    return hashlib.sha256(body.model_dump_json().encode()).hexdigest()


@side_effect(name="issue-document")
def issue_document(doc_key: str, body: DocumentBody) -> DocumentRead:
    """Store a new version unless a version with exactly this content exists already.

    Matching any version (not just the newest) matters for loops: a re-run passes through
    round 1 again after round 2 issued a corrected version, and must get round 1's version.
    """
    body_sha = body_digest(body)
    with session_scope() as session:
        versions = list(
            session.execute(
                select(Document)
                .where(Document.subject == body.project_code, Document.doc_key == doc_key)
                .order_by(Document.version.desc())
            ).scalars()
        )
        same = next((d for d in versions if d.body_sha256 == body_sha), None)
        if same is not None:
            return _read(same, body, codes.code_for(session, same.id))
        latest = versions[0] if versions else None
        version = 1 if latest is None else latest.version + 1
        html = render_html(body, version)
        digest = hashlib.sha256(html.encode()).hexdigest()
        doc = Document(
            subject=body.project_code,
            kind=body.kind,
            doc_key=doc_key,
            version=version,
            title=f"{body.title_zh} / {body.title_en}",
            content=html,
            body_json=body.model_dump_json(),
            sha256=digest,
            body_sha256=body_sha,
            copies=body.copies,
            supersedes_id=latest.id if latest else None,
        )
        session.add(doc)
        if latest is not None and latest.status != DocumentStatus.SUPERSEDED.value:
            latest.status = DocumentStatus.SUPERSEDED.value
        session.flush()
        audit_chain.append(
            session,
            body.project_code,
            "document.issued",
            "system:siteflow",
            {
                "doc_key": doc_key,
                "kind": body.kind,
                "version": version,
                "sha256": digest,
                "document_id": doc.id,
                "copies": body.copies,
            },
        )
        read = _read(doc, body, codes.code_for(session, doc.id))
    code = codes.grouped(read.verification_code)
    create_markdown_artifact(
        key=f"{body.project_code.lower()}-{doc_key}"[:100],
        markdown=read.summary_md
        + f"\n\n[PDF 打印版 / printable PDF]({get_settings().resolved_public_url}/documents/{doc.id}/pdf)"
        " (siteflow's web, signed in)"
        + f"\n\n验证码 / Verification code: `{code}` — printed with its QR code on the PDF; "
        f"{_md_escape(codes.verify_url(read.verification_code))} shows whether a paper is the "
        "current signed version (ENG-15)\n",
        description=f"{read.title} v{version} sha256 {digest} verification code {code}",
    )
    return read


@side_effect(name="sign-document")
def sign_document(document_id: str, signed_by: list[str]) -> None:
    """Mark a version signed by the people who decided its gate (once; ENG-15)."""
    with session_scope() as session:
        doc = session.get(Document, document_id)
        if doc is None:
            raise LookupError(f"no document {document_id}")
        if doc.status == DocumentStatus.SIGNED.value:
            return
        doc.status = DocumentStatus.SIGNED.value
        doc.signed_by = "; ".join(signed_by)
        doc.signed_at = datetime.now(UTC)
        audit_chain.append(
            session,
            doc.subject,
            "document.signed",
            "; ".join(signed_by),
            {
                "doc_key": doc.doc_key,
                "version": doc.version,
                "sha256": doc.sha256,
                "document_id": doc.id,
            },
        )
