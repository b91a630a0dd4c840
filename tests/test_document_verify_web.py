"""The public verify page and scan uploads of printed documents (issue #12), over real HTTP.

- ``/verify/{code}`` for the current signed version, for one superseded by a newer version
  (ENG-15) and for an unknown code; the page shows title, version, hash, signers and state
  only — none of the project's customer, sites, addresses or other contacts; unknown codes
  from one address are throttled.
- A scan of the signed, stamped paper (ENG-31) is uploaded by a signed-in project contact
  from the paper page: kept by its SHA-256, recorded in the audit trail, and the verify page
  says a scan is on file; a wrong type, an oversized file, no session and a missing CSRF
  token are refused clearly and record nothing. The CLI's path (a personal token) too.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from models import paperwork
from models.document_print import DocumentScan
from siteflow import audit_chain
from siteflow.db import session_scope
from siteflow.documents import codes, scans
from siteflow.identity.api_tokens import issue_token
from siteflow.identity.roles import StaffRole
from siteflow.identity.users import NewUser, add_user
from tests.conftest import SQLITE_ONLY
from tests.document_samples import (
    ADDRESS,
    CONTACT,
    CUSTOMER,
    OFFICE,
    SITE_NAME,
    add_project,
    sample_project,
    sign,
    store,
)
from tests.test_approval_links import serve_web
from tests.test_signin_web import browser, csrf_of, sign_in
from tests.test_staff_identity import ADMIN, PASSWORD

pytestmark = SQLITE_ONLY
LI_NA = NewUser(name="李娜 Li Na", email="li.na@siteflow.example", roles=[StaffRole.PM])  # the project's PM
OUTSIDER = NewUser(name="周明 Zhou Ming", email="zhou.ming@siteflow.example", roles=[StaffRole.PM])
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200
CODE = "GD-2026-017"


@pytest.fixture
def world(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The acceptance certificate in two versions — v1 signed, then superseded by v2, signed —
    and the arrival certificate issued and not yet signed; the web service over HTTP."""
    monkeypatch.delenv("SITEFLOW_PUBLIC_URL", raising=False)
    project = sample_project(CODE)
    add_project(project)
    users = {u.email: add_user(u, PASSWORD, ADMIN).user.id for u in (LI_NA, OUTSIDER)}
    v1 = store(paperwork.acceptance_certificate(project, "2027-01-20", 1), 1)
    sign(
        v1,
        (CONTACT, "chen.jing@gd-mobile.example", "customer", "email"),
        (LI_NA.name, LI_NA.email, "pm", "web"),
    )
    v2 = store(paperwork.acceptance_certificate(project, "2027-01-21", 0), 2)
    sign(
        v2,
        (CONTACT, "chen.jing@gd-mobile.example", "customer", "email"),
        (LI_NA.name, LI_NA.email, "pm", "web"),
    )
    from models.gate_data import InspectionIn

    arrival = store(
        paperwork.arrival_certificate(
            project,
            InspectionIn.model_validate({"expected_boxes": 3, "counted_boxes": 3, "box1_opened": True}),
        )
    )
    with session_scope() as session:
        found = {
            name: codes.code_for(session, d) for name, d in (("v1", v1), ("v2", v2), ("arrival", arrival))
        }
    server = serve_web(monkeypatch)
    yield {"web": next(server), "v1": v1, "v2": v2, "arrival": arrival, "codes": found, "users": users}
    next(server, None)


def assert_reveals_nothing_else(page: str) -> None:
    """COM-6 on a public page: only title, version, hash, signers, state."""
    for secret in (
        CUSTOMER,
        SITE_NAME,
        ADDRESS,
        OFFICE,
        "刘洋",
        "王强",
        "黄伟",
        "@",
        "GD-2026-017",
        "GZ-TH-01",
        "OSN-9800",
        "Accepted on",
    ):
        assert secret not in page, secret


def test_the_current_signed_version_verifies(world: dict[str, Any]) -> None:
    code = codes.grouped(world["codes"]["v2"])
    with httpx.Client() as http:
        r = http.get(f"{world['web']}/verify/{code.lower().replace('-', ' ')}")  # typed loosely
    assert r.status_code == 200
    assert "有效：当前已签字版本 / Valid: this is the current signed version" in r.text
    assert "验收证书 / Acceptance certificate" in r.text and "v2" in r.text
    with session_scope() as session:
        from models.document import Document

        doc = session.get(Document, world["v2"])
        assert doc is not None and doc.sha256 in r.text
    assert CONTACT in r.text and "李娜 Li Na" in r.text  # the signers, by name, with when
    assert "2027-01-20 10:30 CST" in r.text
    assert "<svg" in r.text  # the QR code, inline (CSP: no image is fetched)
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert_reveals_nothing_else(r.text.replace(CONTACT, "").replace("李娜 Li Na", ""))


