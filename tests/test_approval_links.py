"""Approval links over real HTTP (uvicorn) and real SMTP (aiosmtpd), on SQLite and PostgreSQL.

Issue #4: the link never decides on GET/HEAD, the POST goes through the one decision path with
the door `email`, tokens are single-use and bound to one recipient and gate, and anything
forged, altered, expired or foreign gets one plain page that reveals nothing.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
import yaml
from aiosmtpd.controller import Controller
from sqlalchemy import func, select, update

from flows.signoffs import customer_signoff, readiness_check, two_party_signoff
from models.approval_link import ApprovalLink
from models.document import Document
from models.gate import GateDecision
from models.outbox import OutboxMessage
from models.project import Project
from models.project_input import ProjectIn
from siteflow.db import session_scope
from siteflow.outbox_relay import relay_once
from siteflow.settings import Settings, reset_settings
from tasks.gates import open_gate
from tests.test_outbox_relay import Inbox, free_port
from tests.test_project_form import EXAMPLE


def serve_web(monkeypatch: pytest.MonkeyPatch, port: int | None = None) -> Iterator[str]:
    """The real web service on a free port (or `port`), in a thread; yields its base URL."""
    port = port or free_port()
    monkeypatch.setenv("SITEFLOW_WEB_PORT", str(port))
    reset_settings()
    from siteflow.web import app

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(5)


@pytest.fixture
def web(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    yield from serve_web(monkeypatch)


def setup_gate(two_party: bool = False) -> tuple[ProjectIn, str]:
    form = ProjectIn.model_validate(yaml.safe_load(EXAMPLE.read_text(encoding="utf-8")))
    with session_scope() as session:
        session.add(Project.from_form(form, None))
        doc = Document(
            subject=form.code,
            kind="survey-report",
            doc_key="survey-report",
            version=1,
            title="工程勘察报告 / Survey report",
            content="<p>勘察 &amp; report</p>",
            sha256="a" * 64,
            body_sha256="b" * 64,
        )
        session.add(doc)
        session.flush()
        doc_id = doc.id
    maker = two_party_signoff if two_party else customer_signoff
    gate = open_gate.fn(
        form.code, "", maker("survey-report-signoff-r1", "ENG-8", "Sign the survey report", doc_id)
    )
    return form, gate.id


def mailed_links(port: int, path: str = "/a/") -> dict[str, str]:
    """Send the outbox to a real SMTP server and take each recipient's link (to `path`…) out
    of the mail."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        asyncio.run(relay_once(Settings(smtp_port=port)))
    finally:
        controller.stop()
    links = {}
    for msg in inbox.messages:
        text = msg.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
        m = re.search(rf"(http://\S+{re.escape(path)}\S+)", text)
        assert m, text
        links[re.search(r"<(.+)>", str(msg["To"])).group(1)] = m.group(1)  # type: ignore[union-attr]
    return links


def decisions(gate_id: str) -> int:
    with session_scope() as session:
        return int(session.scalar(select(func.count()).where(GateDecision.gate_id == gate_id)) or 0)


def form_token(page: str) -> str:
    m = re.search(r'name="form_token" value="([0-9a-f]+)"', page)
    assert m
    return m.group(1)


