"""Generated documents: bilingual, escaped, stable content hashes, and immutable once signed (ENG-15).

Rendering is pure (no database). Signing and the storage-level immutability rule run on SQLite
and PostgreSQL. `issue_document` is not called here because it creates a Prefect artifact.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from models import paperwork
from models.audit import AuditEvent
from models.document import Document, DocumentStatus, SignedDocumentAltered
from models.document_body import DOCUMENT_KINDS, DocumentBody
from models.gate_data import InspectionIn
from models.project_input import ProjectIn
from siteflow import audit_chain
from siteflow.db import session_scope
from tasks.documents import body_for, render_html, render_summary, sign_document

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "project.yaml"
CODE = "GD-2026-017"
NASTY = '<script>alert("x")</script> & <b>bold</b>'


def example_project(**changes: Any) -> ProjectIn:
    raw = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    return ProjectIn.model_validate(raw | changes)


def inspection(**changes: Any) -> InspectionIn:
    base = {"expected_boxes": 12, "counted_boxes": 12, "box1_opened": True}
    return InspectionIn.model_validate(base | changes)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --- rendering (no database) ----------------------------------------------------------------------


def test_arrival_certificate_has_chinese_and_english_title() -> None:
    """ENG-13: the arrival certificate (到货证明) carries both names; Chinese first."""
    body = paperwork.arrival_certificate(example_project(), inspection())
    html = render_html(body, 1)
    assert html.startswith("<!DOCTYPE html>")
    assert "<h1>到货证明<small>Arrival certificate</small></h1>" in html
    assert "<title>到货证明 / Arrival certificate — GD-2026-017 v1</title>" in html
    assert "广东移动 Guangdong Mobile" in html
    assert "ENG-13" in html
    assert "客户代表 / Customer representative" in html  # the customer's signature line


@pytest.mark.parametrize("kind", sorted(DOCUMENT_KINDS))
def test_every_document_kind_renders_both_titles(kind: str) -> None:
    zh, en, rule = DOCUMENT_KINDS[kind]
    body = body_for(kind, CODE, "广东移动 Guangdong Mobile")
    html = render_html(body, 2)
    assert f"<h1>{zh}<small>{en}</small></h1>" in html.replace("&#39;", "'")
    assert f"<td>{rule}</td>" in html
    summary = render_summary(body, 2, "a" * 64)
    assert summary.startswith(f"### {zh} / {en} (v2)")
    assert "sha256 `aaaaaaaaaaaaaaaa…`" in summary


def test_acceptance_certificate_states_three_copies() -> None:
    """ENG-31: the acceptance certificate is issued in three copies."""
    body = paperwork.acceptance_certificate(example_project(), "2027-01-20", 0)
    assert body.copies == 3
    html = render_html(body, 1)
    assert "验收证书<small>Acceptance certificate</small>" in html
    assert "<tr><td>份数 / Copies</td><td>3</td></tr>" in html
    single = render_html(paperwork.arrival_certificate(example_project(), inspection()), 1)
    assert "份数 / Copies" not in single


def test_html_in_values_is_escaped() -> None:
    """Values come from people (forms, emails); they never become markup in a document."""
    body = body_for(
        "survey-memo",
        CODE,
        NASTY,
        sections=[
            {
                "heading_zh": "发现",
                "heading_en": NASTY,
                "text": NASTY,
                "fields": [{"label_zh": "项目", "label_en": "Item", "value": NASTY}],
                "table": {"headers": ["列 Col"], "rows": [[NASTY]]},
            }
        ],
    )
    html = render_html(body, 1)
    assert "<script>" not in html and "<b>bold</b>" not in html
    escaped = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;"
    assert html.count(escaped) == 5  # customer, heading, text, field value, table cell


def test_summary_markdown_escapes_table_pipes_and_newlines() -> None:
    body = body_for(
        "reshipment-request",
        CODE,
        "Guangdong Mobile",
        sections=[
            {
                "heading_zh": "补发货",
                "heading_en": "Re-shipment",
                "table": {
                    "headers": ["项目 Item", "说明 Note"],
                    "rows": [["TN54 | line board", "two\nlines"]],
                },
            }
        ],
    )
    summary = render_summary(body, 1, sha(render_html(body, 1)))
    assert "| TN54 \\| line board | two lines |" in summary


def test_same_body_renders_identically_and_a_different_body_differs() -> None:
    """Content hashes are stable: re-running a flow re-renders the same bytes (no new version)."""
    project = example_project()
    first = render_html(paperwork.arrival_certificate(project, inspection()), 1)
    again = render_html(paperwork.arrival_certificate(example_project(), inspection()), 1)
    assert again == first and sha(again) == sha(first)

    fewer_boxes = render_html(paperwork.arrival_certificate(project, inspection(counted_boxes=11)), 1)
    other_customer = render_html(
        paperwork.arrival_certificate(example_project(customer="中国联通 China Unicom"), inspection()), 1
    )
    next_version = render_html(paperwork.arrival_certificate(project, inspection()), 2)
    digests = {sha(first), sha(fewer_boxes), sha(other_customer), sha(next_version)}
    assert len(digests) == 4


def test_document_body_is_frozen() -> None:
    body = paperwork.arrival_certificate(example_project(), inspection())
    with pytest.raises(Exception, match="frozen"):
        body.customer = "someone else"  # type: ignore[misc]
    with pytest.raises(Exception, match="[Ee]xtra"):
        DocumentBody.model_validate(body.model_dump() | {"unexpected": 1})


# --- storage: signing and ENG-15 ------------------------------------------------------------------


def store(body: DocumentBody, version: int = 1) -> str:
    html = render_html(body, version)
    with session_scope() as session:
        doc = Document(
            subject=body.project_code,
            kind=body.kind,
            doc_key=body.kind,
            version=version,
            title=f"{body.title_zh} / {body.title_en}",
            content=html,
            sha256=sha(html),
            body_sha256="0" * 64,
            copies=body.copies,
        )
        session.add(doc)
        session.flush()
        return doc.id


def load(doc_id: str) -> Document:
    with session_scope() as session:
        doc = session.get(Document, doc_id)
        assert doc is not None
        return doc


def signed_events(doc_id: str) -> list[dict[str, Any]]:
    with session_scope() as session:
        events = session.execute(select(AuditEvent).where(AuditEvent.kind == "document.signed")).scalars()
        return [json.loads(e.payload) | {"actor": e.actor} for e in events if doc_id in e.payload]


ALTERATIONS: dict[str, Any] = {
    "content": "<p>涂改 altered</p>",
    "sha256": "0" * 64,
    "title": "Something else",
    "version": 7,
    "doc_key": "other-key",
    "signed_by": "Mallory <mallory@elsewhere.example>",
    "signed_at": datetime(2020, 1, 1, tzinfo=UTC),
}


def test_sign_document_signs_once_and_the_signed_version_is_immutable(database_url: str) -> None:
    """ENG-13/ENG-15: an arrival certificate with alterations is invalid; a signed version never changes."""
    doc_id = store(paperwork.arrival_certificate(example_project(), inspection()))
    assert load(doc_id).status == DocumentStatus.ISSUED.value

    signers = [
        "陈静 Chen Jing <chen.jing@gd-mobile.example>",
        "王强 Wang Qiang <wang.qiang@siteflow.example>",
    ]
    sign_document.fn(doc_id, signers)
    signed = load(doc_id)
    assert signed.status == DocumentStatus.SIGNED.value
    assert signed.signed_by == "; ".join(signers)
    assert signed.signed_at is not None and abs(datetime.now(UTC) - signed.signed_at) < timedelta(minutes=5)
    (event,) = signed_events(doc_id)
    assert event == {
        "doc_key": "arrival-certificate",
        "version": 1,
        "sha256": signed.sha256,
        "document_id": doc_id,
        "actor": "; ".join(signers),
    }

    # signing again (a re-run of the flow, or someone else) changes nothing
    sign_document.fn(doc_id, ["Mallory <mallory@elsewhere.example>"])
    again = load(doc_id)
    assert (again.signed_by, again.signed_at) == (signed.signed_by, signed.signed_at)
    assert len(signed_events(doc_id)) == 1

    for name, value in ALTERATIONS.items():
        with pytest.raises(SignedDocumentAltered) as info, session_scope() as session:
            doc = session.get(Document, doc_id)
            assert doc is not None
            setattr(doc, name, value)
            session.flush()
        assert "is signed and cannot be altered (ENG-15)" in str(info.value), name
        assert "issue a new version" in str(info.value)
    # status and an alteration together are refused too
    with pytest.raises(SignedDocumentAltered), session_scope() as session:
        doc = session.get(Document, doc_id)
        assert doc is not None
        doc.status = DocumentStatus.SUPERSEDED.value
        doc.content = ALTERATIONS["content"]

    after = load(doc_id)
    assert (after.content, after.sha256, after.status) == (signed.content, signed.sha256, "signed")
    assert sha(after.content) == after.sha256
    with session_scope() as session:
        assert audit_chain.verify(session, CODE) == []

    with pytest.raises(LookupError):
        sign_document.fn("00000000-0000-0000-0000-000000000000", signers)


def test_signed_version_may_be_superseded_by_a_new_version(database_url: str) -> None:
    """ENG-15: a correction is a new version; the signed one only changes status to superseded."""
    project = example_project()
    v1 = store(paperwork.arrival_certificate(project, inspection()))
    sign_document.fn(v1, ["陈静 Chen Jing <chen.jing@gd-mobile.example>"])
    v2 = store(paperwork.arrival_certificate(project, inspection(counted_boxes=11)), version=2)

    with session_scope() as session:
        old = session.get(Document, v1)
        new = session.get(Document, v2)
        assert old is not None and new is not None
        old.status = DocumentStatus.SUPERSEDED.value
        new.supersedes_id = old.id

    old, new = load(v1), load(v2)
    assert old.status == "superseded" and old.signed_by and sha(old.content) == old.sha256
    assert new.status == "issued" and new.supersedes_id == v1 and new.signed_by is None
    assert new.sha256 != old.sha256

    # the new version needs its own signature
    sign_document.fn(v2, ["黄伟 Huang Wei <huang.wei@gd-mobile.example>"])
    assert load(v2).status == "signed"
    assert [e["version"] for e in signed_events(v1) + signed_events(v2)] == [1, 2]


def test_formerly_signed_version_stays_immutable_after_status_change(database_url: str) -> None:
    """ENG-15: a signed version is immutable, also once a newer version supersedes it."""
    doc_id = store(paperwork.arrival_certificate(example_project(), inspection()))
    sign_document.fn(doc_id, ["陈静 Chen Jing <chen.jing@gd-mobile.example>"])
    with session_scope() as session:
        doc = session.get(Document, doc_id)
        assert doc is not None
        doc.status = DocumentStatus.SUPERSEDED.value
    with pytest.raises(SignedDocumentAltered), session_scope() as session:
        doc = session.get(Document, doc_id)
        assert doc is not None
        doc.content = "<p>涂改 altered</p>"
