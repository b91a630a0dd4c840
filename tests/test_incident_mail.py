"""Email intake through a real SMTP server (issue #11): mails sent with aiosmtplib to the stack's
catcher, addressed to the support address — a new incident (received = the mail's Date, channel
email, owned by the duty person, acknowledged with its key), a follow-up by key (a customer
message on its record, COM-2), an unknown sender (kept, routed to the duty owner, INC-9) and a
mail that is not valid text (refused with the reason, its bytes kept)."""

from __future__ import annotations

import asyncio
import email.utils
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import pytest
from sqlalchemy import select

from models.incident import Incident, IncidentEventRow
from models.incident_contract import ContractIn
from models.incident_mail import InboundMail
from models.incident_run import IncidentRun
from models.outbox import OutboxMessage
from siteflow.db import session_scope
from siteflow.incidents import records
from siteflow.incidents.views import incident_view
from tests.incident_samples import contract
from tests.test_incident_e2e import mails_to, wait_for

pytestmark = pytest.mark.e2e
CUSTOMER = "jana.vogel@nordnetz.example"
DUTY = "duty.desk@contractor.example"


def mail_contract() -> ContractIn:
    terms = contract("C-MAIL-1").model_dump(mode="json")
    return ContractIn.model_validate(
        terms
        | {
            "customer_contacts": [{"name": "Jana Vogel", "email": CUSTOMER, "phone": "+49 30 1234 5678"}],
            "duty": {"name": "Duty Desk", "email": DUTY},
        }
    )


def send(handle: Any, sender: str, subject: str, body: str, sent: datetime) -> str:
    message = EmailMessage()
    message["From"], message["To"] = sender, handle.settings.support_address
    message["Subject"], message["Date"] = subject, email.utils.format_datetime(sent)
    message["Message-ID"] = email.utils.make_msgid(domain="nordnetz.example")
    message.set_content(body)
    _, reply = asyncio.run(aiosmtplib.send(message, hostname="127.0.0.1", port=handle.settings.smtp_port))
    return reply


def kept(sender: str) -> InboundMail:
    with session_scope() as session:
        row = session.scalars(
            select(InboundMail)
            .where(InboundMail.envelope_from == sender)
            .order_by(InboundMail.arrived_at.desc())
        ).first()
        assert row is not None
        session.expunge(row)
        return row


def test_mail_to_support_opens_follows_up_and_routes_unknown_senders(stack_factory: Any) -> None:
    handle = stack_factory("sqlite")
    with handle.active():
        with session_scope() as session:
            records.save_contract(session, contract=mail_contract())
        sent = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=7)

        # a new incident: received = the mail's own Date, channel email, owned by the duty person
        reply = send(handle, f"Jana Vogel <{CUSTOMER}>", "Voice down in Mitte", "No dial tone since 9.", sent)
        assert "(opened)" in reply
        opened = kept(CUSTOMER)
        key = opened.incident_key
        assert opened.outcome == "opened" and key is not None
        with session_scope() as session:
            incident = session.get(Incident, key)
            run = session.get(IncidentRun, key)
            assert incident is not None and run is not None
            assert incident.channel == "email" and incident.received_at == sent
            assert incident.contract_code == "C-MAIL-1" and "No dial tone" in incident.reported
            assert run.owner_email == DUTY and run.caller_email == CUSTOMER
        # the run's acknowledgement with the key reaches the customer (through the catcher)
        wait_for(
            lambda: any("We have your report" in s for s in mails_to(handle.settings.mail_dir, key)),
            "the acknowledgement",
        )

        # a follow-up naming the key: a customer message on the incident's record (COM-2)
        reply = send(
            handle, CUSTOMER, f"Re: [{key}] We have your report", "Please call me before 10:00.", sent
        )
        assert "(added)" in reply
        with session_scope() as session:
            events = list(
                session.scalars(select(IncidentEventRow).where(IncidentEventRow.incident_key == key))
            )
            messages = [e for e in events if e.kind == "customer-message"]
            assert len(messages) == 1 and "before 10:00" in messages[0].data["text"]
            assert messages[0].by == "Jana Vogel"
            shown = incident_view(session, key=key, now=datetime.now(UTC), with_record=True)
        (line,) = [r for r in shown.record if r.kind == "customer-message"]  # what `show` prints
        assert line.by == "Jana Vogel" and f"email from {CUSTOMER}: Re: [{key}]" in line.what
        assert "Please call me before 10:00." in line.what

        # an unknown sender: kept, routed to the duty owner, nothing opened
        stranger = f"someone-{int(time.time())}@elsewhere.example"
        reply = send(handle, stranger, "Our router is down", "Help!", sent)
        assert "(unknown-sender)" in reply
        unknown = kept(stranger)
        assert unknown.outcome == "unknown-sender" and unknown.incident_key is None
        assert "no contract names this sender" in unknown.reason
        with session_scope() as session:
            to_duty = session.scalars(
                select(OutboxMessage).where(OutboxMessage.dedup_key.like(f"support-mail:{unknown.id}:%"))
            ).all()
            assert f"Duty Desk <{DUTY}>" in [m.recipient for m in to_duty]

        # not valid text in its own charset: refused with the reason, its bytes kept
        raw = (
            f"From: {CUSTOMER}\r\nTo: {handle.settings.support_address}\r\nSubject: broken\r\n"
            f"Date: {email.utils.format_datetime(sent)}\r\n"
            f"Message-ID: <bad-{time.time()}@nordnetz.example>\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        ).encode() + b"caf\xe9 \xff\r\n"
        asyncio.run(
            aiosmtplib.send(
                raw,
                sender=CUSTOMER,
                recipients=[handle.settings.support_address],
                hostname="127.0.0.1",
                port=handle.settings.smtp_port,
            )
        )
        with session_scope() as session:
            bad = session.scalars(select(InboundMail).where(InboundMail.raw == raw)).one()
            assert bad.outcome == "refused" and "not valid utf-8" in bad.reason
            assert bad.incident_key is None
