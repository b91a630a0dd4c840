"""What a mail carries, received by a real SMTP server (aiosmtpd) and parsed back, on SQLite
and PostgreSQL: HTML beside plain text, the document attached, calendar invites parsed with a
real iCalendar library (updates carry a higher SEQUENCE, cancellations METHOD:CANCEL), and
the COM-1 check stopping a customer's mail with a forbidden phrase."""

from __future__ import annotations

import asyncio
import email.message
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller
from icalendar import Calendar
from sqlalchemy import select

from models.outbox import OutboxMessage
from models.project import Project
from models.project_input import ProjectIn
from siteflow.db import session_scope
from siteflow.outbox_relay import relay_once
from siteflow.settings import Settings
from siteflow.stand_in_signers import proven
from tests.test_outbox_relay import Inbox, free_port

ROOT = Path(__file__).resolve().parent.parent


def deliver() -> list[email.message.EmailMessage]:
    port = free_port()
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        asyncio.run(relay_once(Settings(smtp_port=port), limit=500))
    finally:
        controller.stop()
    return inbox.messages


def calendar_of(msg: email.message.EmailMessage) -> Any:
    part = next(p for p in msg.walk() if p.get_content_type() == "text/calendar")
    cal = Calendar.from_ical(part.get_content())
    return cal, next(c for c in cal.walk("VEVENT"))


def upgrade_plan(**window: Any) -> Any:
    from models.upgrade_plan import UpgradePlanIn, resolve_runbook

    raw = resolve_runbook(
        yaml.safe_load((ROOT / "examples" / "upgrade-plan.yaml").read_text()), ROOT / "examples"
    )
    raw["window"].update(window)
    return UpgradePlanIn.model_validate(raw)


def test_upgrade_window_invite_update_and_cancel(database_url: str) -> None:
    from siteflow import invites
    from tasks.upgrade_records import register_window
    from tests.test_upgrade_rules import booking_day

    plan = upgrade_plan()
    register_window(plan, clock=booking_day)
    first = deliver()
    people = {o.email for o in plan.operators} | {c.email for c in plan.contacts}
    assert {m["To"].addresses[0].addr_spec for m in first} == people
    msg = first[0]
    assert [p.get_content_type() for p in msg.walk()][:4] == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "text/html",
    ]
    cal, event = calendar_of(msg)
    assert str(cal["METHOD"]) == "REQUEST"
    assert event["UID"] == f"{plan.id.lower()}-upgrade-window@siteflow" and event["SEQUENCE"] == 0
    assert event.decoded("DTSTART") == plan.window.starts_at
    assert event.decoded("DTEND") == plan.window.deadline_at
    assert len(event["ATTENDEE"]) == len(people)

    register_window(plan, clock=booking_day)  # the same plan again: nothing new goes out
    assert deliver() == []

    moved = upgrade_plan(date="2026-12-04")
    register_window(moved, clock=booking_day)  # COM-3: the delay is announced as an update of the same event
    update = deliver()
    assert len(update) == len(people) and "Rescheduled" in str(update[0]["Subject"])
    _, event = calendar_of(update[0])
    assert event["SEQUENCE"] == 1 and event.decoded("DTSTART") == plan.window.starts_at + timedelta(days=1)
    assert "2026-12-02 16:30" in update[0].get_body(preferencelist=("plain",)).get_content()  # was …

    with session_scope() as session:
        assert invites.cancel(session, plan.id, "upgrade-window", "the upgrade is postponed") == 2
    cancelled = deliver()
    cal, event = calendar_of(cancelled[0])
    assert str(cal["METHOD"]) == "CANCEL" and event["SEQUENCE"] == 2 and str(event["STATUS"]) == "CANCELLED"


def project() -> ProjectIn:
    form = ProjectIn.model_validate(yaml.safe_load((ROOT / "examples" / "project.yaml").read_text()))
    with session_scope() as session:
        session.add(Project.from_form(form, None))
    return form