def test_link_from_mail_confirms_then_decides_once(web: str) -> None:
    form, gate_id = setup_gate()
    links = mailed_links(free_port())
    customers = [c.email for c in form.contacts if c.role.value == "customer"]
    assert sorted(links) == sorted(customers)  # one link of their own for each customer
    with session_scope() as session:
        assert all(r.status == "sent" for r in session.execute(select(OutboxMessage)).scalars())
        stored = [link.token_sha256 for link in session.execute(select(ApprovalLink)).scalars()]
    url = links[customers[0]]
    token = url.rsplit("/", 1)[1]
    assert len(token) >= 40 and token not in stored  # only the hash is kept

    with httpx.Client() as http:
        for method in ("HEAD", "GET", "GET"):  # mail scanners prefetch: nothing is decided
            r = http.request(method, url)
            assert r.status_code == 200
            assert r.headers["cache-control"] == "no-store" and r.headers["referrer-policy"] == "no-referrer"
        page = http.get(url).text
        assert "Sign the survey report" in page and "勘察 &amp; report" in page and 'value="approve"' in page
        assert "http" not in re.sub(r"http-equiv|https?://www\.w3\.org", "", page.split("<body>")[1])
        assert decisions(gate_id) == 0
        forged = http.post(url, data={"decision": "approve", "form_token": "0" * 64})
        assert forged.status_code == 403 and decisions(gate_id) == 0  # cross-site form refused
        done = http.post(
            url,
            data={
                "decision": "approve",
                "comment": "同意",
                "signer_name": "黄伟 Huang Wei",  # a typed name is ignored: the link's person signs
                "form_token": form_token(page),
            },
        )
        assert done.status_code == 200 and "已记录 / Recorded" in done.text and "approve" in done.text
        assert decisions(gate_id) == 1
        again = http.post(url, data={"decision": "reject", "form_token": form_token(page)})
        assert "已记录 / Recorded" in again.text and decisions(gate_id) == 1
        assert "approve" in http.get(url).text
        other = http.get(links[customers[1]])  # a second customer's link after the gate closed
        assert "已记录 / Recorded" in other.text and "approve" in other.text
    with session_scope() as session:
        row = session.execute(select(GateDecision).where(GateDecision.gate_id == gate_id)).scalar_one()
    listed = next(c.name for c in form.contacts if c.email == customers[0])
    # signed as listed for the mailbox that was proven; the name typed in the page changes nothing
    assert (row.door, row.proof, row.signer_email, row.signer_name, row.comment) == (
        "email",
        "mailbox",
        customers[0],
        listed,
        "同意",
    )


def test_forged_altered_expired_and_foreign_tokens_are_refused_alike(web: str) -> None:
    form, gate_id = setup_gate()
    links = mailed_links(free_port())
    url = next(iter(links.values()))
    token = url.rsplit("/", 1)[1]
    base = url.rsplit("/", 1)[0]
    flipped = [
        token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :] for i in range(0, len(token), 7)
    ]
    forged = ["x" * 43, "", "..%2f..%2fetc", token[:-1], token + "x"] + flipped
    with httpx.Client() as http:
        plain = http.get(f"{base}/{'y' * 43}").text
        bodies = [http.get(f"{base}/{t}") for t in forged if t]
        posts = [
            http.post(f"{base}/{t}", data={"decision": "approve", "form_token": "0" * 64})
            for t in forged
            if t
        ]
        with session_scope() as session:  # expire the real link
            session.execute(update(ApprovalLink).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        expired = http.get(url)
    assert all(r.status_code in (404, 429) for r in bodies + posts + [expired])
    assert {r.text for r in bodies + posts + [expired]} == {plain}  # nothing about any gate
    assert "Sign the survey report" not in plain
    assert decisions(gate_id) == 0
    print(f"refused tokens: {len(bodies) + len(posts) + 1}, accepted: {decisions(gate_id)}")


def test_bad_tokens_are_throttled_but_a_real_approver_gets_through(web: str) -> None:
    _, gate_id = setup_gate()
    url = next(iter(mailed_links(free_port()).values()))
    base = url.rsplit("/", 1)[0]
    with httpx.Client() as http:
        codes = [http.get(f"{base}/{'z' * 40}{i:03d}").status_code for i in range(40)]
        assert codes.count(429) >= 15 and codes[0] == 404
        assert http.get(url).status_code == 200


def test_web_processes_throttle_together(web: str, database_url: str, tmp_path: Path) -> None:
    """Two web processes on one database, a client alternating between them: the throttle
    counts its bad tokens together (in memory, each would have seen only half)."""
    port = free_port()
    env = dict(os.environ) | {
        "SITEFLOW_HOME": str(tmp_path),
        "SITEFLOW_DATABASE_URL": database_url,
        "SITEFLOW_WEB_PORT": str(port),
    }
    other = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "siteflow.web:app", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        second = f"http://127.0.0.1:{port}"
        with httpx.Client() as http:
            deadline = time.monotonic() + 30
            while True:
                try:
                    http.get(f"{second}/healthz")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the second web process did not start"
                    time.sleep(0.2)
            codes = [http.get(f"{(web, second)[i % 2]}/a/{'y' * 40}{i:03d}").status_code for i in range(30)]
    finally:
        other.terminate()
        other.wait(10)
    assert codes[:20] == [404] * 20 and codes[20:] == [429] * 10


def test_racing_submissions_of_one_link_record_one_decision(web: str) -> None:
    _, gate_id = setup_gate()
    url = next(iter(mailed_links(free_port()).values()))
    with httpx.Client() as http:
        token = form_token(http.get(url).text)

    def submit(_: int) -> int:
        with httpx.Client() as c:
            return c.post(url, data={"decision": "approve", "form_token": token}).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(submit, range(8)))
    assert decisions(gate_id) == 1 and all(c == 200 for c in codes)


