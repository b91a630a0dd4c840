"""INC-4 warnings and breach, INC-9 escalation steps: each notice once, also with two keepers.

A critical incident (response target 30 min) is left unanswered; two keeper passes run at the
same instant, twice over, on one database: each warning, the breach and the escalation step
are recorded once and mailed once to their people through the outbox.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from models.incident_run import IncidentNotice, IncidentReportIn
from models.outbox import OutboxMessage
from siteflow.db import session_scope
from siteflow.incidents import intake, records
from siteflow.incidents.notices import send_due_notices
from tests.incident_samples import contract

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


def report(key: str = "INC-2026-0900") -> IncidentReportIn:
    return IncidentReportIn.model_validate(
        {
            "key": key,
            "received_at": T0,
            "channel": "phone",
            "contract": "C-BERLIN-1",
            "customer": "Nordnetz AG",
            "caller_name": "Jana Vogel",
            "caller_contact": "+49 30 1234 5678",
            "caller_email": "jana.vogel@nordnetz.example",
            "elements": ["NE40-BER-01"],
            "reported": "Voice service down in Mitte.",
            "questionnaire": {"service_down_totally": "yes"},
            "owner_name": "Max Bauer",
            "owner_email": "max.bauer@contractor.example",
        }
    )


def two_keepers(at: datetime) -> list[tuple[str, str]]:
    sent: list[tuple[str, str]] = []
    start = threading.Barrier(2)

    def keeper() -> None:
        start.wait()
        sent.extend(send_due_notices(lambda: at))

    threads = [threading.Thread(target=keeper) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sent


def test_a_missed_response_target_escalates_once_per_step_with_two_keepers(database_url: str) -> None:
    with session_scope() as session:
        records.save_contract(session, contract=contract())
        taken = intake.take_intake(session, report=report(), now=T0 + timedelta(minutes=1))
    assert taken.severity.value == "critical" and taken.settled and taken.emergency  # INC-1, INC-2

    sent = two_keepers(T0 + timedelta(minutes=31))  # 30 min response target: breached
    assert sorted(k for _, k in sent) == ["response:breach", "response:warning-50", "response:warning-75"]
    assert two_keepers(T0 + timedelta(minutes=31)) == []  # nothing twice

    # INC-9: one escalation step, its delay (30 min) after the breach, to its own person
    assert two_keepers(T0 + timedelta(minutes=59)) == []
    assert [k for _, k in two_keepers(T0 + timedelta(minutes=61))] == ["response:escalation-1"]
    assert two_keepers(T0 + timedelta(minutes=90)) == []

    with session_scope() as session:
        notices = session.scalars(select(IncidentNotice).order_by(IncidentNotice.due_at)).all()
        assert [(n.notice_key, n.kind) for n in notices] == [
            ("response:warning-50", "warning"),
            ("response:warning-75", "warning"),
            ("response:breach", "breach"),
            ("response:escalation-1", "escalation"),
        ]
        mails = session.execute(
            select(OutboxMessage.recipient, func.count()).group_by(OutboxMessage.recipient)
        ).all()
    # owner and PM each get the two warnings and the breach; the PM also the escalation step
    assert dict(mails) == {
        "Max Bauer <max.bauer@contractor.example>": 3,
        "Li Wei <li.wei@contractor.example>": 4,
    }


def test_a_pass_looks_only_at_incidents_due_a_look(database_url: str) -> None:
    """A pass costs what is due, not what is open: each incident looked at gets the time of its
    next warning, breach or escalation step, and is left alone until then — unless a change (an
    event, a handover, a new contract) asks for a look."""
    from models.incident import Incident
    from models.incident_input import ContactedIn
    from siteflow.incidents.notices import send_due_notices

    key = "INC-2026-0910"
    with session_scope() as session:
        records.save_contract(session, contract=contract())
        intake.take_intake(session, report=report(key), now=T0 + timedelta(minutes=1))

    def next_look() -> datetime | None:
        with session_scope() as session:
            row = session.get(Incident, key)
            assert row is not None
            return row.next_notice_at

    assert next_look() is None  # new: look now
    assert send_due_notices(lambda: T0 + timedelta(minutes=2)) == []
    assert next_look() == T0 + timedelta(minutes=15)  # the response clock's 50 % (30 min target)
    assert send_due_notices(lambda: T0 + timedelta(minutes=14)) == []  # not looked at: not due
    assert send_due_notices(lambda: T0 + timedelta(minutes=16)) == [(key, "response:warning-50")]
    assert next_look() == T0 + timedelta(minutes=22, seconds=30)  # 75 %

    with session_scope() as session:  # contacted: the response clock stops; look again now
        records.record_event(
            session,
            key=key,
            event=ContactedIn(at=T0 + timedelta(minutes=17), by="Max Bauer"),
            now=T0 + timedelta(minutes=17),
        )
    assert next_look() == T0 + timedelta(minutes=17)
    assert send_due_notices(lambda: T0 + timedelta(minutes=18)) == []
    restoration_50 = T0 + timedelta(minutes=120)  # critical restoration 240 min, 24x7
    assert next_look() == restoration_50


def test_a_promise_to_the_customer_reminds_the_owner_once_when_it_falls_due(database_url: str) -> None:
    """COM-2: a promise made to the customer is on the record with its time; when it comes due
    the keeper reminds the owner, once — and looks at the incident again just then."""
    from models.incident import Incident
    from models.incident_input import ContactedIn, PromiseIn
    from siteflow.incidents.notices import send_due_notices

    key = "INC-2026-0911"
    with session_scope() as session:
        records.save_contract(session, contract=contract())
        intake.take_intake(session, report=report(key), now=T0 + timedelta(minutes=1))
        records.record_event(
            session,
            key=key,
            event=ContactedIn(at=T0 + timedelta(minutes=5), by="Max Bauer"),
            now=T0 + timedelta(minutes=5),
        )
        records.record_event(
            session,
            key=key,
            event=PromiseIn(
                at=T0 + timedelta(minutes=6),
                by="Max Bauer",
                what="Call back with the engineer's arrival time",
                due=T0 + timedelta(minutes=50),
            ),
            now=T0 + timedelta(minutes=6),
        )
    promises = lambda at: [k for _, k in send_due_notices(lambda: at) if k.startswith("promise:")]  # noqa: E731
    assert promises(T0 + timedelta(minutes=7)) == []
    with session_scope() as session:
        row = session.get(Incident, key)
        assert row is not None and row.next_notice_at == T0 + timedelta(minutes=50)
    assert promises(T0 + timedelta(minutes=51)) == ["promise:2"]
    assert promises(T0 + timedelta(minutes=52)) == []
    with session_scope() as session:
        (mail,) = session.scalars(select(OutboxMessage).where(OutboxMessage.title.contains("promise")))
        assert mail.recipient == "Max Bauer <max.bauer@contractor.example>"
        assert "Call back with the engineer's arrival time" in mail.body_text and "COM-2" in mail.body_text
