"""Mails as people read them (issue #9 item 8), received by a real SMTP server (aiosmtpd)
and parsed back, on SQLite and PostgreSQL:

- the acceptance certificate sent to the office is HTML with real tables and headings, and
  plain text without Markdown (no ``###``, no ``| --- |``, no ``**``);
- what a person typed (a leftover issue, a comment quoted in a notice) arrives escaped: no
  script, no link slipped in;
- times are on the site's clock with the UTC instant beside it, no microseconds: a reminder
  for a project in Asia/Shanghai, an invite for an upgrade window in America/New_York;
- the approval page behind a mail link shows the signature's time the same way.
"""

from __future__ import annotations

import email.message
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select

from models import paperwork
from models.gate import GateDecision
from models.gate_spec import Party
from models.project_input import Role
from siteflow import reminders
from siteflow.db import session_scope
from siteflow.mail_body import literal
from tasks.documents import render_summary
from tasks.project_records import notify
from tests.test_approval_links import form_token, mailed_links, setup_gate, web  # noqa: F401  (fixture)
from tests.test_mail_content import deliver, project, upgrade_plan
from tests.test_outbox_relay import free_port
from tests.test_reminders import open_

MICROSECONDS = re.compile(r"\d\d:\d\d:\d\d\.\d+|\+00:00")


def parts(msg: email.message.EmailMessage) -> tuple[str, str]:
    html = msg.get_body(preferencelist=("html",))
    plain = msg.get_body(preferencelist=("plain",))
    assert html is not None and plain is not None
    return html.get_content(), plain.get_content()


def test_certificate_mail_is_html_with_tables_and_text_without_markdown(database_url: str) -> None:
    form = project()
    certificate = paperwork.acceptance_certificate(form, "2026-12-03", 1)
    summary = render_summary(certificate, 1, "c" * 64)
    assert "###" in summary and "| --- |" in summary  # what the flow mails (and Prefect shows)
    office = [f"{c.name} <{c.email}>" for c in form.contacts if c.role in (Role.OFFICE, Role.PM)]
    notify.fn(form.code, "certificate-to-office", office, f"[{form.code}] 验收证书 / Certificate", summary)

    [msg, *_] = deliver()
    types = [p.get_content_type() for p in msg.walk()]
    assert types[:3] == ["multipart/alternative", "text/plain", "text/html"]
    html, plain = parts(msg)

    assert re.search(r"<h3[^>]*>验收证书 / Acceptance certificate \(v1\)</h3>", html)
    assert html.count("<table") == 2  # sites, contract configuration
    assert re.search(r"<th[^>]*>编码 Item</th>", html) and re.search(r"<td[^>]*>OSN-9800-CHASSIS</td>", html)
    assert "<strong>验收 / Acceptance</strong>" in html and "<li>" in html
    assert "|" not in html and "###" not in html

    for markdown in ("###", "| --- |", "|---|", "| ", "**", "`"):
        assert markdown not in plain, markdown
    assert "验收证书 / Acceptance certificate (v1)\n----" in plain  # a heading, underlined
    header = next(line for line in plain.splitlines() if line.startswith("编码 Item"))
    row = next(line for line in plain.splitlines() if line.startswith("OSN-9800-CHASSIS"))
    # the columns line up on screen, Chinese characters counting two cells
    assert header.index("描述 Description") + 2 == row.index("Optical transport chassis")
    assert "- 验收日期 / Accepted on: 2026-12-03" in plain


def test_what_a_person_typed_arrives_escaped(database_url: str) -> None:
    form = project()
    typed = "<script>alert('x')</script> [点我 click](http://evil.example) | ### 标题 **bold**"
    memo = paperwork.project_memo(form, typed, "2026-12-20", "王芳 Wang Fang")
    pm = next(c for c in form.contacts if c.role is Role.PM)
    quoted = f"客户意见 / The customer's comment:\n  {literal(typed)}\n\n" + render_summary(memo, 1, "d" * 64)
    notify.fn(form.code, "memo-filed", [f"{pm.name} <{pm.email}>"], f"[{form.code}] 备忘录 / Memo", quoted)

    [msg] = deliver()
    html, plain = parts(msg)
    assert "<script" not in html.lower() and html.count("&lt;script&gt;alert(") == 2
    assert "href" not in html and html.count("[点我 click](http://evil.example)") == 2  # text, not a link
    assert "<h3" in html and html.count("<h3") == 1  # only the memo's own title is a heading
    # the text part shows what was typed, as typed (it is text: nothing runs in it)
    assert "<script>alert('x')</script> [点我 click](http://evil.example) | ### 标题 **bold**" in plain