def test_two_party_gate_needs_both_links(web: str) -> None:
    form, gate_id = setup_gate(two_party=True)
    links = mailed_links(free_port())
    customer = next(c.email for c in form.contacts if c.role.value == "customer")
    ours = next(c.email for c in form.contacts if c.role.value in ("pm", "supervisor"))
    with httpx.Client() as http:
        for email, waiting in ((customer, True), (ours, False)):
            page = http.get(links[email]).text
            done = http.post(links[email], data={"decision": "sign", "form_token": form_token(page)}).text
            assert ("等待另一方签字" in done) is waiting
    assert decisions(gate_id) == 2


def test_forbidden_phrase_in_a_comment_is_stopped(web: str) -> None:
    _, gate_id = setup_gate()
    url = next(iter(mailed_links(free_port()).values()))
    with httpx.Client() as http:
        page = http.get(url).text
        r = http.post(
            url, data={"decision": "reject", "comment": "这个不可能", "form_token": form_token(page)}
        )
    assert r.status_code == 422 and "「不可能」" in r.text and "COM-1" in r.text
    assert decisions(gate_id) == 0


def test_not_ready_by_email_carries_the_agreed_date(web: str) -> None:
    """ENG-9 through the email door: not-ready needs the agreed date, which the page asks for."""
    form = ProjectIn.model_validate(yaml.safe_load(EXAMPLE.read_text(encoding="utf-8")))
    with session_scope() as session:
        session.add(Project.from_form(form, None))
    gate = open_gate.fn(form.code, "", readiness_check("installation-readiness-r1", "ENG-9", "Ready?"))
    url = next(iter(mailed_links(free_port()).values()))
    with httpx.Client() as http:
        page = http.get(url).text
        assert 'type="date"' in page
        missing = http.post(url, data={"decision": "not-ready", "form_token": form_token(page)})
        assert missing.status_code == 409 and "agreed_date" in missing.text
        ok = http.post(
            url,
            data={"decision": "not-ready", "data.agreed_date": "2026-12-20", "form_token": form_token(page)},
        )
    assert ok.status_code == 200 and decisions(gate.id) == 1
    with session_scope() as session:
        row = session.execute(select(GateDecision).where(GateDecision.gate_id == gate.id)).scalar_one()
    assert row.data == {"agreed_date": "2026-12-20", "notes": ""}


def test_a_data_gate_by_email_asks_for_its_typed_fields(web: str) -> None:
    """Issue #9 item 5: no "pass --data FILE.json" dead end — the link's page asks for every
    field of the gate (ENG-2's meeting) with typed inputs, and says which one is missing."""
    from flows.signoffs import data_entry
    from models.project_input import Role

    form = ProjectIn.model_validate(yaml.safe_load(EXAMPLE.read_text(encoding="utf-8")))
    with session_scope() as session:
        session.add(Project.from_form(form, None))
    spec = data_entry("survey-coordination-meeting", "ENG-2", "Coordination meeting", "MeetingIn", [Role.PM])
    gate = open_gate.fn(form.code, "", spec)
    pm = form.contacts_with(Role.PM)[0]
    url = mailed_links(free_port())[pm.email]
    with httpx.Client() as http:
        page = http.get(url).text
        assert 'type="date" id="data-held_on"' in page and 'name="data.division_of_work"' in page
        assert 'name="decision" value="submit"' in page  # one decision: one button
        empty = http.post(url, data={"decision": "submit", "form_token": form_token(page)})
        assert empty.status_code == 409 and "--data" not in empty.text and "必填 / Required" in empty.text
        filled = {
            "decision": "submit",
            "data.held_on": "2026-12-03",
            "data.attendees": "李娜 Li Na\n陈静 Chen Jing",
            "data.scope": "OSN ring",
            "data.division_of_work": "we install",
            "form_token": form_token(page),
        }
        assert http.post(url, data=filled).status_code == 200
    with session_scope() as session:
        row = session.execute(select(GateDecision).where(GateDecision.gate_id == gate.id)).scalar_one()
    assert (row.door, row.proof, row.signer_email) == ("email", "mailbox", pm.email)
    assert row.data is not None and row.data["attendees"] == ["李娜 Li Na", "陈静 Chen Jing"]