def test_gate_mail_has_html_link_and_the_document_attached(database_url: str) -> None:
    from tests.test_approval_links import setup_gate

    form, _ = setup_gate()  # a survey-report sign-off gate on the sample project, with its document
    msg = deliver()[0]  # one per customer contact; each has the same parts
    html = msg.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    plain = msg.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    link = next(w for w in plain.split() if "/a/" in w)
    assert f'href="{link}"' in html and "Sign the survey report" in html
    attachment, pdf = list(msg.iter_attachments())
    assert attachment.get_filename() == f"{form.code}-survey-report-v1.html"
    assert "勘察 &amp; report" in attachment.get_content()
    # issue #12: the paper to print beside it, with the version's verification code
    assert pdf.get_filename() == f"{form.code}-survey-report-v1.pdf"
    assert pdf.get_content_type() == "application/pdf"
    content = pdf.get_content()
    assert content.startswith(b"%PDF-") and len(msg.as_bytes()) < 1_500_000  # a sane mail size
    from siteflow.db import session_scope as scope
    from siteflow.documents import codes

    with scope() as session:
        from models.document import Document

        doc = session.query(Document).filter_by(subject=form.code).one()
        code = codes.grouped(codes.code_for(session, doc.id))
    import io

    from pypdf import PdfReader

    assert code in "".join(p.extract_text() for p in PdfReader(io.BytesIO(content)).pages)


def test_forbidden_phrase_to_a_customer_is_stopped_and_the_pm_told(database_url: str) -> None:
    from siteflow import audit_chain

    form = project()
    customer = form.contacts[0]
    pm = next(c for c in form.contacts if c.role.value == "pm")
    with session_scope() as session:
        for who in (customer, pm):
            session.add(
                OutboxMessage(
                    dedup_key=f"note:{who.email}",
                    subject_ref=form.code,
                    recipient=f"{who.name} <{who.email}>",
                    title=f"[{form.code}] 进度 / Progress",
                    body_text="这个周末加班？不可能。",
                )
            )
    delivered = deliver()
    assert [m["To"].addresses[0].addr_spec for m in delivered] == [pm.email]  # internal text is not COM-1's
    with session_scope() as session:
        stopped = session.execute(select(OutboxMessage).where(OutboxMessage.status == "stopped")).scalar_one()
        assert stopped.recipient.endswith(f"<{customer.email}>")
        assert "「不可能」" in (stopped.last_error or "") and "我们会尽力的" in (stopped.last_error or "")
        kinds = [e.kind for e in audit_chain.events_for(session, form.code)]
        assert "mail.stopped" in kinds
    [notice] = deliver()  # the PM is told which mail and why
    assert notice["To"].addresses[0].addr_spec == pm.email and "COM-1" in str(notice["Subject"])


def test_pm_comment_with_a_forbidden_phrase_is_refused(database_url: str) -> None:
    from flows.signoffs import readiness_check, two_party_signoff
    from siteflow.decisions import DecisionRefused, Signer, decide
    from tasks.gates import open_gate

    form = project()
    gate = open_gate.fn(form.code, "", readiness_check("survey-readiness-r1", "ENG-1", "Ready?", None))
    customer = form.contacts[0]
    # a customer may say what they like; our staff's words are checked (COM-1)
    result = decide(proven(gate.id, "ready", Signer(customer.name, customer.email), comment="不可能更早了"))
    assert result.complete
    gate2 = open_gate.fn(
        form.code, "", two_party_signoff("environment-acceptance-r1", "ENG-10", "Sign", None)
    )
    supervisor = next(c for c in form.contacts if c.role.value == "supervisor")
    with pytest.raises(DecisionRefused, match="「我不知道」"):
        decide(
            proven(
                gate2.id, "sign", Signer(supervisor.name, supervisor.email), comment="接地电阻多少？我不知道"
            )
        )