def test_reminder_and_invite_times_are_on_the_site_clock_with_utc_beside(database_url: str) -> None:
    from tasks.upgrade_records import register_window
    from tests.test_upgrade_rules import booking_day

    code = project().code  # Asia/Shanghai
    deadline = datetime(2027, 1, 5, 20, 0, 0, 123456, tzinfo=UTC)  # 04:00 the next morning on site
    gate = open_(code, "survey-report-signoff-r1", [Party(slot="customer", roles=[Role.CUSTOMER])], deadline)
    assert reminders.send_reminders(clock=lambda: deadline - timedelta(hours=2))
    reminder = next(m for m in deliver() if "Reminder" in str(m["Subject"]))
    html, plain = parts(reminder)
    expected = "2027-01-06 04:00 CST (2027-01-05 20:00 UTC)"
    assert f"Deadline: {expected}" in plain and expected in html
    assert not MICROSECONDS.search(plain) and not MICROSECONDS.search(html)
    assert gate.deadline is not None

    window = upgrade_plan(timezone="America/New_York")  # a window in another zone than the project
    register_window(window, clock=booking_day)
    invite = deliver()[0]
    html, plain = parts(invite)
    assert "When: 2026-12-03 00:30 – 04:00 EST (05:30 – 09:00 UTC)" in plain
    assert "2026-12-03 00:30 – 04:00 EST (05:30 – 09:00 UTC)" in html
    assert not MICROSECONDS.search(plain)


def test_approval_page_shows_the_signature_time_on_the_site_clock(web: str) -> None:  # noqa: F811
    from siteflow.decisions import Signer, decide
    from siteflow.stand_in_signers import proven

    form, gate_id = setup_gate()  # the sample project, Asia/Shanghai
    customer = next(c for c in form.contacts if c.role is Role.CUSTOMER)
    url = mailed_links(free_port())[customer.email]
    decide(proven(gate_id, "approve", Signer(customer.name, customer.email), comment="<b>同意</b>"))
    with httpx.Client() as http:
        done = http.get(url)  # the link now shows what was recorded
    assert done.status_code == 200 and "已记录 / Recorded" in done.text
    with session_scope() as session:
        signed = session.execute(select(GateDecision.decided_at)).scalar_one()
    local = signed.astimezone(ZoneInfo("Asia/Shanghai"))
    utc = f"{signed:%H:%M}" if local.date() == signed.date() else f"{signed:%Y-%m-%d %H:%M}"
    assert f"<td>{local:%Y-%m-%d %H:%M} CST ({utc} UTC)</td>" in done.text
    assert "&lt;b&gt;同意&lt;/b&gt;" in done.text and not MICROSECONDS.search(done.text)


def test_upgrade_report_shows_the_window_and_its_steps_on_the_window_clock(database_url: str) -> None:
    from models.upgrade import JournalEntry, UpgradeElement
    from tasks.documents import render_html
    from tasks.upgrade_records import register_window
    from tasks.upgrade_report import upgrade_report
    from tests.test_upgrade_rules import booking_day

    window = upgrade_plan(timezone="America/New_York")
    register_window(window, clock=booking_day)
    started = window.window.starts_at + timedelta(minutes=5, microseconds=123456)
    with session_scope() as session:
        session.add(UpgradeElement(window_id=window.id, name=window.elements[0].name, note=""))
        session.add(
            JournalEntry(
                window_id=window.id,
                element=window.elements[0].name,
                stage="upgrade",
                item="load-image",
                title="Load the image",
                operator=window.operators[0].name,
                result="ok",
                started_at=started,
                ended_at=started + timedelta(seconds=42),
            )
        )
    html = render_html(upgrade_report(window.id), 1)
    assert "2026-12-03 00:30 – 04:00 EST (05:30 – 09:00 UTC)" in html  # the window, as booked
    assert "<td>00:35:00 EST (05:35:00 UTC)</td><td>00:35:42 EST (05:35:42 UTC)</td>" in html
    assert not MICROSECONDS.search(html)


def test_the_gate_mail_states_its_deadline_on_the_site_clock() -> None:
    """The first mail of a gate with a deadline (UPG-10) names it in the site's time, UTC beside."""
    from datetime import UTC, datetime

    from flows.signoffs import CONTRACTOR
    from models.gate_spec import Decision, GateKind, GateSpec
    from tasks.gates import gate_mail_text

    spec = GateSpec(
        key="decision-ne-1",
        kind=GateKind.ROLLBACK_DECISION,
        rule="UPG-8",
        title="Commit or roll back NE-1",
        parties=[CONTRACTOR],
        decisions=[Decision.COMMIT, Decision.ROLLBACK],
        deadline=datetime(2026, 12, 2, 20, 0, tzinfo=UTC),
        default_decision=Decision.ROLLBACK,
    )
    text = gate_mail_text("UPG-1", spec, "Huang Min", "Asia/Shanghai")
    assert "Decide by: 2026-12-03 04:00 CST (2026-12-02 20:00 UTC)" in text
