"""The hash-chained audit log and the audit report, against SQLite and PostgreSQL.

Prefect's records can be edited by anyone with API access, so siteflow keeps its own
append-only chain (docs/architecture.md "The audit trail"). These tests tamper with the stored rows
using raw SQL — the way someone with database access would — and check that `verify`
names the damaged record. Several streams share one database where that keeps tests fast:
each stream is its own chain.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from flows.signoffs import customer_signoff
from models.document import Document
from models.project import Project
from models.project_input import ProjectIn
from siteflow import audit_chain, audit_report
from siteflow.audit_chain import GENESIS, ChainProblem
from siteflow.db import session_scope
from siteflow.decisions import DecisionRefused, Signer, decide
from siteflow.stand_in_signers import proven
from tasks.documents import sign_document
from tasks.gates import open_gate

CODE = "SF-AUDIT-001"
CHEN = Signer("Chen Jing", "chen.jing@customer.example")
WANG = Signer("Wang Qiang", "wang.qiang@siteflow.example")


def fill(stream: str, n: int = 5) -> None:
    with session_scope() as session:
        for i in range(1, n + 1):
            audit_chain.append(session, stream, f"test.event{i}", "tester", {"i": i, "text": f"事件 {i}"})


def problems(stream: str) -> list[ChainProblem]:
    with session_scope() as session:
        return audit_chain.verify(session, stream)


def sql(statement: str, **params: Any) -> None:
    with session_scope() as session:
        result = session.execute(text(statement), params)
        assert result.rowcount >= 1, f"tampering touched no row: {statement} {params}"  # type: ignore[attr-defined]


def row(session: Session, stream: str, seq: int) -> dict[str, Any]:
    found = (
        session.execute(
            text("SELECT * FROM audit_events WHERE stream = :s AND seq = :n"), {"s": stream, "n": seq}
        )
        .mappings()
        .one()
    )
    return dict(found)


def test_untouched_chain_verifies_and_is_linked(database_url: str) -> None:
    fill("S-A", 5)
    fill("S-B", 2)
    with session_scope() as session:
        events = audit_chain.events_for(session, "S-A")
        assert audit_chain.verify(session, "S-A") == []
        assert audit_chain.verify(session, "S-B") == []
        assert audit_chain.verify(session, "NO-SUCH-STREAM") == []
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash == GENESIS
    for before, after in zip(events, events[1:], strict=False):
        assert after.prev_hash == before.hash
    assert len({e.hash for e in events}) == 5
    assert json.loads(events[2].payload) == {"i": 3, "text": "事件 3"}
    # the hash covers the content: recomputing it from the stored fields gives the stored hash
    e = events[2]
    assert audit_chain.record_hash(e.prev_hash, e.stream, e.seq, e.kind, e.actor, e.at, e.payload) == e.hash


def test_altered_record_is_named(database_url: str) -> None:
    """An UPDATE of one record's payload (or actor) is caught and names that record."""
    fill("ALTER-PAYLOAD")
    fill("ALTER-ACTOR")
    fill("ALTER-AND-REHASH")
    fill("UNTOUCHED")

    sql(
        "UPDATE audit_events SET payload = :p WHERE stream = 'ALTER-PAYLOAD' AND seq = 3",
        p=audit_chain.canonical({"i": 3, "text": "something else"}),
    )
    assert problems("ALTER-PAYLOAD") == [
        ChainProblem(3, "test.event3", "content altered: hash does not match")
    ]
    assert str(problems("ALTER-PAYLOAD")[0]) == (
        "record #3 (test.event3): content altered: hash does not match"
    )

    sql("UPDATE audit_events SET actor = 'someone else' WHERE stream = 'ALTER-ACTOR' AND seq = 2")
    assert [(p.seq, p.message) for p in problems("ALTER-ACTOR")] == [
        (2, "content altered: hash does not match")
    ]

    # rewriting the record's own hash too does not help: the next record no longer follows it
    with session_scope() as session:
        r = row(session, "ALTER-AND-REHASH", 2)
    payload = audit_chain.canonical({"i": 2, "text": "forged"})
    forged = audit_chain.record_hash(r["prev_hash"], r["stream"], 2, r["kind"], r["actor"], r["at"], payload)
    sql(
        "UPDATE audit_events SET payload = :p, hash = :h WHERE stream = 'ALTER-AND-REHASH' AND seq = 2",
        p=payload,
        h=forged,
    )
    found = problems("ALTER-AND-REHASH")
    assert [p.seq for p in found] == [2, 3]
    assert "does not match: rewritten after it was signed" in found[0].message  # its signature
    assert found[1].message == "does not follow the record before it (deleted or reordered)"

    assert problems("UNTOUCHED") == []


