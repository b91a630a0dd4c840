"""Stored document versions for the PDF and verify tests: the sample project with a Chinese
customer and contacts, versions as `tasks.documents.issue_document` stores them (typed body,
hashed HTML, chained), signatures through the decision path's table, fixed times and codes
where a reference image needs them."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import yaml

from models.document import Document, DocumentStatus
from models.document_body import DocumentBody
from models.document_print import DocumentCode
from models.gate import Gate, GateDecision
from models.project import Project
from models.project_input import ProjectIn
from siteflow import audit_chain
from siteflow.db import session_scope
from tasks.documents import body_digest, render_html
from tests.test_project_form import EXAMPLE

CUSTOMER = "中国移动广东分公司"
CONTACT = "张伟"  # the customer's representative
OFFICE = "刘洋 Liu Yang"  # the office's interface person (ENG-31)
SITE_NAME = "天河机房 Tianhe equipment room"
ADDRESS = "广州市天河区天河路 385 号"
AT = datetime(2027, 1, 20, 2, 30, tzinfo=UTC)


def sample_project(code: str = "GD-2026-017") -> ProjectIn:
    raw: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    raw["code"] = code
    raw["customer"] = CUSTOMER
    raw["contacts"][0]["name"] = CONTACT
    raw["contacts"][0]["phone"] = "+86 138 0000 0000"
    raw["contacts"][5]["phone"] = "+86 20 8888 0000"
    return ProjectIn.model_validate(raw)


def add_project(project: ProjectIn) -> None:
    with session_scope() as session:
        session.add(Project.from_form(project, None))


def store(body: DocumentBody, version: int = 1, doc_key: str | None = None, code: str | None = None) -> str:
    """A version as issue_document leaves it (no Prefect artifact): the older version of the
    same key becomes superseded (ENG-15)."""
    key = doc_key or body.kind
    html = render_html(body, version)
    digest = hashlib.sha256(html.encode()).hexdigest()
    with session_scope() as session:
        older = session.query(Document).filter_by(subject=body.project_code, doc_key=key).all()
        doc = Document(
            subject=body.project_code,
            kind=body.kind,
            doc_key=key,
            version=version,
            title=f"{body.title_zh} / {body.title_en}",
            content=html,
            body_json=body.model_dump_json(),
            sha256=digest,
            body_sha256=body_digest(body),
            copies=body.copies,
            created_at=AT,
        )
        session.add(doc)
        for old in older:
            old.status = DocumentStatus.SUPERSEDED.value
        session.flush()
        if code is not None:
            session.add(DocumentCode(document_id=doc.id, code=code))
        audit_chain.append(
            session,
            body.project_code,
            "document.issued",
            "system:siteflow",
            {"doc_key": key, "version": version, "sha256": digest, "document_id": doc.id},
        )
        return doc.id


def sign(document_id: str, *signers: tuple[str, str, str, str], decision: str = "sign") -> None:
    """Signatures (name, email, role, door) on a gate about the version, and the version signed;
    with ``decision="reject"`` the answers refuse it and the version stays unsigned."""
    with session_scope() as session:
        doc = session.get(Document, document_id)
        assert doc is not None
        gate = Gate(
            subject=doc.subject,
            key=f"{doc.doc_key}-signoff-v{doc.version}",
            kind="customer-signoff",
            rule="ENG-31",
            title="sign",
            parties=[{"slot": s[2], "roles": [s[2]]} for s in signers],
            decisions=["sign", "reject"],
            document_id=doc.id,
            status="decided",
            outcome=decision,
        )
        session.add(gate)
        session.flush()
        for name, email, role, door in signers:
            session.add(
                GateDecision(
                    gate_id=gate.id,
                    party=role,
                    decision=decision,
                    signer_name=name,
                    signer_email=email,
                    role=role,
                    door=door,
                    decided_at=AT,
                    proof={"email": "mailbox", "web": "session", "cli": "token"}.get(door, "unverified"),
                )
            )
        if decision != "sign":
            return
        doc.status = DocumentStatus.SIGNED.value
        doc.signed_by = "; ".join(f"{n} <{e}>" for n, e, _, _ in signers)
        doc.signed_at = AT
