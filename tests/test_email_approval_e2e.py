"""The customer's whole path on real parts (issue #4): the gate mail arrives at the SMTP
catcher, the link is taken out of it, a real browser opens the confirmation page and submits,
and the waiting flow run continues; the audit trail names the signer and the door `email`."""

from __future__ import annotations

import email
import email.policy
import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.sync_api import sync_playwright
from sqlalchemy import select

from models.project_input import ProjectIn
from siteflow.decisions import Signer, decide
from siteflow.stand_in_signers import proven
from tests.test_engineering_e2e import ROOT, wait_for_open_gate, wait_paused
from tests.test_prefect_ui_gate import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.e2e


def wait_for_link(
    mail_dir: Path, recipient: str, subject_part: str, nth: int = 0, timeout: float = 60
) -> str:
    """The approval link in the nth matching mail, in the order the relay delivered them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        matching = []
        for path in sorted(mail_dir.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns):
            msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if recipient in str(msg["To"]) and subject_part in str(msg["Subject"]):
                matching.append(msg)
        if len(matching) > nth:
            body = matching[nth].get_body(preferencelist=("plain",))
            assert body is not None
            m = re.search(r"(http://\S+/a/\S+)", body.get_content())
            assert m, "the mail carries no approval link"
            return m.group(1)
        time.sleep(0.3)
    raise AssertionError(f"no mail {nth + 1} for {recipient} about {subject_part} within {timeout}s")


def test_customer_answers_by_email_in_a_browser(stack_factory: Any) -> None:
    from siteflow import audit_report
    from siteflow.launch import start_project

    handle = stack_factory("sqlite")
    raw = yaml.safe_load((ROOT / "examples" / "project.yaml").read_text(encoding="utf-8"))
    raw["code"] = f"MAIL-{int(time.time()) % 1000000}"
    form = ProjectIn.model_validate(raw)
    customer = form.contacts[1]
    with handle.active():
        run_id = start_project(form)
        # ENG-1 round 1: not ready, with an agreed date — the survey visit invite moves (COM-3)
        r1 = wait_for_open_gate(form.code, "survey-readiness-r1")
        agreed = form.planned_start + timedelta(days=7)
        decide(
            proven(
                r1.id,
                "not-ready",
                Signer(customer.name, customer.email),
                data={"agreed_date": agreed.isoformat()},
            )
        )
        wait_for_open_gate(form.code, "survey-readiness-r2")
        wait_paused(run_id)
        link = wait_for_link(handle.settings.mail_dir, customer.email, f"[{form.code}] 待您决定", nth=1)
        invite = next(  # COM-3: the survey visit came as a calendar invite through the same relay
            msg
            for path in handle.settings.mail_dir.glob("*.eml")
            if customer.email
            in str((msg := email.message_from_bytes(path.read_bytes(), policy=email.policy.default))["To"])
            and "Invitation" in str(msg["Subject"])
        )
        assert any(part.get_content_type() == "text/calendar" for part in invite.walk())
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page.goto(link)
                assert "Can the site be surveyed?" in page.content()
                page.get_by_label("ready", exact=True).check()
                page.fill("#comment", "站点已具备条件 / site ready")
                page.get_by_role("button", name="确认提交 / Confirm").click()
                page.wait_for_selector("text=已记录 / Recorded")
                shown = page.inner_text("body")
                page.goto(link)  # opening the link again shows the recorded decision
                again = page.inner_text("body")
            finally:
                browser.close()
        assert customer.name in shown and "ready" in shown and "email" in shown
        assert "已记录 / Recorded" in again
        wait_for_open_gate(form.code, "survey-coordination-meeting")  # the flow continued
        gate = next(
            g
            for g in audit_report.build(form.code, with_prefect=False)["gates"]
            if g["key"] == "survey-readiness-r2"
        )
        assert [(s["door"], s["by"], s["comment"]) for s in gate["signatures"]] == [
            ("email", f"{customer.name} <{customer.email}>", "站点已具备条件 / site ready")
        ]
        # The visit moved once, and re-runs passing through round 1 did not move it back
        from models.calendar_invite import CalendarInvite
        from models.outbox import OutboxMessage
        from siteflow.db import session_scope

        with session_scope() as session:
            visit = session.execute(
                select(CalendarInvite).where(
                    CalendarInvite.subject == form.code, CalendarInvite.key == "survey-visit"
                )
            ).scalar_one()
            assert visit.sequence == 1 and visit.starts_at.date() == agreed
            sent = (
                session.execute(
                    select(OutboxMessage.dedup_key).where(
                        OutboxMessage.dedup_key.startswith(f"invite:{visit.uid}:")
                    )
                )
                .scalars()
                .all()
            )
            assert len(sent) == 2 * len(visit.attendees)
