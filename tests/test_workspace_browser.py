"""The workspace and the mail link in a real browser (Debian's chromium, Playwright; issue #9).

A PM signs in, opens a data-collecting gate from "waiting on me", fills its typed fields,
sees a refusal on the page with everything still filled in, and decides; a customer answers
a data-collecting gate (not ready, with the agreed date) from the link in their mail.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from flows.signoffs import readiness_check
from models.gate import GateDecision
from models.project_input import Role
from siteflow.db import session_scope
from tasks.gates import open_gate
from tests.test_approval_links import mailed_links
from tests.test_outbox_relay import free_port
from tests.test_prefect_ui_gate import CHROMIUM, CHROMIUM_ARGS
from tests.test_staff_identity import ADMIN, PASSWORD
from tests.test_workspace_web import PM, example, meeting_gate, signatures, start
from tests.test_workspace_web import web as web  # noqa: F401  (the fixture)

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@contextmanager
def chromium() -> Iterator[Browser]:
    """Playwright runs an event loop of its own: open it only after the mail was read."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@SQLITE_ONLY
def test_a_pm_decides_a_data_gate_from_the_inbox(web: str) -> None:  # noqa: F811
    from siteflow.identity.users import add_user

    form = example()
    start(form)
    add_user(PM, PASSWORD, ADMIN)
    gate = meeting_gate(form.code)
    with chromium() as browser:
        pm_decides(browser.new_page(), web, gate)
    (row,) = signatures(gate)
    assert (row.door, row.proof, row.signer_email) == ("web", "session", PM.email)
    assert row.data is not None and row.data["attendees"] == ["李娜 Li Na", "陈静 Chen Jing"]


def pm_decides(page: Page, web: str, gate: str) -> None:  # noqa: F811
    page.goto(f"{web}/inbox")
    assert "/signin?next=%2Finbox" in page.url
    page.fill("#email", PM.email)
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="登录 / Sign in").click()
    page.wait_for_url(f"{web}/inbox")
    page.get_by_role("link", name="Coordination meeting").click()
    page.wait_for_url(f"{web}/gates/{gate}")
    page.fill("input[name='data.held_on']", "2026-12-03")
    page.fill("textarea[name='data.attendees']", "李娜 Li Na\n陈静 Chen Jing")
    page.fill("textarea[name='data.scope']", "OSN ring")
    page.fill("textarea[name='data.division_of_work']", "we install, customer provides power")
    page.fill("#comment", "这个不可能")  # COM-1: a forbidden phrase is refused
    page.get_by_role("button", name="提交 / Submit").click()
    refusal = page.locator("#refusal")
    refusal.wait_for()
    assert "COM-1" in refusal.inner_text() and not signatures(gate)
    assert page.input_value("input[name='data.held_on']") == "2026-12-03"  # the form is kept
    assert page.input_value("textarea[name='data.attendees']") == "李娜 Li Na\n陈静 Chen Jing"
    assert page.input_value("#comment") == "这个不可能"
    page.fill("#comment", "会议纪要已确认")
    page.get_by_role("button", name="提交 / Submit").click()
    page.wait_for_url(f"{web}/gates/{gate}?recorded=1")
    assert "您的决定已记录" in page.content()


@SQLITE_ONLY
def test_a_customer_answers_a_data_gate_from_the_mail_link(web: str) -> None:  # noqa: F811
    form = example()
    start(form)
    gate = open_gate.fn(
        form.code, "", readiness_check("survey-readiness-r1", "ENG-1", "Can the site be surveyed?")
    )
    customer = form.contacts_with(Role.CUSTOMER)[0]
    url = mailed_links(free_port())[customer.email]
    with chromium() as browser:
        customer_answers(browser.new_page(), url)
    with session_scope() as session:
        row = session.query(GateDecision).filter(GateDecision.gate_id == gate.id).one()
    assert (row.door, row.proof, row.signer_email) == ("email", "mailbox", customer.email)
    assert row.data == {"agreed_date": "2026-12-20", "notes": ""}


def customer_answers(page: Page, url: str) -> None:
    page.goto(url)
    page.get_by_label("未就绪 / Not ready").check()
    page.get_by_role("button", name="确认提交 / Confirm").click()
    refusal = page.locator("#refusal")
    refusal.wait_for()
    assert "agreed_date" in refusal.inner_text()
    page.fill("input[name='data.agreed_date']", "2026-12-20")
    page.get_by_role("button", name="确认提交 / Confirm").click()
    page.get_by_text("已记录 / Recorded").first.wait_for()