def test_a_superseded_version_says_so_and_names_the_newer_one(world: dict[str, Any]) -> None:
    """ENG-15: the corrected version needs its own signature; the old paper no longer counts."""
    with httpx.Client() as http:
        r = http.get(f"{world['web']}/verify/{codes.grouped(world['codes']['v1'])}")
    assert r.status_code == 200
    assert "已作废：已被新版本取代（ENG-15）" in r.text and "Superseded by a newer version" in r.text
    assert "最新版本 / newest version: v2（已签字 / signed）" in r.text
    assert_reveals_nothing_else(r.text.replace(CONTACT, "").replace("李娜 Li Na", ""))


def test_an_issued_unsigned_version_and_an_unknown_code(world: dict[str, Any]) -> None:
    with httpx.Client() as http:
        issued = http.get(f"{world['web']}/verify/{codes.grouped(world['codes']['arrival'])}")
        unknown = http.get(f"{world['web']}/verify/AAAA-BBBB-CCCC")
        garbage = http.get(f"{world['web']}/verify/<script>")
        form = http.get(f"{world['web']}/verify")
        typed = http.get(f"{world['web']}/verify", params={"code": world["codes"]["arrival"]})
    assert (
        "已发布，尚未签字 / Issued, not yet signed" in issued.text and "尚无签字 / nobody yet" in issued.text
    )
    assert_reveals_nothing_else(issued.text)
    for r in (unknown, garbage):
        assert r.status_code == 404
        assert "未找到此验证码的文件 / No document has this verification code." in r.text
        assert_reveals_nothing_else(r.text)
    assert form.status_code == 200 and 'name="code"' in form.text
    assert (
        typed.status_code == 303
        and typed.headers["location"] == f"/verify/{codes.grouped(world['codes']['arrival'])}"
    )


def test_someone_who_refused_a_version_is_not_named_as_its_signer(world: dict[str, Any]) -> None:
    """The public page lists those who signed; a customer who answered "reject" is not one."""
    from tests.document_samples import sign

    sign(
        world["arrival"],
        ("黄伟 Huang Wei", "huang.wei@gd-mobile.example", "customer", "email"),
        decision="reject",
    )
    with httpx.Client() as http:
        r = http.get(f"{world['web']}/verify/{codes.grouped(world['codes']['arrival'])}")
    assert "已发布，尚未签字 / Issued, not yet signed" in r.text and "尚无签字 / nobody yet" in r.text
    assert_reveals_nothing_else(r.text)  # 黄伟 among what it must not show


def test_unknown_codes_from_one_address_are_throttled_even_for_a_good_code(world: dict[str, Any]) -> None:
    with browser("127.0.0.7") as http:
        answers = [http.get(f"{world['web']}/verify/AAAA-BBBB-{i:04d}").status_code for i in range(22)]
        good = http.get(f"{world['web']}/verify/{codes.grouped(world['codes']['v2'])}")
    with browser("127.0.0.8") as other:
        elsewhere = other.get(f"{world['web']}/verify/{codes.grouped(world['codes']['v2'])}")
    assert answers[0] == 404 and answers[-1] == 429
    assert good.status_code == 429 and "Too many unknown codes" in good.text
    assert elsewhere.status_code == 200


def scan_events() -> list[dict[str, Any]]:
    with session_scope() as session:
        return [
            json.loads(e.payload) | {"actor": e.actor}
            for e in audit_chain.events_for(session, CODE)
            if e.kind == "document.scan-added"
        ]


def stored_scans() -> list[DocumentScan]:
    with session_scope() as session:
        return list(session.execute(select(DocumentScan)).scalars())


