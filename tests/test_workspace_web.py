"""The staff workspace over real HTTP (uvicorn), on SQLite and PostgreSQL (issue #9 items 2, 5).

"Waiting on me" lists only the signed-in person's gates; a data-collecting gate is decided
with typed fields and recorded as that person (door web, proof session) whatever the form
claims; a refusal keeps the form filled in; a PM of one project cannot see another's gate;
every POST needs the page's CSRF token; a customer's paper is recorded with its scan (door
paper) only on gates that accept papers.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import select

from flows.signoffs import customer_signoff, data_entry, two_party_signoff
from models.document import Document
from models.gate import GateAttempt, GateDecision
from models.project import Project
from models.project_input import ProjectIn, Role
from siteflow.db import session_scope
from siteflow.identity.roles import StaffRole
from siteflow.identity.users import NewUser, add_user
from siteflow.settings import get_settings
from tasks.gates import open_gate, read_gate
from tests.conftest import SQLITE_ONLY
from tests.test_approval_links import serve_web
from tests.test_project_form import EXAMPLE
from tests.test_signin_web import browser, csrf_of, sign_in
from tests.test_staff_identity import ADMIN, PASSWORD

pytestmark = SQLITE_ONLY  # the web layer; both backends run in the decision tests

PM = NewUser(name="李娜 Li Na", email="li.na@siteflow.example", roles=[StaffRole.PM])
OTHER_PM = NewUser(name="周敏 Zhou Min", email="zhou.min@siteflow.example", roles=[StaffRole.PM])
CUSTOMER = ("陈静 Chen Jing", "chen.jing@gd-mobile.example")
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


@pytest.fixture
def web(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.delenv("SITEFLOW_PUBLIC_URL", raising=False)
    yield from serve_web(monkeypatch)


def example(code: str | None = None, pm: NewUser | None = None) -> ProjectIn:
    raw = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    if code is not None:
        raw["code"] = code
    if pm is not None:
        raw["contacts"] = [c for c in raw["contacts"] if c["role"] != "pm"] + [
            {"name": pm.name, "email": pm.email, "role": "pm"}
        ]
    return ProjectIn.model_validate(raw)


def start(form: ProjectIn) -> None:
    with session_scope() as session:
        session.add(Project.from_form(form, None))


def document(code: str, key: str) -> str:
    with session_scope() as session:
        doc = Document(
            subject=code,
            kind=key,
            doc_key=key,
            version=1,
            title=f"{key} / 文件",
            content="<p>文件 &amp; document</p>",
            sha256="a" * 64,
            body_sha256="b" * 64,
        )
        session.add(doc)
        session.flush()
        return doc.id


def meeting_gate(code: str) -> str:
    spec = data_entry("survey-coordination-meeting", "ENG-2", "Coordination meeting", "MeetingIn", [Role.PM])
    return open_gate.fn(code, "", spec).id


@pytest.fixture
def world(web: str) -> dict[str, Any]:
    """Project A (Li Na is its PM) with a meeting, a survey, a customer sign-off and a paper
    gate; project B (another PM) with a meeting gate of its own."""
    a, b = example(), example("SZ-2026-002", OTHER_PM)
    start(a)
    start(b)
    add_user(PM, PASSWORD, ADMIN)
    add_user(OTHER_PM, PASSWORD, ADMIN)
    ours = [Role.PM, Role.SUPERVISOR, Role.ENGINEER]
    survey = data_entry("survey-data-r1", "ENG-4", "Survey results per site", "SurveyDataIn", ours)
    return {
        "web": web,
        "meeting": meeting_gate(a.code),
        "survey": open_gate.fn(a.code, "", survey).id,
        "signoff": open_gate.fn(
            a.code, "", customer_signoff("plan-signoff", "ENG-8", "Sign the plan", document(a.code, "plan"))
        ).id,
        "paper": open_gate.fn(
            a.code,
            "",
            customer_signoff(
                "arrival-certificate-signoff",
                "ENG-13",
                "Arrival certificate",
                document(a.code, "arrival-certificate"),
                paper=True,
            ),
        ).id,
        "other": meeting_gate(b.code),
    }


@contextmanager
def signed_in(base: str, user: NewUser = PM) -> Iterator[httpx.Client]:
    with browser() as http:
        assert sign_in(http, base, user.email, PASSWORD).status_code == 303
        yield http


def signatures(gate_id: str) -> list[GateDecision]:
    with session_scope() as session:
        return list(session.execute(select(GateDecision).where(GateDecision.gate_id == gate_id)).scalars())


def refusals(gate_id: str) -> list[GateAttempt]:
    with session_scope() as session:
        q = select(GateAttempt).where(GateAttempt.gate_id == gate_id, GateAttempt.accepted.is_(False))
        return list(session.execute(q).scalars())


MEETING = {
    "decision": "submit",
    "data.held_on": "2026-12-03",
    "data.attendees": "李娜 Li Na\n陈静 Chen Jing\n",
    "data.scope": "OSN ring, acceptance by test record",
    "data.division_of_work": "we install, customer provides power",
}


def test_inbox_shows_only_the_users_gates(world: dict[str, Any]) -> None:
    base = world["web"]
    with signed_in(base) as http:
        inbox = http.get(f"{base}/inbox")
        assert inbox.status_code == 200 and inbox.headers["cache-control"] == "no-store"
        linked = set(re.findall(r'href="/gates/([0-9a-f-]+)"', inbox.text))
        assert linked == {world["meeting"], world["survey"], world["paper"]}  # not the customer's, not B's
        assert "录入客户纸质签字 / Record the customer's paper" in inbox.text
        home = http.get(f"{base}/")
        assert home.status_code == 200 and 'id="waiting-count">3<' in home.text
        assert 'href="/projects/GD-2026-017"' in home.text and "SZ-2026-002" not in home.text
    with signed_in(base, OTHER_PM) as http:
        linked = set(re.findall(r'href="/gates/([0-9a-f-]+)"', http.get(f"{base}/inbox").text))
        assert linked == {world["other"]}


def test_a_data_gate_is_decided_with_typed_fields_as_the_signed_in_person(world: dict[str, Any]) -> None:
    base, gate = world["web"], world["meeting"]
    with signed_in(base) as http:
        page = http.get(f"{base}/gates/{gate}")
        assert page.status_code == 200 and "ENG-2" in page.text
        assert re.search(r'<input type="date" id="data-held_on" name="data.held_on"', page.text)
        assert re.search(r'<textarea id="data-attendees" name="data.attendees"', page.text)
        assert len(re.findall(r'<button type="submit" name="decision" value="submit"', page.text)) == 1
        assert 'type="radio"' not in page.text  # one allowed decision: one button
        forged = MEETING | {
            "signer_name": CUSTOMER[0],
            "signer_email": CUSTOMER[1],
            "csrf": csrf_of(page.text),
        }
        done = http.post(f"{base}/gates/{gate}", data=forged)
        assert done.status_code == 303 and done.headers["location"] == f"/gates/{gate}?recorded=1"
        shown = http.get(f"{base}/gates/{gate}?recorded=1").text
        assert "您的决定已记录" in shown and "李娜 Li Na &lt;li.na@siteflow.example&gt;" in shown
    (row,) = signatures(gate)
    assert (row.door, row.proof, row.signer_name, row.signer_email) == ("web", "session", PM.name, PM.email)
    assert row.data == {
        "held_on": "2026-12-03",
        "attendees": ["李娜 Li Na", "陈静 Chen Jing"],
        "scope": "OSN ring, acceptance by test record",
        "division_of_work": "we install, customer provides power",
    }


def test_survey_rows_pick_sites_and_contract_items(world: dict[str, Any]) -> None:
    """Lists of things are repeatable rows; a site and a contract item are picked from the
    project's own; numbers, enums and yes/no are typed (ENG-4 … ENG-6)."""
    base, gate = world["web"], world["survey"]
    with signed_in(base) as http:
        page = http.get(f"{base}/gates/{gate}").text
        assert re.search(r'<select id="data-sites-0-site_id" name="data.sites.0.site_id"', page)
        assert '<option value="GZ-TH-01" selected>' in page and '<option value="GZ-PY-02" selected>' in page
        assert '<option value="OSN-BOARD-TN54">' in page  # contract items to pick
        assert 'name="data.sites.0.cable_runs.0.measured_length_m"' in page and 'step="any"' in page
        assert '<option value="uncertain">' in page and 'type="checkbox"' in page
        # the browser may not insist on a row's fields: a blank optional row is dropped, not blocking
        assert not re.search(r'name="data\.[^"]*\.\d+\.[^"]*"[^>]*required', page)
        assert re.search(r'name="data.sites.0.cable_runs.0.name" value=""', page)
        more = http.post(
            f"{base}/gates/{gate}",
            data={
                "csrf": csrf_of(page),
                "_add": "data.sites.0.cable_runs",
                "data.sites.__rows": "2",
                "data.sites.0.cable_runs.__rows": "1",
                "data.sites.0.cable_runs.0.name": "power A",
            },
        )
        assert more.status_code == 200 and 'name="data.sites.0.cable_runs.1.name"' in more.text
        assert 'value="power A"' in more.text and not signatures(gate)
        data: dict[str, str] = {"csrf": csrf_of(more.text), "decision": "submit", "data.sites.__rows": "2"}
        for i, site in enumerate(("GZ-TH-01", "GZ-PY-02")):
            p = f"data.sites.{i}"
            data |= {
                f"{p}.site_id": site,
                f"{p}.surveyed_on_site": "on",
                f"{p}.cable_runs.__rows": "2",
                f"{p}.cable_runs.0.name": "power A",
                f"{p}.cable_runs.0.measured_length_m": "12.5",
                f"{p}.terminals.__rows": "1",
                f"{p}.terminals.0.terminal": "DDF 1-3",
                f"{p}.terminals.0.occupancy": "free",
                f"{p}.contract_differences.__rows": "1",
                f"{p}.non_compliances.__rows": "1",
            }
        data |= {
            "data.sites.1.contract_differences.0.item_code": "OSN-BOARD-TN54",
            "data.sites.1.contract_differences.0.contract_quantity": "6",
            "data.sites.1.contract_differences.0.actual_quantity": "5",
        }
        bad = http.post(
            f"{base}/gates/{gate}", data=data | {"data.sites.0.cable_runs.0.measured_length_m": "ten"}
        )
        assert (
            bad.status_code == 422 and "请输入数字 / Enter a number" in bad.text and 'value="ten"' in bad.text
        )
        assert not signatures(gate) and not refusals(gate)  # unreadable: nothing was tried
        assert http.post(f"{base}/gates/{gate}", data=data).status_code == 303
    (row,) = signatures(gate)
    assert row.data is not None and [s["site_id"] for s in row.data["sites"]] == ["GZ-TH-01", "GZ-PY-02"]
    assert row.data["sites"][0]["cable_runs"] == [{"name": "power A", "measured_length_m": 12.5}]
    assert row.data["sites"][1]["contract_differences"][0]["actual_quantity"] == 5