def test_deleted_records_are_caught(database_url: str) -> None:
    """A deleted middle record, a deleted tail, everything deleted, a deleted head row."""
    for stream in ("DEL-MIDDLE", "DEL-LAST", "DEL-ALL", "DEL-HEAD"):
        fill(stream)

    sql("DELETE FROM audit_events WHERE stream = 'DEL-MIDDLE' AND seq = 3")
    found = problems("DEL-MIDDLE")
    assert {p.seq for p in found} == {4}
    assert "out of place: expected record #3 here (deleted or reordered)" in [p.message for p in found]
    assert "does not follow the record before it (deleted or reordered)" in [p.message for p in found]

    # the last record: every remaining link is intact, only the head row notices
    sql("DELETE FROM audit_events WHERE stream = 'DEL-LAST' AND seq = 5")
    found = problems("DEL-LAST")
    assert len(found) == 1
    assert found[0].kind == "head" and found[0].seq == 5
    assert found[0].message.startswith("the chain ends at #4 but its head says #5")
    assert "deleted from the end" in found[0].message

    sql("DELETE FROM audit_events WHERE stream = 'DEL-ALL'")
    found = problems("DEL-ALL")
    assert [(p.kind, p.seq) for p in found] == [("head", 5)]
    assert found[0].message.startswith("the chain ends at #0 but its head says #5")

    sql("DELETE FROM audit_heads WHERE stream = 'DEL-HEAD'")
    found = problems("DEL-HEAD")
    assert [(p.kind, p.message) for p in found] == [("head", "the chain head record is missing")]


def test_reordered_records_are_caught(database_url: str) -> None:
    """Swapping two records' payloads, sequence numbers or whole contents is caught."""
    for stream in ("SWAP-PAYLOAD", "SWAP-SEQ", "SWAP-ROWS"):
        fill(stream)

    with session_scope() as session:
        two, three = row(session, "SWAP-PAYLOAD", 2), row(session, "SWAP-PAYLOAD", 3)
    sql("UPDATE audit_events SET payload = :p WHERE stream = 'SWAP-PAYLOAD' AND seq = 2", p=three["payload"])
    sql("UPDATE audit_events SET payload = :p WHERE stream = 'SWAP-PAYLOAD' AND seq = 3", p=two["payload"])
    assert [(p.seq, p.message) for p in problems("SWAP-PAYLOAD")] == [
        (2, "content altered: hash does not match"),
        (3, "content altered: hash does not match"),
    ]

    sql("UPDATE audit_events SET seq = -1 WHERE stream = 'SWAP-SEQ' AND seq = 2")
    sql("UPDATE audit_events SET seq = 2 WHERE stream = 'SWAP-SEQ' AND seq = 3")
    sql("UPDATE audit_events SET seq = 3 WHERE stream = 'SWAP-SEQ' AND seq = -1")
    found = problems("SWAP-SEQ")
    assert {2, 3} <= {p.seq for p in found}
    assert any(p.message.startswith("out of place") for p in found)

    # every column but the row id swapped: each record is self-consistent, the order is not
    columns = ("seq", "kind", "actor", "at", "payload", "prev_hash", "hash", "key_id", "signature")
    with session_scope() as session:
        two, three = row(session, "SWAP-ROWS", 2), row(session, "SWAP-ROWS", 3)
    assignments = ", ".join(f"{c} = :{c}" for c in columns)
    swap = f"UPDATE audit_events SET {assignments} WHERE id = :id"
    sql("UPDATE audit_events SET seq = -1 WHERE id = :id", id=two["id"])
    sql(swap, id=three["id"], **{c: two[c] for c in columns})
    sql(swap, id=two["id"], **{c: three[c] for c in columns})
    found = problems("SWAP-ROWS")
    assert {p.seq for p in found} >= {2, 3}
    assert all("altered" not in p.message for p in found)
    assert any("does not follow the record before it" in p.message for p in found)

    assert problems("SWAP-PAYLOAD") and problems("SWAP-SEQ")  # still caught after later changes


# --- the audit report -----------------------------------------------------------------------------


def add_project() -> None:
    form = ProjectIn.model_validate(
        {
            "code": CODE,
            "customer": "广东移动 Guangdong Mobile",
            "planned_start": "2026-12-01",
            "planned_end": "2027-01-31",
            "sites": [{"site_id": "GZ-TH-01", "name": "Tianhe", "address": "385 Tianhe Rd"}],
            "contract_items": [{"item_code": "OSN-9800", "description": "Chassis", "quantity": 2}],
            "contacts": [
                {"name": CHEN.name, "email": CHEN.email, "role": "customer"},
                {"name": "Li Na", "email": "li.na@siteflow.example", "role": "pm"},
                {"name": WANG.name, "email": WANG.email, "role": "supervisor"},
            ],
        }
    )
    with session_scope() as session:
        session.add(
            Project(
                code=CODE,
                customer=form.customer,
                size=form.size.value,
                timezone=form.timezone,
                flow_run_id=None,
                params=form.model_dump(mode="json"),
            )
        )


