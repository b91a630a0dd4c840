"""INC-9 handovers: the owner stays the owner until the person it is handed to accepts.

On SQLite and PostgreSQL through the rules themselves, and over the real web API and the real
CLI as two logged-in colleagues: a handover not (yet) accepted leaves the owner unchanged; a
stranger cannot accept it; accepting moves the incident and counts a reassignment; declining
leaves it where it was; every step is in the incident's audit trail and nothing else changes
on a refusal.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from models.incident import Incident
from models.incident_handover import IncidentHandover
from models.incident_run import IncidentReportIn, IncidentRun
from models.outbox import OutboxMessage
from siteflow import audit_chain
from siteflow.db import session_scope
from siteflow.identity.roles import StaffRole
from siteflow.identity.users import NewUser, add_user
from siteflow.incidents import intake, records
from siteflow.incidents.handover import Person, answer_handover, request_handover
from siteflow.incidents.refusals import IncidentRefused
from tests.cli_user import logged_in
from tests.cli_user import run as user_cli
from tests.conftest import SQLITE_ONLY
from tests.incident_samples import contract
from tests.test_approval_links import serve_web
from tests.test_incident_e2e import form

MAX = Person(name="Max Bauer", email="max.bauer@contractor.example")  # the first receiver
ANNA = Person(name="Anna Roth", email="anna.roth@contractor.example")  # the colleague
OTTO = Person(name="Otto Kern", email="otto.kern@contractor.example")  # someone else


def opened(key: str) -> None:
    """An incident taken in by Max (no run behind it: the rules are the database's)."""
    with session_scope() as session:
        records.save_contract(session, contract=contract())
    report = IncidentReportIn.model_validate(
        form(key, datetime.now(UTC) - timedelta(minutes=5))
        | {"owner_name": MAX.name, "owner_email": MAX.email}
    )
    with session_scope() as session:
        intake.take_intake(session, report=report, now=datetime.now(UTC))


def staff(*people: Person) -> None:
    for p in people:
        add_user(NewUser(name=p.name, email=p.email, roles=[StaffRole.ENGINEER]), None, "host-admin:test")


def owner(key: str) -> tuple[str, str, int]:
    with session_scope() as session:
        run, incident = session.get(IncidentRun, key), session.get(Incident, key)
        assert run is not None and incident is not None
        return run.owner_email, incident.owner, run.reassignments


def refused(call: object, match: str) -> None:
    with pytest.raises(IncidentRefused, match=match), session_scope() as session:
        call(session)  # type: ignore[operator]


def test_the_owner_is_unchanged_until_the_receiver_accepts(database_url: str) -> None:
    key = "INC-2026-901"
    opened(key)
    staff(MAX, ANNA, OTTO)
    now = datetime.now(UTC)
    refused(
        lambda s: request_handover(s, key=key, by=ANNA, to_email=OTTO.email, note="", now=now),
        "only the owner",
    )
    refused(
        lambda s: request_handover(s, key=key, by=MAX, to_email="nobody@x.example", note="", now=now),
        "no active",
    )
    with session_scope() as session:
        asked = request_handover(session, key=key, by=MAX, to_email=ANNA.email, note="night shift", now=now)
    assert asked.state == "pending" and owner(key) == (MAX.email, f"{MAX}", 0)
    refused(
        lambda s: request_handover(s, key=key, by=MAX, to_email=OTTO.email, note="", now=now), "waiting for"
    )
    refused(lambda s: answer_handover(s, key=key, by=OTTO, accept=True, now=now), "only they accept")
    assert owner(key) == (MAX.email, f"{MAX}", 0)  # a stranger's answer changed nothing

    with session_scope() as session:
        answer_handover(session, key=key, by=ANNA, accept=True, now=now)
    assert owner(key) == (ANNA.email, f"{ANNA}", 1)
    refused(lambda s: answer_handover(s, key=key, by=ANNA, accept=True, now=now), "no handover")
    with session_scope() as session:  # Anna hands it back; Max declines: Anna keeps it
        request_handover(session, key=key, by=ANNA, to_email=MAX.email, note="", now=now)
    with session_scope() as session:
        answer_handover(session, key=key, by=MAX, accept=False, now=now)
    assert owner(key) == (ANNA.email, f"{ANNA}", 1)
    with session_scope() as session:
        kinds = [e.kind for e in audit_chain.events_for(session, key)]
        states = session.scalars(select(IncidentHandover.state).where(IncidentHandover.incident_key == key))
        mails = session.scalars(
            select(OutboxMessage.recipient).where(OutboxMessage.dedup_key.startswith("incident-handover:"))
        )
        assert sorted(states) == ["accepted", "declined"] and sorted(mails) == [f"{ANNA}", f"{MAX}"]
    assert kinds.count("incident.handover-requested") == 2 and "incident.handover-accepted" in kinds
    assert "incident.handover-declined" in kinds


@pytest.fixture
def web(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.delenv("SITEFLOW_PUBLIC_URL", raising=False)
    yield from serve_web(monkeypatch)


@SQLITE_ONLY
def test_a_handover_at_the_cli_between_two_logged_in_colleagues(web: str, tmp_path: Path) -> None:
    key = "INC-2026-902"
    opened(key)
    max_cli = logged_in(tmp_path / "max", MAX.name, MAX.email, StaffRole.ENGINEER)
    anna_cli = logged_in(tmp_path / "anna", ANNA.name, ANNA.email, StaffRole.ENGINEER)
    asked = user_cli(max_cli, "incidents", "handover", key, "--to", ANNA.email, "--note", "I am off shift")
    assert asked.returncode == 0 and "owns it until they accept" in asked.stdout, asked.stderr
    again = user_cli(max_cli, "incidents", "accept", key)  # Max cannot accept for Anna
    assert again.returncode != 0 and "only they accept" in again.stdout + again.stderr
    assert owner(key)[0] == MAX.email
    took = user_cli(anna_cli, "incidents", "accept", key)
    assert took.returncode == 0 and f"you own {key} now (1 reassignment(s))" in took.stdout, took.stderr
    assert owner(key) == (ANNA.email, f"{ANNA}", 1)


def test_a_handover_left_unanswered_is_chased_owner_first_then_the_chain(database_url: str) -> None:
    """INC-9: the receiver does not act within the contract's time (30 min by default): the owner
    is told (still the owner), then the contract's chain one step at a time (the sample's PM 30 min
    later); each once, also with two keepers; the owner never changes; an answer ends the chase."""
    from siteflow.incidents.notices import send_due_notices
    from tests.test_incident_notices import two_keepers

    key = "INC-2026-902"
    opened(key)
    staff(MAX, ANNA)
    asked_at = datetime.now(UTC) - timedelta(hours=3)
    with session_scope() as session:
        request_handover(session, key=key, by=MAX, to_email=ANNA.email, note="", now=asked_at)

    def chased(at: datetime) -> list[str]:
        return sorted(k.split(":")[1] for _, k in two_keepers(at) if k.startswith("handover-"))

    assert chased(asked_at + timedelta(minutes=29)) == []  # not yet: the receiver still has time
    assert chased(asked_at + timedelta(minutes=31)) == ["escalation-0"]
    assert chased(asked_at + timedelta(minutes=59)) == []  # the PM's step is 30 min later
    assert chased(asked_at + timedelta(minutes=61)) == ["escalation-1"]
    assert chased(asked_at + timedelta(minutes=120)) == []  # the chain has one step: nothing twice
    assert owner(key) == (MAX.email, f"{MAX}", 0)
    with session_scope() as session:
        mails = {
            m.recipient: m.body_text
            for m in session.scalars(select(OutboxMessage).where(OutboxMessage.subject_ref == key))
            if "handover not accepted" in m.title
        }
    assert set(mails) == {f"{MAX}", "Li Wei <li.wei@contractor.example>"}
    assert (
        "You still own it" in mails[f"{MAX}"]
        and "step 1 of the contract's chain" in mails["Li Wei <li.wei@contractor.example>"]
    )

    later = "INC-2026-903"  # answered in time: nobody is chased
    opened(later)
    with session_scope() as session:
        request_handover(session, key=later, by=MAX, to_email=ANNA.email, note="", now=asked_at)
    with session_scope() as session:
        answer_handover(session, key=later, by=ANNA, accept=False, now=asked_at + timedelta(minutes=10))
    assert not [k for i, k in send_due_notices(lambda: asked_at + timedelta(hours=2)) if i == later]