def test_a_scan_is_uploaded_hashed_and_audited_and_bad_uploads_are_refused(world: dict[str, Any]) -> None:
    base, doc = world["web"], world["v2"]
    with browser() as anonymous:
        r = anonymous.post(f"{base}/documents/{doc}/scans", files={"scan": ("s.png", PNG, "image/png")})
        assert r.status_code == 303 and r.headers["location"].startswith("/signin")
    with browser() as http:
        assert sign_in(http, base, LI_NA.email, PASSWORD).status_code == 303
        paper = http.get(f"{base}/documents/{doc}/paper")
        assert paper.status_code == 200 and codes.grouped(world["codes"]["v2"]) in paper.text
        token = csrf_of(paper.text)
        no_csrf = http.post(f"{base}/documents/{doc}/scans", files={"scan": ("s.png", PNG, "image/png")})
        assert no_csrf.status_code == 403 and "页面已过期" in no_csrf.text
        wrong = http.post(
            f"{base}/documents/{doc}/scans",
            data={"csrf": token},
            files={"scan": ("s.png", b"GIF89a....", "image/png")},
        )
        assert wrong.status_code == 415 and "扫描件须为 PDF、JPEG 或 PNG" in wrong.text
        big = b"%PDF-" + b"0" * scans.MAX_BYTES
        huge = http.post(
            f"{base}/documents/{doc}/scans",
            data={"csrf": token},
            files={"scan": ("s.pdf", big, "application/pdf")},
        )
        assert huge.status_code == 413 and "扫描件过大" in huge.text
        assert not stored_scans() and not scan_events()  # nothing recorded by the refusals
        ok = http.post(
            f"{base}/documents/{doc}/scans", data={"csrf": token}, files={"scan": ("s.png", PNG, "image/png")}
        )
        assert ok.status_code == 303 and ok.headers["location"].endswith("/paper?added=1")
        shown = http.get(f"{base}{ok.headers['location']}").text
    sha = hashlib.sha256(PNG).hexdigest()
    assert "扫描件已存档 / The scan is on file" in shown and sha in shown
    [row] = stored_scans()
    assert row.sha256 == sha and row.media_type == "image/png" and row.door == "web"
    assert scans.scan_path(sha, "png").read_bytes() == PNG
    [event] = scan_events()
    assert (
        event["scan_sha256"] == sha
        and event["version"] == 2
        and event["actor"] == f"{LI_NA.name} <{LI_NA.email}>"
    )
    with httpx.Client() as http:
        verified = http.get(f"{base}/verify/{codes.grouped(world['codes']['v2'])}").text
    assert "已存档签字盖章扫描件 / A signed scan of the paper is on file" in verified
    assert sha not in verified  # nothing of the scan itself is public


def test_a_scan_through_the_api_with_a_token_and_not_by_an_outsider(world: dict[str, Any]) -> None:
    """`siteflow documents scan` (door cli); someone who is not a contact gets 404, as if the
    document did not exist (COM-6)."""
    base, doc = world["web"], world["v1"]
    with session_scope() as session:
        mine = issue_token(session, world["users"][LI_NA.email], "test").token.get_secret_value()
        theirs = issue_token(session, world["users"][OUTSIDER.email], "test").token.get_secret_value()
    pdf = b"%PDF-1.4 scanned"
    with httpx.Client() as http:
        refused = http.post(
            f"{base}/api/documents/{doc}/scans",
            headers={"Authorization": f"Bearer {theirs}"},
            files={"scan": ("s.pdf", pdf, "application/pdf")},
        )
        listed = http.get(
            f"{base}/api/documents", params={"subject": CODE}, headers={"Authorization": f"Bearer {mine}"}
        )
        added = http.post(
            f"{base}/api/documents/{doc}/scans",
            headers={"Authorization": f"Bearer {mine}"},
            files={"scan": ("s.pdf", pdf, "application/pdf")},
        )
        again = http.post(
            f"{base}/api/documents/{doc}/scans",
            headers={"Authorization": f"Bearer {mine}"},
            files={"scan": ("s.pdf", pdf, "application/pdf")},
        )
        got_pdf = http.get(f"{base}/api/documents/{doc}/pdf", headers={"Authorization": f"Bearer {mine}"})
    assert refused.status_code == 404
    assert listed.status_code == 200 and {r["version"] for r in listed.json()} >= {1, 2}
    assert (
        added.status_code == 200
        and added.json()["new"] is True
        and added.json()["sha256"] == hashlib.sha256(pdf).hexdigest()
    )
    assert again.json()["new"] is False  # the same paper once
    [event] = scan_events()
    assert event["door"] == "cli"
    assert got_pdf.status_code == 200 and got_pdf.content.startswith(b"%PDF-")
    assert re.search(
        r"attachment; filename\*=UTF-8''GD-2026-017-acceptance-certificate-v1\.pdf",
        got_pdf.headers["content-disposition"],
    )