def add_document(content: str = "<p>勘察报告 survey report</p>") -> str:
    with session_scope() as session:
        doc = Document(
            subject=CODE,
            kind="survey-report",
            doc_key="survey-report",
            version=1,
            title="工程勘察报告 / Survey report",
            content=content,
            sha256=hashlib.sha256(content.encode()).hexdigest(),
            body_sha256="0" * 64,
        )
        session.add(doc)
        session.flush()
        return doc.id


def signed_off_project() -> tuple[str, str]:
    """A project whose survey report was refused once (wrong role) and then signed by the customer."""
    add_project()
    doc_id = add_document()
    spec = customer_signoff("survey-report-signoff", "ENG-8", "Survey sign-off", doc_id)
    gate = open_gate.fn(CODE, None, spec)
    with pytest.raises(DecisionRefused):
        decide(proven(gate.id, "approve", WANG))
    decide(proven(gate.id, "approve", CHEN))
    sign_document.fn(doc_id, [str(CHEN)])
    return gate.id, doc_id


def test_audit_report_lists_refusals_signatures_and_a_verified_chain(database_url: str) -> None:
    """ENG-8 sign-off told in full: the refused attempt with its reason, the signature, the chain."""
    gate_id, doc_id = signed_off_project()
    report = audit_report.build(CODE, with_prefect=False)

    assert report["project"]["code"] == CODE and report["prefect_run"] is None
    (gate,) = report["gates"]
    assert gate["id"] == gate_id and gate["status"] == "decided" and gate["outcome"] == "approve"
    assert [(s["by"], s["door"], s["role"]) for s in gate["signatures"]] == [(str(CHEN), "email", "customer")]
    refused = [a for a in gate["attempts"] if not a["accepted"]]
    accepted = [a for a in gate["attempts"] if a["accepted"]]
    assert len(refused) == 1 and len(accepted) == 1
    assert refused[0]["by"] == str(WANG) and refused[0]["door"] == "cli"
    assert "is listed as supervisor" in refused[0]["reason"] or "is a supervisor" in refused[0]["reason"]
    assert "decided by customer" in refused[0]["reason"]

    (doc,) = report["documents"]
    assert doc["id"] == doc_id and doc["status"] == "signed" and doc["hash_ok"] is True
    assert doc["signed_by"] == str(CHEN)

    chain = report["chain"]
    assert chain["verified"] is True and chain["problems"] == []
    kinds = [e["kind"] for e in report["events"]]
    assert kinds == ["gate.opened", "gate.refused", "gate.decision", "gate.closed", "document.signed"]
    assert chain["records"] == 5 and chain["head"] == report["events"][-1]["hash"]
    assert audit_report.verify(CODE) == []

    html = audit_report.render_html(report)
    assert "verified, 5 records" in html
    assert "decided by customer" in html and "Wang Qiang &lt;wang.qiang@siteflow.example&gt;" in html

    with pytest.raises(audit_report.UnknownSubject):
        audit_report.build("NO-SUCH-CODE", with_prefect=False)


def test_audit_verify_catches_tampered_document_and_chain(database_url: str) -> None:
    """ENG-15: a signed document altered in the database no longer matches its hash."""
    _, doc_id = signed_off_project()
    assert audit_report.verify(CODE) == []

    sql("UPDATE documents SET content = :c WHERE id = :id", c="<p>勘察报告 (涂改 altered)</p>", id=doc_id)
    found = audit_report.verify(CODE)
    assert found == ["document survey-report v1: content does not match its hash"]
    report = audit_report.build(CODE, with_prefect=False)
    assert report["chain"]["verified"] is False
    assert report["documents"][0]["hash_ok"] is False
    assert "FAILED" in audit_report.render_html(report)

    sql(
        "UPDATE audit_events SET payload = :p WHERE stream = :s AND kind = 'gate.refused'",
        p=audit_chain.canonical({"reason": "nothing happened here"}),
        s=CODE,
    )
    found = audit_report.verify(CODE)
    assert found[0] == "record #2 (gate.refused): content altered: hash does not match"
    assert found[-1] == "document survey-report v1: content does not match its hash"


def test_audit_verify_catches_document_rewritten_with_matching_hash(database_url: str) -> None:
    """ENG-15: the chain recorded the signed version's hash; a rewritten document must not pass."""
    _, doc_id = signed_off_project()
    forged = "<p>勘察报告 (涂改 altered)</p>"
    sql(
        "UPDATE documents SET content = :c, sha256 = :h WHERE id = :id",
        c=forged,
        h=hashlib.sha256(forged.encode()).hexdigest(),
        id=doc_id,
    )
    assert audit_report.verify(CODE) != []
