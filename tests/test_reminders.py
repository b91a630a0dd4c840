"""Reminders before a gate's deadline and escalation of a silent customer (issue #4), on SQLite
and PostgreSQL with an injected clock and no Prefect server.

Each person hears once per gate however many keeper passes (or keepers) run; a reminder
carries a fresh single-use link of the recipient's own; the PM notice names the customers who
are silent and carries no link; every mail lands with its audit record.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from sqlalchemy import func, select

from flows.signoffs import CONTRACTOR, CUSTOMER
from models.approval_link import ApprovalLink
from models.audit import AuditEvent
from models.gate import Gate
from models.gate_spec import Decision, GateKind, GateSpec, Party
from models.outbox import OutboxMessage
from models.project import Project
from models.project_input import ProjectIn, Role
from models.service_language import check_service_language
from siteflow import audit_chain, reminders
from siteflow.approval_links import LINK_PLACEHOLDER, find_link
from siteflow.db import session_scope
from siteflow.decisions import Signer, decide
from siteflow.mailed_links import token_in, token_of
from siteflow.stand_in_signers import proven
from tasks.gates import open_gate
from tests.test_project_form import EXAMPLE

CHEN = Signer("陈静 Chen Jing", "chen.jing@gd-mobile.example")  # customer
HUANG = Signer("黄伟 Huang Wei", "huang.wei@gd-mobile.example")  # customer
LI = Signer("李娜 Li Na", "li.na@siteflow.example")  # pm
WANG = Signer("王强 Wang Qiang", "wang.qiang@siteflow.example")  # supervisor
ZHAO = Signer("赵敏 Zhao Min", "zhao.min@siteflow.example")  # a second pm, added below
OURS = [Role.PM, Role.SUPERVISOR]


def add_project(second_pm: bool = False) -> str:
    raw = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    if second_pm:
        raw["contacts"].append({"name": ZHAO.name, "email": ZHAO.email, "role": "pm"})
    form = ProjectIn.model_validate(raw)
    with session_scope() as session:
        session.add(Project.from_form(form, None))
    return form.code


def open_(code: str, key: str, parties: list[Party], deadline: datetime | None = None, **kw: Any) -> Gate:
    """Open a gate with no flow run behind it; returns the stored row (with its opened_at)."""
    spec = GateSpec(
        key=key,
        kind=kw.pop("kind", GateKind.TWO_PARTY),
        rule=kw.pop("rule", "ENG-10"),
        title=kw.pop("title", f"Sign {key} / 签字"),
        parties=parties,
        decisions=kw.pop("decisions", [Decision.SIGN, Decision.REFUSE]),
        ends_at_once=kw.pop("ends_at_once", [Decision.REFUSE]),
        deadline=deadline,
        **kw,
    )
    gate_id = open_gate.fn(code, "", spec).id
    with session_scope() as session:
        gate = session.get(Gate, gate_id)
        assert gate is not None
        return gate


def sign(gate_id: str, signer: Signer, decision: str = "sign") -> None:
    decide(proven(gate_id, decision, signer))


def mails(prefix: str) -> list[OutboxMessage]:
    with session_scope() as session:
        return list(
            session.execute(
                select(OutboxMessage)
                .where(OutboxMessage.dedup_key.startswith(prefix))
                .order_by(OutboxMessage.dedup_key)
            ).scalars()
        )


def email_of(row: OutboxMessage) -> str:
    return row.recipient.rsplit("<", 1)[1].rstrip(">")


def audit_kinds(code: str, kind: str) -> list[dict[str, Any]]:
    with session_scope() as session:
        events = session.execute(
            select(AuditEvent).where(AuditEvent.stream == code, AuditEvent.kind == kind)
        ).scalars()
        return [json.loads(e.payload) for e in events]


def chain_is_intact(code: str) -> bool:
    with session_scope() as session:
        return audit_chain.verify(session, code) == []


# --- reminders --------------------------------------------------------------------------


def test_reminders_go_once_to_each_undecided_person_inside_the_window(database_url: str) -> None:
    code = add_project()
    deadline = (datetime.now(UTC) + timedelta(hours=72)).replace(microsecond=0)
    # The customer signs, and two of ours (PM or supervisor, different people).
    parties = [CUSTOMER, Party(slot="ours-1", roles=OURS), Party(slot="ours-2", roles=OURS)]
    gate = open_(code, "three-signatures", parties, deadline)
    late = open_(code, "lapsed", [CUSTOMER, CONTRACTOR], deadline)
    sign(gate.id, LI)  # fills ours-1; ours-2 still admits a PM, but Li has signed already

    assert reminders.send_reminders(clock=lambda: deadline - timedelta(hours=25)) == []
    assert mails("gate-reminder:") == []
    assert reminders.send_reminders(clock=lambda: deadline) == []  # at the deadline: too late
    assert reminders.send_reminders(clock=lambda: deadline + timedelta(hours=1)) == []

    inside = deadline - timedelta(hours=23)
    queued = reminders.send_reminders(clock=lambda: inside)
    expected = {
        f"gate-reminder:{gate.id}:{CHEN.email}",
        f"gate-reminder:{gate.id}:{HUANG.email}",
        f"gate-reminder:{gate.id}:{WANG.email}",  # not Li (signed), not the engineer or office
        f"gate-reminder:{late.id}:{CHEN.email}",
        f"gate-reminder:{late.id}:{HUANG.email}",
        f"gate-reminder:{late.id}:{LI.email}",
        f"gate-reminder:{late.id}:{WANG.email}",
    }
    assert sorted(queued) == sorted(expected)
    rows = mails("gate-reminder:")
    assert {r.dedup_key for r in rows} == expected

    opening = {(r.dedup_key.split(":")[1], email_of(r)): token_of(r) for r in mails("gate-opened:")}
    with session_scope() as session:
        for row in rows:
            gate_id, email = row.dedup_key.split(":")[1:]
            token = token_in(session, row)  # derived as the relay will; the row holds only the link's id
            assert LINK_PLACEHOLDER in row.body_text and token
            assert token != opening[(gate_id, email)]  # a fresh link, not the first one again
            link = find_link(session, token)
            assert link is not None and link.used_at is None
            assert (link.gate_id, link.recipient_email, link.expires_at) == (gate_id, email, deadline)
            assert email_of(row) == email and "Reminder" in row.title and "提醒" in row.title

    body = next(r.body_text for r in rows if r.dedup_key.endswith(f"{gate.id}:{CHEN.email}"))
    assert body.index("您好") < body.index("Dear") and body.startswith(CHEN.name)
    local = deadline.astimezone(ZoneInfo("Asia/Shanghai"))  # the site's clock first, UTC beside it
    utc = f"{deadline:%H:%M}" if local.date() == deadline.date() else f"{deadline:%Y-%m-%d %H:%M}"
    assert f"Deadline: {local:%Y-%m-%d %H:%M} CST ({utc} UTC)" in body
    assert "Sign three-signatures" in body and "sign / refuse" in body
    assert check_service_language(body) == []  # COM-1: it goes to customers

    payloads = audit_kinds(code, "gate.reminded")
    assert sorted(f"gate-reminder:{p['gate_id']}:{p['to']}" for p in payloads) == sorted(expected)
    assert chain_is_intact(code)

    assert reminders.send_reminders(clock=lambda: inside) == []  # every later pass: nothing new
    assert reminders.send_reminders(clock=lambda: inside + timedelta(hours=12)) == []
    assert len(mails("gate-reminder:")) == len(expected) and len(audit_kinds(code, "gate.reminded")) == 7


def test_no_reminder_for_decided_gates_or_gates_without_deadline(database_url: str) -> None:
    code = add_project()
    deadline = datetime.now(UTC) + timedelta(hours=72)
    decided = open_(code, "decided", [CUSTOMER, CONTRACTOR], deadline)
    open_(code, "no-deadline", [CUSTOMER, CONTRACTOR])
    sign(decided.id, CHEN, "refuse")  # refusal settles a two-party gate at once
    assert reminders.send_reminders(clock=lambda: deadline - timedelta(hours=1)) == []


def test_a_short_gate_is_not_reminded_right_after_it_opened(database_url: str) -> None:
    """A gate that opens inside the reminder window waits half its life before the reminder."""
    code = add_project()
    deadline = datetime.now(UTC) + timedelta(hours=10)
    gate = open_(code, "short", [CUSTOMER], deadline, kind=GateKind.CUSTOMER_SIGNOFF)
    halfway = gate.opened_at + (deadline - gate.opened_at) / 2
    assert reminders.send_reminders(clock=lambda: gate.opened_at + timedelta(seconds=1)) == []
    assert reminders.send_reminders(clock=lambda: halfway - timedelta(minutes=1)) == []
    assert len(reminders.send_reminders(clock=lambda: halfway)) == 2  # both customers


def test_an_upgrade_window_reminds_its_pm_in_the_window_time_zone(database_url: str) -> None:
    from tasks.upgrade_records import register_window
    from tests.test_upgrade_rules import booking_day, plan

    window = plan("UPG-RM-1", window=lambda w: {**w, "timezone": "Europe/Berlin"})
    register_window(window, clock=booking_day)
    deadline = datetime.now(UTC) + timedelta(hours=72)
    gate = open_(
        window.id,
        "go-no-go",
        [Party(slot="pm", roles=[Role.PM])],
        deadline,
        kind=GateKind.GO_NO_GO,
        decisions=[Decision.GO, Decision.NO_GO],
        ends_at_once=[],
        default_decision=Decision.NO_GO,
    )
    pm = window.contacts_with(Role.PM)[0]
    assert reminders.send_reminders(clock=lambda: deadline - timedelta(hours=2)) == [
        f"gate-reminder:{gate.id}:{pm.email}"
    ]
    body = mails("gate-reminder:")[0].body_text
    local = deadline.astimezone(ZoneInfo("Europe/Berlin"))  # the window's clock, not the project's
    assert f"Deadline: {local:%Y-%m-%d %H:%M %Z} (" in body and "the default applies: no-go" in body


# --- escalation -------------------------------------------------------------------------


def test_a_silent_customer_is_escalated_once_to_each_pm(database_url: str) -> None:
    code = add_project(second_pm=True)
    waiting = open_(
        code,
        "survey-report-signoff-r1",
        [CUSTOMER],
        kind=GateKind.CUSTOMER_SIGNOFF,
        rule="ENG-8",
        title="Sign the survey report / 勘察报告签字",
        decisions=[Decision.APPROVE, Decision.REJECT],
        ends_at_once=[],
    )
    answered = open_(code, "env-acceptance", [CUSTOMER, CONTRACTOR])  # customer signed, we did not
    ours = open_(code, "pm-only", [Party(slot="pm", roles=[Role.PM])], kind=GateKind.PM_DECISION)
    sign(answered.id, HUANG)
    opened = max(waiting.opened_at, answered.opened_at, ours.opened_at)

    assert reminders.escalate_silent_customers(clock=lambda: opened + timedelta(hours=47)) == []
    late = opened + timedelta(hours=49)
    queued = reminders.escalate_silent_customers(clock=lambda: late)
    assert sorted(queued) == sorted(
        [f"gate-escalated:{waiting.id}:{LI.email}", f"gate-escalated:{waiting.id}:{ZHAO.email}"]
    )
    rows = mails("gate-escalated:")
    assert sorted(email_of(r) for r in rows) == sorted([LI.email, ZHAO.email])
    for row in rows:
        assert row.link_id is None and LINK_PLACEHOLDER not in row.body_text and "/a/" not in row.body_text
        assert "Sign the survey report" in row.title and "Customer has not answered" in row.title
        body = row.body_text
        assert body.index("您好") < body.index("Dear")
        assert CHEN.email in body and HUANG.email in body and "49 小时 / hours" in body
        assert waiting.id in body and "INC-9" in body
    payloads = audit_kinds(code, "gate.escalated")
    assert sorted(p["to"] for p in payloads) == sorted([LI.email, ZHAO.email])
    assert all(p["gate_id"] == waiting.id and len(p["customers"]) == 2 for p in payloads)
    assert chain_is_intact(code)

    assert reminders.escalate_silent_customers(clock=lambda: late) == []
    assert reminders.escalate_silent_customers(clock=lambda: late + timedelta(days=5)) == []
    assert len(mails("gate-escalated:")) == 2 and len(audit_kinds(code, "gate.escalated")) == 2


def test_an_answered_or_decided_customer_gate_is_not_escalated(database_url: str) -> None:
    code = add_project()
    gate = open_(code, "readiness", [CUSTOMER], kind=GateKind.CUSTOMER_SIGNOFF, decisions=[Decision.SIGN])
    sign(gate.id, CHEN)
    assert reminders.escalate_silent_customers(clock=lambda: gate.opened_at + timedelta(days=10)) == []
    assert mails("gate-escalated:") == []


# --- several keepers --------------------------------------------------------------------


def test_racing_keepers_queue_each_reminder_and_notice_once(database_url: str) -> None:
    code = add_project()
    deadline = datetime.now(UTC) + timedelta(hours=72)
    gate = open_(code, "raced", [CUSTOMER, CONTRACTOR], deadline)
    inside = deadline - timedelta(hours=1)  # also 71 h after opening: escalation is due too
    keepers = 4
    barrier = threading.Barrier(keepers)
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def keeper() -> None:
        try:
            barrier.wait()
            results.append(
                reminders.send_reminders(clock=lambda: inside)
                + reminders.escalate_silent_customers(clock=lambda: inside)
            )
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=keeper) for _ in range(keepers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    queued = [key for r in results for key in r]
    expected = {f"gate-reminder:{gate.id}:{e}" for e in (CHEN.email, HUANG.email, LI.email, WANG.email)}
    expected.add(f"gate-escalated:{gate.id}:{LI.email}")
    assert sorted(queued) == sorted(expected)  # each once, whichever keeper won it
    assert {r.dedup_key for r in mails("gate-")} - {r.dedup_key for r in mails("gate-opened:")} == expected
    with session_scope() as session:
        links = session.scalar(select(func.count()).where(ApprovalLink.gate_id == gate.id))
    assert links == len(mails("gate-opened:")) + 4  # a losing keeper's link was rolled back
    assert len(audit_kinds(code, "gate.reminded")) == 4 and len(audit_kinds(code, "gate.escalated")) == 1
    assert chain_is_intact(code)


def test_a_keeper_losing_the_insert_race_swallows_the_duplicate(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both keepers saw no row yet: the loser's insert hits the unique dedup key and is dropped."""
    code = add_project()
    deadline = datetime.now(UTC) + timedelta(hours=72)
    open_(code, "raced", [CUSTOMER], deadline, kind=GateKind.CUSTOMER_SIGNOFF)
    inside = deadline - timedelta(hours=1)
    assert len(reminders.send_reminders(clock=lambda: inside)) == 2
    monkeypatch.setattr(reminders, "_already_queued", lambda session, keys: set())  # the stale view
    lost: list[str] = []
    queued = reminders._queued
    monkeypatch.setattr(reminders, "_queued", lambda session, key: lost.append(key) or queued(session, key))
    assert reminders.send_reminders(clock=lambda: inside) == []
    assert len(lost) == 2  # both inserts hit the unique key, and both were dropped quietly
    assert reminders.escalate_silent_customers(clock=lambda: inside) != []
    assert reminders.escalate_silent_customers(clock=lambda: inside) == []
    assert len(mails("gate-reminder:")) == 2 and len(mails("gate-escalated:")) == 1
    assert len(audit_kinds(code, "gate.reminded")) == 2 and chain_is_intact(code)