def test_a_refusal_is_shown_with_the_form_kept(world: dict[str, Any]) -> None:
    base, gate = world["web"], world["meeting"]
    with signed_in(base) as http:
        token = csrf_of(http.get(f"{base}/gates/{gate}").text)
        r = http.post(
            f"{base}/gates/{gate}", data=MEETING | {"data.attendees": "", "csrf": token, "comment": "ok"}
        )
        assert r.status_code == 409 and 'id="refusal"' in r.text and "attendees" in r.text
        assert 'value="2026-12-03"' in r.text and "OSN ring, acceptance by test record</textarea>" in r.text
        assert ">ok</textarea>" in r.text
        assert len(refusals(gate)) == 1 and not signatures(gate)  # the refusal is part of the record
        assert http.post(f"{base}/gates/{gate}", data=MEETING | {"csrf": token}).status_code == 303
        again = http.post(f"{base}/gates/{gate}", data=MEETING | {"csrf": token})
        assert again.status_code == 409 and "already decided" in again.text and "李娜 Li Na" in again.text


def test_staff_cannot_sign_the_customers_slot(world: dict[str, Any]) -> None:
    base, gate = world["web"], world["signoff"]
    with signed_in(base) as http:
        page = http.get(f"{base}/gates/{gate}")
        assert page.status_code == 200 and 'id="decide"' not in page.text  # nothing for us to sign
        forged = {"decision": "approve", "signer_name": CUSTOMER[0], "signer_email": CUSTOMER[1]}
        r = http.post(f"{base}/gates/{gate}", data=forged | {"csrf": csrf_of(page.text)})
        assert r.status_code == 409 and "customer" in r.text
    assert not signatures(gate) and len(refusals(gate)) == 1


