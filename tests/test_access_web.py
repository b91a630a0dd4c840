"""Access to the staff workspace and the JSON views (COM-6, issue #9 items 2 and 7), over real
HTTP (uvicorn) on SQLite and PostgreSQL.

- Every route of the app but the few open on purpose answers 401 (JSON) or sends the browser
  to /signin and back (pages) without a session or token: the routes are walked, so a route
  added later cannot slip through open.
- A PM sees the projects and windows where they are a contact, and nothing else (404, the
  same as a subject that does not exist); an auditor sees all. A revoked or expired token and
  a disabled user are refused; another user's session cookie shows that user's view only.
- The project and window pages show phase, gates (who signed and how the signer was proven),
  documents (in the page, on their own, as a download) and the trail, in site time and UTC.
- An audit export needs the auditor, office or pm role and is recorded in the trail.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx
import pytest
import yaml
from fastapi.routing import iter_route_contexts
from sqlalchemy import select

from flows.signoffs import customer_signoff
from models.audit import AuditEvent
from models.document import Document
from models.gate import GateDecision
from models.gate_spec import Door, Proof
from models.project import Project
from models.project_input import ProjectIn
from siteflow import audit_chain
from siteflow.db import session_scope
from siteflow.decisions import DecisionRequest, Signer, decide
from siteflow.identity.api_tokens import issue_token, revoke_token
from siteflow.identity.roles import StaffRole
from siteflow.identity.users import NewUser, add_user, disable_user
from siteflow.signature_proof import Evidence
from tasks.gates import open_gate
from tasks.upgrade_records import register_window
from tests.conftest import SQLITE_ONLY
from tests.test_approval_links import serve_web
from tests.test_project_form import EXAMPLE
from tests.test_signin_web import browser, sign_in
from tests.test_staff_identity import ADMIN, PASSWORD
from tests.test_upgrade_rules import booking_day, plan

pytestmark = SQLITE_ONLY  # the web layer; both backends run in the decision tests

# The routes anyone may reach without signing in — kept here apart from the code's list
# (`siteflow.web.access.OPEN_ROUTES`), so opening a route takes a change in both places.
OPEN = {
    "/healthz",
    "/a/{token}",
    "/signin",
    "/signin/sso",
    "/signin/sso/callback",
    "/signout",
    "/reset/{token}",
    "/me",
    "/api/tokens",
    "/verify",
    "/verify/{code}",
}

A, B, WINDOW = "GD-2026-017", "GD-2026-099", "UPG-ACCESS-1"
LI_NA = NewUser(name="李娜 Li Na", email="li.na@siteflow.example", roles=[StaffRole.PM])  # PM of A
ZHOU = NewUser(name="周明 Zhou Ming", email="zhou.ming@siteflow.example", roles=[StaffRole.PM])  # of B
AUDITOR = NewUser(name="审计 Auditor", email="audit@siteflow.example", roles=[StaffRole.AUDITOR])
ADMIN_PM = NewUser(
    name="管理 Admin", email="admin.pm@siteflow.example", roles=[StaffRole.PM, StaffRole.ADMIN]
)
ENGINEER = NewUser(name="张伟 Zhang Wei", email="zhang.wei@siteflow.example", roles=[StaffRole.ENGINEER])
CUSTOMER = Signer(name="陈静 Chen Jing", email="chen.jing@gd-mobile.example")
SCAN = "c" * 64


@dataclass
class World:
    web: str
    users: dict[str, str]  # email → account id
    gate_a: str
    gate_b: str
    doc_a: str
    doc_b: str


def project(code: str, pm: NewUser) -> ProjectIn:
    raw = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    raw["code"] = code
    for contact in raw["contacts"]:
        if contact["role"] == "pm":
            contact["name"], contact["email"] = pm.name, pm.email
    return ProjectIn.model_validate(raw)


def document(code: str) -> str:
    """A stored document as `tasks.documents.issue_document` leaves it: hashed, and chained."""
    html = (
        "<!DOCTYPE html><html><head><style>body{margin:2em}</style></head>"
        f"<body><p>勘察 {code} &amp; report</p></body></html>"
    )
    digest = hashlib.sha256(html.encode()).hexdigest()
    with session_scope() as session:
        doc = Document(
            subject=code,
            kind="survey-report",
            doc_key="survey-report",
            version=1,
            title="工程勘察报告 / Survey report",
            content=html,
            sha256=digest,
            body_sha256="b" * 64,
        )
        session.add(doc)
        session.flush()
        audit_chain.append(
            session,
            code,
            "document.issued",
            "system:siteflow",
            {"doc_key": "survey-report", "version": 1, "sha256": digest, "document_id": doc.id},
        )
        return doc.id


@pytest.fixture
def world(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """Projects A (PM Li Na) and B (PM Zhou), an upgrade window (PM Huang Min, no account), their
    gates and documents; A's gate signed on paper, B's by a signature from before proofs."""
    monkeypatch.delenv("SITEFLOW_PUBLIC_URL", raising=False)
    users = {
        u.email: add_user(u, PASSWORD, ADMIN).user.id for u in (LI_NA, ZHOU, AUDITOR, ENGINEER, ADMIN_PM)
    }
    gates, docs = {}, {}
    for code, pm in ((A, LI_NA), (B, ZHOU)):
        with session_scope() as session:
            session.add(Project.from_form(project(code, pm), None))
        docs[code] = document(code)
        spec = customer_signoff(
            "survey-report-signoff-r1",
            "ENG-8",
            "签署勘察报告 / Sign the survey report",
            docs[code],
            paper=True,
        )
        gates[code] = open_gate.fn(code, "", spec).id
    decide(  # Li Na records the paper the customer signed on site (door paper, issue #9 item 5)
        DecisionRequest(
            gate_id=gates[A],
            decision="approve",
            signer=CUSTOMER,
            door=Door.PAPER,
            role="customer",
            evidence=Evidence(Proof.PAPER, account=users[LI_NA.email], scan_sha256=SCAN),
        ),
        resume=False,
    )
    with session_scope() as session:  # a signature recorded before proofs existed (migration 0008)
        session.add(
            GateDecision(
                gate_id=gates[B],
                party="customer",
                decision="approve",
                signer_name=CUSTOMER.name,
                signer_email=CUSTOMER.email,
                role="customer",
                door="cli",
                proof=Proof.UNVERIFIED.value,
            )
        )
    register_window(plan(WINDOW), clock=booking_day)
    server = serve_web(monkeypatch)
    yield World(next(server), users, gates[A], gates[B], docs[A], docs[B])
    next(server, None)  # stops the server


def token_for(user_id: str, now: datetime | None = None) -> str:
    with session_scope() as session:
        return issue_token(session, user_id, "test", now=now).token.get_secret_value()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextmanager
def signed_in(world: World, user: NewUser) -> Iterator[httpx.Client]:
    with browser() as http:
        assert sign_in(http, world.web, user.email, PASSWORD).status_code == 303
        yield http


def trail(subject: str) -> list[AuditEvent]:
    with session_scope() as session:
        return audit_chain.events_for(session, subject)


# --- without credentials ------------------------------------------------------------------


def test_every_route_but_the_open_ones_needs_a_session_or_a_token(world: World) -> None:
    """Walks the app's routes (all of them, included routers too): without credentials, and
    with a revoked token, a page redirects to /signin?next=… and anything else answers 401."""
    from siteflow.web import app
    from siteflow.web.access import OPEN_ROUTES, is_page

    assert set(OPEN_ROUTES) == OPEN, "an open route must be listed in this test too"
    routes = [r for r in iter_route_contexts(app.routes) if r.path and r.methods]
    assert {r.path for r in routes} >= OPEN
    revoked = token_for(world.users[LI_NA.email])
    with session_scope() as session:
        revoke_token(session, revoked)
    checked = set()
    with httpx.Client(follow_redirects=False) as http:
        for route in routes:
            if route.path in OPEN:
                continue
            path = re.sub(r"{[^}]+}", "x", route.path)
            for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
                for headers in ({}, bearer(revoked), bearer("sft_not-a-token")):
                    r = http.request(method, f"{world.web}{path}", headers=headers)
                    if is_page(route):
                        assert r.status_code == 303, (method, route.path, r.status_code)
                        assert r.headers["location"] == f"/signin?next={quote(path, safe='')}"
                    else:
                        assert r.status_code == 401, (method, route.path, r.status_code, r.text)
                        assert r.headers["www-authenticate"] == "Bearer"
                        assert A not in r.text and "li.na" not in r.text
                checked.add(route.path)
    assert {
        "/api/projects",
        "/api/gates",
        "/api/windows",
        "/api/openapi.json",
        "/api/docs",
        "/projects",
        "/projects/{code}",
        "/windows",
        "/windows/{window_id}",
        "/documents/{document_id}",
        "/documents/{document_id}/download",
        "/projects/{code}/audit.json",
        "/projects/{code}/audit.html",
    } <= checked
    with httpx.Client() as http:  # and the open ones stay open
        assert http.get(f"{world.web}/healthz").json() == {"status": "ok"}
        assert http.get(f"{world.web}/signin").status_code == 200


def test_a_colleague_opens_a_sent_link_signs_in_and_lands_on_the_page(world: World) -> None:
    """The page's address is the link a PM sends: it asks for sign-in and comes back to it;
    a `next` pointing off the site is ignored (no open redirect)."""
    with browser() as http:
        first = http.get(f"{world.web}/projects/{A}")
        assert first.status_code == 303
        form = http.get(f"{world.web}{first.headers['location']}")
        assert f'name="next" value="/projects/{A}"' in form.text
        csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', form.text)
        assert csrf
        done = http.post(
            f"{world.web}/signin",
            data={
                "email": LI_NA.email,
                "password": PASSWORD,
                "csrf": csrf.group(1),
                "next": f"/projects/{A}",
            },
        )
        assert done.status_code == 303 and done.headers["location"] == f"/projects/{A}"
        page = http.get(f"{world.web}/projects/{A}")
        assert page.status_code == 200 and f'value="{world.web}/projects/{A}"' in page.text
        again = http.get(f"{world.web}/signin", params={"next": f"/projects/{A}"})  # signed in already
        assert again.status_code == 303 and again.headers["location"] == f"/projects/{A}"
        for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
            assert http.get(f"{world.web}/signin", params={"next": evil}).status_code == 200


# --- who sees what ------------------------------------------------------------------------


def test_a_pm_sees_only_the_projects_and_windows_where_they_are_a_contact(world: World) -> None:
    with signed_in(world, LI_NA) as http:
        listing = http.get(f"{world.web}/projects")
        assert listing.status_code == 200 and A in listing.text and B not in listing.text
        assert WINDOW not in http.get(f"{world.web}/windows").text
        for path in (
            f"/projects/{B}",
            f"/windows/{WINDOW}",
            f"/documents/{world.doc_b}",
            f"/documents/{world.doc_b}/download",
            f"/projects/{A}-NOPE",
        ):
            r = http.get(f"{world.web}{path}")
            assert r.status_code == 404, path
            assert "that you may see" in r.text and "勘察" not in r.text and ZHOU.email not in r.text
        assert http.get(f"{world.web}/windows/{A}").status_code == 404  # a project is not a window
        assert [p["code"] for p in http.get(f"{world.web}/api/projects").json()] == [A]
        assert http.get(f"{world.web}/api/windows").json() == []
        gates = http.get(f"{world.web}/api/gates", params={"include_closed": True}).json()
        assert [g["id"] for g in gates] == [world.gate_a]
        assert http.get(f"{world.web}/api/gates", params={"project": B}).status_code == 404
    token = token_for(world.users[LI_NA.email])  # the CLI's token sees the same
    with httpx.Client() as cli:
        assert [p["code"] for p in cli.get(f"{world.web}/api/projects", headers=bearer(token)).json()] == [A]
    with signed_in(world, AUDITOR) as http:
        assert {p["code"] for p in http.get(f"{world.web}/api/projects").json()} == {A, B}
        assert [w["id"] for w in http.get(f"{world.web}/api/windows").json()] == [WINDOW]
        for path in (f"/projects/{A}", f"/projects/{B}", f"/windows/{WINDOW}", f"/documents/{world.doc_b}"):
            assert http.get(f"{world.web}{path}").status_code == 200, path


def test_the_project_page_shows_gates_signatures_documents_and_the_verified_trail(world: World) -> None:
    with signed_in(world, LI_NA) as http:
        page = http.get(f"{world.web}/projects/{A}").text
        assert f'href="/gates/{world.gate_a}"' in page
        assert (
            f"recorded by {LI_NA.name} &lt;{LI_NA.email}&gt; from a paper signed by "
            f"{CUSTOMER.name} &lt;{CUSTOMER.email}&gt; (scan sha256 {SCAN})" in page
        )
        assert "阶段 / Phase <b>survey</b>" in page
        assert f"<p>勘察 {A} &amp; report</p>" in page and "body{margin:2em}" not in page  # body only
        assert re.search(
            r"开启 / opened \d{4}-\d\d-\d\d \d\d:\d\d:\d\d CST \((\d{4}-\d\d-\d\d )?\d\d:\d\d:\d\d UTC\)",
            page,
        )
        assert "哈希链已验证 / Hash chain verified" in page and "gate.decision" in page
        assert "/projects/GD-2026-017/audit.json" in page  # a PM may export their own
        own = http.get(f"{world.web}/documents/{world.doc_a}")
        assert own.status_code == 200 and own.text.startswith("<!DOCTYPE html>")
        assert own.headers["cache-control"] == "no-store"
        file = http.get(f"{world.web}/documents/{world.doc_a}/download")
        assert (
            file.headers["content-disposition"] == f"attachment; filename*=UTF-8''{A}-survey-report-v1.html"
        )
        with session_scope() as session:
            stored = session.get(Document, world.doc_a)
            assert stored is not None and file.content == stored.content.encode()
    with signed_in(world, ZHOU) as http:
        assert "cli, identity not verified" in http.get(f"{world.web}/projects/{B}").text
    with signed_in(world, AUDITOR) as http:
        window = http.get(f"{world.web}/windows/{WINDOW}").text
        assert "2026-12-03 00:30:00 CST (2026-12-02 16:30:00 UTC)" in window  # the site's clock first
        assert "GZ-CR-01" in window and "window.planned" in window


def test_revoked_expired_and_disabled_credentials_are_refused(world: World) -> None:
    li_na = world.users[LI_NA.email]
    expired = token_for(li_na, now=datetime.now(UTC) - timedelta(days=400))
    revoked = token_for(li_na)
    live = token_for(li_na)
    with session_scope() as session:
        revoke_token(session, revoked)
    with httpx.Client() as cli:
        for token in (expired, revoked):
            assert cli.get(f"{world.web}/api/projects", headers=bearer(token)).status_code == 401
        assert cli.get(f"{world.web}/api/projects", headers=bearer(live)).status_code == 200
    zhou_token = token_for(world.users[ZHOU.email])
    with signed_in(world, ZHOU) as http, httpx.Client() as cli:
        assert http.get(f"{world.web}/projects/{B}").status_code == 200
        disable_user(ZHOU.email, ADMIN)
        assert http.get(f"{world.web}/projects/{B}").status_code == 303  # the session ended at once
        assert cli.get(f"{world.web}/api/projects", headers=bearer(zhou_token)).status_code == 401
        assert sign_in(cli, world.web, ZHOU.email, PASSWORD).status_code == 401


def test_another_users_cookie_shows_that_users_view_and_a_bad_token_is_not_saved_by_it(
    world: World,
) -> None:
    """A session cookie taken from Zhou's browser acts as Zhou: B, not A, and not more (no
    escalation); a request carrying a bad token is refused even with a good cookie."""
    with signed_in(world, ZHOU) as zhou:
        cookie = zhou.cookies["siteflow_session"]
    with httpx.Client(cookies={"siteflow_session": cookie}, follow_redirects=False) as other:
        assert [p["code"] for p in other.get(f"{world.web}/api/projects").json()] == [B]
        assert other.get(f"{world.web}/projects/{A}").status_code == 404
        assert other.get(f"{world.web}/projects/{A}/audit.json").status_code == 404
        assert other.get(f"{world.web}/api/projects", headers=bearer("sft_forged")).status_code == 401


# --- audit exports ------------------------------------------------------------------------


def test_an_audit_export_is_recorded_in_the_trail_and_needs_an_export_role(world: World) -> None:
    before = len(trail(A))
    token = token_for(world.users[AUDITOR.email])
    with httpx.Client() as cli:
        r = cli.get(f"{world.web}/projects/{A}/audit.json", headers=bearer(token))
    assert r.status_code == 200 and r.headers["content-disposition"].startswith("attachment")
    report = r.json()
    assert report["chain"]["verified"] and report["chain"]["records"] == before
    events = trail(A)
    assert len(events) == before + 1
    last = events[-1]
    assert (last.kind, last.actor) == ("audit.exported", AUDITOR.email)
    assert json.loads(last.payload) == {
        "user_id": world.users[AUDITOR.email],
        "name": AUDITOR.name,
        "via": "token",
        "format": "json",
        "records": before,
        "head": report["chain"]["head"],
        "verified": True,
    }
    with session_scope() as session:
        assert audit_chain.verify(session, A) == []  # the record is part of the chain

    with signed_in(world, AUDITOR) as http:  # HTML, in a browser, for a window: recorded too
        html = http.get(f"{world.web}/windows/{WINDOW}/audit.html")
        assert html.status_code == 200 and "审计记录 / Audit trail" in html.text
    assert [(e.kind, e.actor) for e in trail(WINDOW)][-1] == ("audit.exported", AUDITOR.email)

    with signed_in(world, ENGINEER) as http:  # a contact of A, but not an export role
        assert http.get(f"{world.web}/projects/{A}").status_code == 200
        assert "/audit.json" not in http.get(f"{world.web}/projects/{A}").text
        refused_html = http.get(f"{world.web}/projects/{A}/audit.html")
        refused_json = http.get(f"{world.web}/projects/{A}/audit.json")
        assert refused_html.status_code == refused_json.status_code == 403
        assert "auditor or office role, or the pm role" in refused_json.json()["detail"]
        assert "gate.decision" not in refused_html.text
    with signed_in(world, LI_NA) as http:  # a PM exports their own subject, not another's
        assert http.get(f"{world.web}/projects/{B}/audit.json").status_code == 404
        assert http.get(f"{world.web}/projects/{A}/audit.html").status_code == 200
    with signed_in(world, ADMIN_PM) as http:  # sees every project (admin), exports none (pm of none)
        assert http.get(f"{world.web}/projects/{A}").status_code == 200
        assert http.get(f"{world.web}/projects/{A}/audit.json").status_code == 403
    kinds = [(e.kind, e.actor) for e in trail(A)][before:]
    assert kinds == [("audit.exported", AUDITOR.email), ("audit.exported", LI_NA.email)]
    with session_scope() as session:
        assert not session.execute(
            select(AuditEvent).where(AuditEvent.stream == B, AuditEvent.kind == "audit.exported")
        ).first()