def test_a_pm_of_project_a_gets_404_on_project_bs_gate(world: dict[str, Any]) -> None:
    base, gate = world["web"], world["other"]
    with signed_in(base) as http:
        page = http.get(f"{base}/gates/{gate}")
        assert page.status_code == 404 and "Coordination meeting" not in page.text
        token = csrf_of(http.get(f"{base}/inbox").text)
        assert http.post(f"{base}/gates/{gate}", data=MEETING | {"csrf": token}).status_code == 404
        assert http.get(f"{base}/gates/no-such-gate").status_code == 404
    assert not signatures(gate) and not refusals(gate)


def test_not_signed_in_goes_to_signin_and_back(world: dict[str, Any]) -> None:
    base, gate = world["web"], world["meeting"]
    with browser() as http:
        for path in ("/", "/inbox", f"/gates/{gate}"):
            r = http.get(f"{base}{path}")
            assert r.status_code == 303 and r.headers["location"].startswith("/signin?next=")
        assert http.post(f"{base}/gates/{gate}", data=MEETING).status_code == 303 and not signatures(gate)
        form = http.get(f"{base}/signin?next=%2Fgates%2F{gate}").text
        assert f'name="next" value="/gates/{gate}"' in form
        r = http.post(
            f"{base}/signin",
            data={"email": PM.email, "password": PASSWORD, "csrf": csrf_of(form), "next": f"/gates/{gate}"},
        )
        assert r.status_code == 303 and r.headers["location"] == f"/gates/{gate}"
        assert http.get(f"{base}/gates/{gate}").status_code == 200
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"):
        with browser() as http:
            form = http.get(f"{base}/signin", params={"next": evil}).text
            assert "evil" not in form and "javascript" not in form
            r = http.post(
                f"{base}/signin",
                data={"email": PM.email, "password": PASSWORD, "csrf": csrf_of(form), "next": evil},
            )
            assert r.status_code == 303 and r.headers["location"] == "/signin"


def test_a_post_without_the_pages_csrf_token_is_refused(world: dict[str, Any]) -> None:
    base, gate = world["web"], world["meeting"]
    with signed_in(base) as http:
        for token in ("", "0" * 64):
            r = http.post(f"{base}/gates/{gate}", data=MEETING | {"csrf": token})
            assert r.status_code == 403 and 'value="2026-12-03"' in r.text
        r = http.post(
            f"{base}/gates/{world['paper']}/paper",
            data={"signer": CUSTOMER[1], "decision": "approve"},
            files={"scan": ("scan.png", PNG, "image/png")},
        )
        assert r.status_code == 403
    assert not signatures(gate) and not signatures(world["paper"])


def test_a_paper_is_recorded_with_its_scan(world: dict[str, Any]) -> None:
    base, gate = world["web"], world["paper"]
    with signed_in(base) as http:
        page = http.get(f"{base}/gates/{gate}").text
        assert 'id="paper"' in page and f'<option value="{CUSTOMER[1]}">' in page
        form = {"signer": CUSTOMER[1], "decision": "approve", "csrf": csrf_of(page)}
        wrong = http.post(
            f"{base}/gates/{gate}/paper", data=form, files={"scan": ("x.txt", b"hello", "text/plain")}
        )
        assert wrong.status_code == 415 and not signatures(gate)
        done = http.post(
            f"{base}/gates/{gate}/paper", data=form, files={"scan": ("scan.png", PNG, "image/png")}
        )
        assert done.status_code == 303
        shown = http.get(f"{base}/gates/{gate}").text
        sha = hashlib.sha256(PNG).hexdigest()
        assert f"recorded by {PM.name} &lt;{PM.email}&gt; from a paper signed by {CUSTOMER[0]}" in shown
        assert sha in shown
        scan = http.get(f"{base}/gates/{gate}/scans/{sha}")
        assert scan.status_code == 200 and scan.content == PNG and scan.headers["content-type"] == "image/png"
    (row,) = signatures(gate)
    assert (row.door, row.proof, row.signer_email, row.recorded_by, row.evidence_sha256) == (
        "paper",
        "paper",
        CUSTOMER[1],
        f"{PM.name} <{PM.email}>",
        sha,
    )
    assert (get_settings().home / "scans" / f"{sha}.png").read_bytes() == PNG
    (signer,) = read_gate.fn(gate).signers  # what the signed arrival certificate will name
    assert (
        signer
        == f"{CUSTOMER[0]} <{CUSTOMER[1]}> (paper recorded by {PM.name} <{PM.email}>, scan sha256 {sha})"
    )
    with signed_in(base, OTHER_PM) as http:  # another project's PM cannot fetch the scan
        assert http.get(f"{base}/gates/{gate}/scans/{sha}").status_code == 404


def test_a_paper_on_a_gate_that_takes_none_is_refused(world: dict[str, Any]) -> None:
    base, gate = world["web"], world["signoff"]
    with signed_in(base) as http:
        token = csrf_of(http.get(f"{base}/gates/{gate}").text)
        r = http.post(
            f"{base}/gates/{gate}/paper",
            data={"signer": CUSTOMER[1], "decision": "approve", "csrf": token},
            files={"scan": ("scan.png", PNG, "image/png")},
        )
        assert r.status_code == 409 and "does not take papers" in r.text
    assert not signatures(gate) and len(refusals(gate)) == 1
    assert not (get_settings().home / "scans").exists() or not any((get_settings().home / "scans").iterdir())


def test_the_gate_page_shows_local_time_and_unproven_signatures(world: dict[str, Any]) -> None:
    """The deadline in the site's zone with UTC beside it; an earlier, typed signature (before
    proofs, migration 0008) is shown as "identity not verified" (issue #9 item 9)."""
    base = world["web"]
    spec = data_entry(
        "kickoff-meeting", "ENG-11", "Kick-off meeting", "ProjectPlanIn", [Role.PM, Role.CUSTOMER]
    )
    spec = spec.model_copy(update={"deadline": datetime(2026, 12, 5, 10, 0, tzinfo=UTC)})
    gate = open_gate.fn("GD-2026-017", "", spec).id
    with session_scope() as session:
        session.add(
            GateDecision(
                gate_id=world["signoff"],
                party="customer",
                decision="approve",
                signer_name=CUSTOMER[0],
                signer_email=CUSTOMER[1],
                role="customer",
                door="prefect-ui",
                proof="unverified",
            )
        )
    with signed_in(base) as http:
        page = http.get(f"{base}/gates/{gate}").text
        assert "2026-12-05 18:00 CST (10:00 UTC)" in page
        assert 'type="date" id="data-installation_start"' in page
        signoff = http.get(f"{base}/gates/{world['signoff']}").text
        assert "身份未核实 / identity not verified" in signoff and "prefect-ui" in signoff


def test_a_two_party_gate_takes_our_side_here_and_waits_for_the_customer(world: dict[str, Any]) -> None:
    """ENG-10: the PM signs our side signed in; the customer's side stays open for their link."""
    base = world["web"]
    gate = open_gate.fn(
        "GD-2026-017",
        "",
        two_party_signoff("env-signoff", "ENG-10", "Environment", document("GD-2026-017", "env")),
    ).id
    with signed_in(base) as http:
        page = http.get(f"{base}/gates/{gate}").text
        assert 'value="sign"' in page and 'value="refuse"' in page and 'id="paper"' not in page
        forged = {"decision": "sign", "signer_email": CUSTOMER[1], "csrf": csrf_of(page)}
        assert http.post(f"{base}/gates/{gate}", data=forged).status_code == 303
        after = http.get(f"{base}/gates/{gate}").text
        assert 'id="decide"' not in after and "customer" in after  # waiting for the customer's side
        assert gate not in http.get(f"{base}/inbox").text
    (row,) = signatures(gate)
    assert (row.party, row.signer_email, row.proof) == ("contractor", PM.email, "session")
