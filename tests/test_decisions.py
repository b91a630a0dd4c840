"""The one decision path, `siteflow.decisions.decide`, against a real database (SQLite and PostgreSQL).

Every refusal must say why (a message a person can act on) and change nothing but the record
of the refusal itself: the gate stays as it was, no signature is written, and the attempt is
kept as a refused `GateAttempt` plus a `gate.refused` audit event (docs/architecture.md "The gate").
Gates are opened with no flow run, so no Prefect server is involved.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from flows.signoffs import customer_signoff, data_entry, readiness_check, two_party_signoff
from models.audit import AuditEvent
from models.document import Document
from models.gate import Gate, GateAttempt, GateDecision, GateStatus
from models.gate_spec import Decision, GateSpec
from models.project import Project
from models.project_input import ProjectIn, Role
from siteflow import audit_chain
from siteflow.approval_links import issue_link
from siteflow.db import session_scope
from siteflow.decisions import DecisionRefused, DecisionRequest, DecisionResult, Signer, decide
from siteflow.stand_in_signers import proven
from tasks.gates import open_gate, read_gate, record_ui_decision

CODE = "SF-TEST-001"
CHEN = Signer("Chen Jing", "chen.jing@customer.example")  # customer
HUANG = Signer("Huang Wei", "huang.wei@customer.example")  # customer
LI = Signer("Li Na", "li.na@siteflow.example")  # pm
WANG = Signer("Wang Qiang", "wang.qiang@siteflow.example")  # supervisor
ZHANG = Signer("Zhang Wei", "zhang.wei@siteflow.example")  # engineer
STRANGER = Signer("Mallory", "mallory@elsewhere.example")  # not a contact


def project_form(code: str = CODE, extra_customers: int = 0) -> ProjectIn:
    contacts = [
        {"name": CHEN.name, "email": CHEN.email, "role": "customer"},
        {"name": HUANG.name, "email": HUANG.email, "role": "customer"},
        {"name": LI.name, "email": LI.email, "role": "pm"},
        {"name": WANG.name, "email": WANG.email, "role": "supervisor"},
        {"name": ZHANG.name, "email": ZHANG.email, "role": "engineer"},
    ]
    contacts += [
        {"name": f"Customer {i}", "email": f"customer{i}@customer.example", "role": "customer"}
        for i in range(extra_customers)
    ]
    return ProjectIn.model_validate(
        {
            "code": code,
            "customer": "广东移动 Guangdong Mobile",
            "planned_start": "2026-12-01",
            "planned_end": "2027-01-31",
            "sites": [
                {"site_id": "GZ-TH-01", "name": "Tianhe", "address": "385 Tianhe Rd"},
                {"site_id": "GZ-PY-02", "name": "Panyu", "address": "12 Shiqiao St"},
            ],
            "contract_items": [{"item_code": "OSN-9800", "description": "Chassis", "quantity": 2}],
            "contacts": contacts,
        }
    )


def add_project(form: ProjectIn) -> None:
    with session_scope() as session:
        session.add(Project.from_form(form, None))


def add_document(code: str = CODE, doc_key: str = "survey-report", version: int = 1) -> str:
    content = f"<html><body>{doc_key} v{version}</body></html>"
    with session_scope() as session:
        doc = Document(
            subject=code,
            kind="survey-report",
            doc_key=doc_key,
            version=version,
            title="工程勘察报告 / Survey report",
            content=content,
            sha256=hashlib.sha256(content.encode()).hexdigest(),
            body_sha256="0" * 64,
        )
        session.add(doc)
        session.flush()
        return doc.id


def open_(spec: GateSpec, code: str = CODE) -> str:
    """Open a gate with no flow run behind it (decide() then never tries to resume one)."""
    return open_gate.fn(code, None, spec).id


def signoff_gate(key: str = "survey-report-signoff") -> str:
    return open_(customer_signoff(key, "ENG-8", "Survey report sign-off / 勘察报告签字", add_document()))


def two_party_gate() -> str:
    doc = add_document(doc_key="environment-acceptance")
    return open_(two_party_signoff("env-acceptance", "ENG-10", "Environment acceptance", doc))


def survey_gate(**kw: Any) -> str:
    spec = data_entry(
        "survey-data-r1",
        "ENG-4",
        "Survey data / 勘察数据",
        "SurveyDataIn",
        [Role.ENGINEER, Role.SUPERVISOR],
        **kw,
    )
    return open_(spec)


def req(gate_id: str, decision: str, signer: Signer, **kw: Any) -> DecisionRequest:
    """`signer` deciding through their own door: customers by their link, staff by their token."""
    return proven(gate_id, decision, signer, **kw)


def site_survey(site_id: str, **overrides: Any) -> dict[str, Any]:
    site = {
        "site_id": site_id,
        "surveyed_on_site": True,
        "cable_runs": [{"name": "power A to rack 3", "measured_length_m": 12.5}],
        "terminals": [{"terminal": "DDF-1/1", "occupancy": "free"}],
    }
    return site | overrides


@dataclass
class Snapshot:
    status: str
    outcome: str | None
    decided_at: datetime | None
    decisions: int
    accepted: int
    refused: int
    events: int


def snapshot(gate_id: str) -> Snapshot:
    with session_scope() as session:
        gate = session.get(Gate, gate_id)
        assert gate is not None

        def count(model: Any, *where: Any) -> int:
            return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)

        return Snapshot(
            status=gate.status,
            outcome=gate.outcome,
            decided_at=gate.decided_at,
            decisions=count(GateDecision, GateDecision.gate_id == gate_id),
            accepted=count(GateAttempt, GateAttempt.gate_id == gate_id, GateAttempt.accepted.is_(True)),
            refused=count(GateAttempt, GateAttempt.gate_id == gate_id, GateAttempt.accepted.is_(False)),
            events=count(AuditEvent, AuditEvent.stream == CODE),
        )


def refused_events(gate_id: str) -> list[dict[str, Any]]:
    with session_scope() as session:
        events = audit_chain.events_for(session, CODE)
    payloads = [json.loads(e.payload) for e in events if e.kind == "gate.refused"]
    return [p for p in payloads if p["gate_id"] == gate_id]


def assert_refused(request: DecisionRequest) -> str:
    """decide() refuses; only the refusal itself is recorded; returns the reason."""
    before = snapshot(request.gate_id)
    with pytest.raises(DecisionRefused) as info:
        decide(request)
    reason = info.value.reason
    assert reason and str(info.value) == reason
    assert info.value.gate_id == request.gate_id
    after = snapshot(request.gate_id)
    # nothing changed …
    assert (after.status, after.outcome) == (before.status, before.outcome)
    assert after.decided_at == before.decided_at
    assert after.decisions == before.decisions
    assert after.accepted == before.accepted
    # … except the record of the refusal: one refused attempt and one audit event, both with the reason
    assert after.refused == before.refused + 1
    assert after.events == before.events + 1
    with session_scope() as session:
        attempt = session.execute(
            select(GateAttempt)
            .where(GateAttempt.gate_id == request.gate_id, GateAttempt.accepted.is_(False))
            .order_by(GateAttempt.at.desc())
            .limit(1)
        ).scalar_one()
        assert attempt.reason == reason
        assert attempt.decision == request.decision
        assert attempt.signer == str(request.signer)
        assert attempt.door == request.door.value
        assert audit_chain.verify(session, CODE) == []
    last = refused_events(request.gate_id)[-1]
    assert last["reason"] == reason and last["decision"] == request.decision
    return reason


@pytest.fixture
def project(database_url: str) -> ProjectIn:
    form = project_form()
    add_project(form)
    return form


# --- Signer.parse (the CLI's --by) ----------------------------------------------------------------


def test_signer_parse_reads_name_and_lowercases_email() -> None:
    signer = Signer.parse("  陈静 Chen Jing <Chen.Jing@Customer.example> ")
    assert signer == Signer("陈静 Chen Jing", "chen.jing@customer.example")
    assert str(signer) == "陈静 Chen Jing <chen.jing@customer.example>"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Chen Jing",
        "chen.jing@customer.example",
        "Chen Jing chen.jing@customer.example",
        "Chen Jing <chen.jing>",
        "Chen Jing <chen jing@customer.example>",
        "<chen.jing@customer.example>",
        "   <chen.jing@customer.example>",  # a blank name is no name
        "Chen Jing <chen.jing@customer.example",
        "Chen <Jing> <chen.jing@customer.example>",
    ],
)
def test_signer_parse_refuses_malformed_by(text: str) -> None:
    with pytest.raises(ValueError) as info:
        Signer.parse(text)
    message = str(info.value)
    assert message.startswith('a signer must look like "Name <name@example.com>"')
    assert repr(text) in message


# --- accepted decisions ---------------------------------------------------------------------------
# Each test below gets a fresh database per backend (about a second on PostgreSQL), so related
# checks share one test where they can share one gate.


def test_customer_signoff_approved_writes_signature_attempt_and_audit(project: ProjectIn) -> None:
    """ENG-8: one customer contact signs; the gate closes with a signature, an attempt and audit events.

    The email is matched without regard to case or surrounding spaces and stored as listed.
    """
    gate_id = signoff_gate()
    by = Signer("Chen Jing", "  CHEN.Jing@Customer.Example ")
    result = decide(req(gate_id, "approve", by, comment="looks right", role="customer"))
    assert result.complete and result.outcome == "approve" and result.slot == "customer"
    assert result.flow_run_id is None
    assert result.message.startswith("recorded: approve on survey-report-signoff by Chen Jing")

    read = read_gate.fn(gate_id)
    assert read.closed and read.outcome == "approve"
    assert [(s.slot, s.decision, s.signer, s.role, s.door, s.comment) for s in read.signatures] == [
        ("customer", "approve", str(CHEN), "customer", "email", "looks right")
    ]
    snap = snapshot(gate_id)
    assert (snap.decisions, snap.accepted, snap.refused) == (1, 1, 0)
    with session_scope() as session:
        kinds = [e.kind for e in audit_chain.events_for(session, CODE)]
        assert audit_chain.verify(session, CODE) == []
    assert kinds == ["gate.opened", "gate.decision", "gate.closed"]


# --- refusals: each says why and changes nothing ---------------------------------------------------


def test_malformed_requests_refused(project: ProjectIn) -> None:
    """Unknown decision value, empty fields, data where none is taken, unknown gate."""
    gate_id = signoff_gate()

    reason = assert_refused(req(gate_id, "maybe", CHEN))
    assert reason == "unknown decision 'maybe' for gate survey-report-signoff; allowed: approve, reject"

    for request in (req(gate_id, "", CHEN), req(gate_id, "approve", Signer("", CHEN.email))):
        reason = assert_refused(request)
        assert "needs a decision value, the signer's name and email" in reason
        assert "nothing was decided" in reason

    reason = assert_refused(req(gate_id, "approve", CHEN, data={"anything": 1}))
    assert reason == "gate survey-report-signoff takes no data; leave the data out"

    # a gate id that does not exist: refused, and there is no gate to record the attempt against
    with pytest.raises(DecisionRefused) as info:
        decide(req("00000000-0000-0000-0000-000000000000", "approve", CHEN))
    assert "no gate with id '00000000-0000-0000-0000-000000000000'" in info.value.reason
    assert "siteflow gates list" in info.value.reason

    snap = snapshot(gate_id)
    assert (snap.status, snap.decisions, snap.accepted, snap.refused) == ("open", 0, 0, 4)
    # after all that, a valid decision still goes through
    assert decide(req(gate_id, "approve", CHEN)).complete


def test_second_decision_on_decided_gate_refused_naming_first_decider(project: ProjectIn) -> None:
    """First valid decision wins; a later one by another customer is refused and names the first."""
    gate_id = signoff_gate()
    decide(req(gate_id, "approve", CHEN))
    reason = assert_refused(req(gate_id, "reject", HUANG, comment="I disagree"))
    assert reason.startswith("gate survey-report-signoff is already decided: approve by ")
    assert f"{CHEN} (email)" in reason
    assert "nothing was changed" in reason
    read = read_gate.fn(gate_id)
    assert read.outcome == "approve" and read.signers == [str(CHEN)]


def test_only_listed_contacts_in_the_gates_roles_may_decide(project: ProjectIn) -> None:
    """ENG-8: only a customer contact of this project signs the survey report."""
    gate_id = signoff_gate()

    reason = assert_refused(req(gate_id, "approve", STRANGER))
    assert reason == (
        f"{STRANGER} is not a contact of project {CODE}; only its listed contacts may decide its gates"
    )

    for signer, role in ((ZHANG, "engineer"), (WANG, "supervisor"), (LI, "pm")):
        reason = assert_refused(req(gate_id, "approve", signer))
        assert str(signer) in reason and role in reason
        assert reason.endswith("gate survey-report-signoff is decided by customer")

    # a role given with the decision must be the one the contact is listed with
    reason = assert_refused(req(gate_id, "approve", CHEN, role="supervisor"))
    assert reason == f"{CHEN} is listed as customer, not supervisor"
    reason = assert_refused(req(gate_id, "approve", ZHANG, role="customer"))
    assert reason == f"{ZHANG} is listed as engineer, not customer"

    snap = snapshot(gate_id)
    assert (snap.status, snap.decisions, snap.refused) == ("open", 0, 6)


def test_two_party_gate_needs_two_different_people(project: ProjectIn) -> None:
    """ENG-10: both parties sign, two different people, one from each side; a refusal settles it."""
    gate_id = two_party_gate()
    first = decide(req(gate_id, "sign", CHEN))
    assert not first.complete and first.slot == "customer"
    assert first.message.endswith("still waiting for the contractor side")

    # the link signs once; and with a second link (a reminder's) the same person, however the
    # email is spelled, cannot sign a second time
    assert "this link was used already" in assert_refused(req(gate_id, "sign", CHEN))
    with session_scope() as session:
        issue_link(session, gate_id, CHEN.name, CHEN.email, None)
    reason = assert_refused(req(gate_id, "sign", Signer("C. Jing", "CHEN.JING@customer.example")))
    assert "has already signed gate env-acceptance" in reason
    assert "two different people" in reason
    assert snapshot(gate_id).status == GateStatus.OPEN.value

    # another customer cannot take the customer side either: it is filled
    reason = assert_refused(req(gate_id, "sign", HUANG))
    assert reason == (
        f"the customer side of gate env-acceptance was already decided by {CHEN}; "
        "a later decision cannot replace it"
    )

    done = decide(req(gate_id, "sign", WANG))
    assert done.complete and done.outcome == "sign" and done.slot == "contractor"
    read = read_gate.fn(gate_id)
    assert sorted((s.slot, s.signer) for s in read.signatures) == [
        ("contractor", str(WANG)),
        ("customer", str(CHEN)),
    ]
    # the gate is closed now: the PM cannot add a third signature
    assert "already decided: sign by" in assert_refused(req(gate_id, "sign", LI))

    # on another two-party gate a refusal by either side settles it at once
    doc = add_document(doc_key="project-plan")
    other = open_(two_party_signoff("project-plan-signoff", "ENG-11", "Project plan", doc))
    result = decide(req(other, "refuse", WANG, comment="cable trays missing"))
    assert result.complete and result.outcome == "refuse"
    assert "already decided: refuse" in assert_refused(req(other, "sign", CHEN))
    assert snapshot(other).decisions == 1


def test_survey_data_is_validated_before_it_is_accepted(project: ProjectIn) -> None:
    """ENG-4: done on site, complete (every site), uncertain terminals explained."""
    gate_id = survey_gate()

    reason = assert_refused(req(gate_id, "submit", ZHANG, data={"sites": [site_survey("GZ-TH-01")]}))
    assert reason.startswith("data for gate survey-data-r1 is not valid: ")
    assert "survey report incomplete (ENG-4): no data for site(s) GZ-PY-02" in reason

    vague = site_survey("GZ-PY-02", terminals=[{"terminal": "DDF-2/7", "occupancy": "uncertain"}])
    reason = assert_refused(req(gate_id, "submit", WANG, data={"sites": [site_survey("GZ-TH-01"), vague]}))
    assert "sites.1.terminals.0" in reason
    assert "terminal DDF-2/7: uncertain occupancy needs an explanation (ENG-4)" in reason

    remote = site_survey("GZ-PY-02", surveyed_on_site=False)
    reason = assert_refused(req(gate_id, "submit", ZHANG, data={"sites": [site_survey("GZ-TH-01"), remote]}))
    assert "site GZ-PY-02: the survey must be done on site (ENG-4)" in reason

    reason = assert_refused(req(gate_id, "submit", ZHANG))
    assert reason == (
        "decision 'submit' on gate survey-data-r1 needs data (SurveyDataIn); "
        "fill the form fields or pass --data FILE.json"
    )

    padded = site_survey(" GZ-PY-02 ", terminals=[{"terminal": "DDF-2/7", "occupancy": "free"}])
    reason = assert_refused(req(gate_id, "submit", ZHANG, data={"sites": [site_survey("GZ-TH-01"), padded]}))
    assert "sites.1.site_id: Site code: use letters A–Z" in reason  # a code as typed, or refused (#10)

    explained = site_survey(
        "GZ-PY-02",
        terminals=[{"terminal": "DDF-2/7", "occupancy": "uncertain", "explanation": "label missing"}],
    )
    result = decide(req(gate_id, "submit", ZHANG, data={"sites": [site_survey("GZ-TH-01"), explained]}))
    assert result.complete and result.outcome == "submit"
    stored = read_gate.fn(gate_id).data()
    assert [s["site_id"] for s in stored["sites"]] == ["GZ-TH-01", "GZ-PY-02"]
    assert stored["sites"][1]["terminals"][0] == {
        "terminal": "DDF-2/7",
        "occupancy": "uncertain",
        "explanation": "label missing",
    }
    snap = snapshot(gate_id)
    assert (snap.decisions, snap.accepted, snap.refused) == (1, 1, 5)


def test_readiness_not_ready_needs_data_ready_does_not(project: ProjectIn) -> None:
    """ENG-9: not ready comes with the agreed date of the next attempt; ready needs nothing."""
    first = open_(readiness_check("installation-readiness-r1", "ENG-9", "Ready?"))
    reason = assert_refused(req(first, "not-ready", CHEN))
    assert "needs data (ReadinessIn)" in reason
    reason = assert_refused(req(first, "not-ready", CHEN, data={"agreed_date": "someday"}))
    assert "agreed_date" in reason
    result = decide(req(first, "not-ready", CHEN, data={"agreed_date": "2026-12-15", "notes": "power"}))
    assert result.outcome == "not-ready"
    assert read_gate.fn(first).data() == {"agreed_date": "2026-12-15", "notes": "power"}

    second = open_(readiness_check("installation-readiness-r2", "ENG-9", "Ready?"))
    assert decide(req(second, "ready", HUANG)).outcome == "ready"


def test_readiness_not_ready_without_agreed_date_refused(project: ProjectIn) -> None:
    """ENG-9: if the site is not ready, a planned start date is agreed."""
    gate_id = open_(readiness_check("installation-readiness-r1", "ENG-9", "Ready?"))
    reason = assert_refused(req(gate_id, "not-ready", CHEN, data={}))
    assert "agreed_date" in reason


def test_too_early_refused_then_accepted_after_not_before(project: ProjectIn) -> None:
    """ENG-30: the crew observes after cutover; the observation gate cannot be closed early."""
    not_before = datetime.now(UTC) + timedelta(days=2)
    spec = data_entry(
        "observation",
        "ENG-30",
        "Observation after cutover",
        "ObservationIn",
        [Role.SUPERVISOR],
        decisions=[Decision.SUBMIT],
        data_for=[],
        not_before=not_before,
    )
    gate_id = open_(spec)
    reason = assert_refused(req(gate_id, "submit", WANG))
    assert reason.startswith("too early: gate observation can be decided from ")
    assert f"{not_before:%Y-%m-%d %H:%M} UTC (ENG-30)" in reason
    # A caller-supplied time cannot get past it: the server's clock decides.
    assert_refused(req(gate_id, "submit", WANG, at=not_before + timedelta(minutes=1)))
    with session_scope() as session:  # the observation period has passed
        session.get(Gate, gate_id).not_before = datetime.now(UTC) - timedelta(seconds=1)
    later = decide(req(gate_id, "submit", WANG))
    assert later.complete


# --- concurrency and replays ----------------------------------------------------------------------


def test_first_valid_decision_wins_under_concurrency(database_url: str) -> None:
    """Eight customers decide the same single-party gate at the same moment: exactly one wins."""
    form = project_form(extra_customers=6)
    add_project(form)
    gate_id = signoff_gate()
    customers = [Signer(c.name, c.email) for c in form.contacts_with(Role.CUSTOMER)]
    assert len(customers) == 8
    barrier = threading.Barrier(len(customers))
    outcomes: dict[str, object] = {}

    def attempt(index: int, signer: Signer) -> None:
        decision = "approve" if index % 2 == 0 else "reject"
        barrier.wait()
        try:
            outcomes[signer.email] = decide(req(gate_id, decision, signer))
        except Exception as exc:  # DecisionRefused expected; anything else fails below
            outcomes[signer.email] = exc

    threads = [threading.Thread(target=attempt, args=(i, s)) for i, s in enumerate(customers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)

    won = {e: r for e, r in outcomes.items() if isinstance(r, DecisionResult)}
    lost = {e: r for e, r in outcomes.items() if isinstance(r, DecisionRefused)}
    assert len(outcomes) == 8
    assert len(won) == 1 and len(lost) == 7, outcomes
    ((winner_email, winner),) = won.items()
    for refused in lost.values():
        assert "already decided" in refused.reason or "at the same moment" in refused.reason

    snap = snapshot(gate_id)
    assert (snap.decisions, snap.accepted, snap.refused) == (1, 1, 7)
    read = read_gate.fn(gate_id)
    assert read.closed and read.outcome == winner.outcome
    assert [s.signer for s in read.signatures] == [f"{form.contact(winner_email).name} <{winner_email}>"]  # type: ignore[union-attr]
    with session_scope() as session:
        assert audit_chain.verify(session, CODE) == []
        kinds = [e.kind for e in audit_chain.events_for(session, CODE)]
    assert kinds.count("gate.decision") == 1 and kinds.count("gate.closed") == 1
    assert kinds.count("gate.refused") == 7


def test_a_prefect_ui_answer_signs_nothing_whoever_it_names(project: ProjectIn) -> None:
    """The Prefect UI cannot prove who pressed Resume (issue #9): an answer to an open gate is
    refused and recorded (door prefect-ui) whoever it names — a stranger, the customer, or
    nobody — and a flow re-run replaying it records it once. The resumer's answer, carrying
    the decision recorded through a proven door, is taken as it is and counted as nothing."""
    gate_id = signoff_gate()
    answers = [
        {"decision": "approve", "signer_name": "Mallory", "signer_email": STRANGER.email},
        {"decision": "approve", "signer_name": CHEN.name, "signer_email": CHEN.email},  # the customer
        {"gate": gate_id, "decision": "approve", "comment": "typed in the form"},  # as the form sends
    ]
    for n, answer in enumerate(answers, 1):
        first = record_ui_decision.fn(gate_id, answer, f"run-1:pause-{n}")
        assert first.refused and not first.replayed
        assert first.reason.startswith("the Prefect UI cannot prove who pressed Resume")
        assert gate_id in first.reason and "nothing was signed" in first.reason
        again = record_ui_decision.fn(gate_id, answer, f"run-1:pause-{n}")  # a re-run replays it
        assert again.refused and again.replayed and again.reason == first.reason
    snap = snapshot(gate_id)
    assert (snap.status, snap.decisions, snap.accepted, snap.refused) == ("open", 0, 0, 3)
    assert [e["door"] for e in refused_events(gate_id)] == ["prefect-ui"] * 3
    with session_scope() as session:
        claimed = session.execute(
            select(GateAttempt.signer).where(GateAttempt.gate_id == gate_id).order_by(GateAttempt.at)
        ).scalars()
        assert list(claimed) == [str(STRANGER), str(CHEN), "unknown (Prefect UI) <nobody@prefect-ui.invalid>"]

    decide(req(gate_id, "approve", CHEN))
    events = snapshot(gate_id).events
    from siteflow.resumer import answer_for

    carried = record_ui_decision.fn(gate_id, answer_for(gate_id), "run-1:pause-4")
    assert not carried.refused and carried.message.startswith("already recorded: approve by Chen Jing")
    snap = snapshot(gate_id)
    assert (snap.decisions, snap.accepted, snap.refused, snap.events) == (1, 1, 3, events)
    other = record_ui_decision.fn(gate_id, {"gate": gate_id, "decision": "reject"}, "run-1:pause-5")
    assert other.refused and "already decided" in other.reason  # decide refuses it, recorded


# --- COM-4 and COM-7 through the decision path ---------------------------------------------------

SUN = Signer("Sun Yue", "sun.yue@power-works.example")  # the third party's lead


def test_com4_cooperation_agreement_is_signed_by_both_leads(database_url: str) -> None:
    """COM-4: our PM and the third party's lead sign the cooperation agreement (the lead by the
    link mailed to them); the customer or our supervisor cannot stand in for either lead."""
    from flows.signoffs import cooperation_signoff

    raw = project_form().model_dump(mode="json")
    raw["contacts"].append({"name": SUN.name, "email": SUN.email, "role": "third-party"})
    raw["third_party"] = {"company": "Southern Power Works", "shared_work": "DC power and cabling"}
    add_project(ProjectIn.model_validate(raw))
    doc = add_document(doc_key="cooperation-agreement")
    gate_id = open_(cooperation_signoff("cooperation-agreement-signoff-r1", "COM-4", "Cooperation", doc))
    assert "this link does not belong to gate" in assert_refused(req(gate_id, "sign", CHEN))  # none mailed
    reason = assert_refused(req(gate_id, "sign", WANG))
    assert "gate cooperation-agreement-signoff-r1 is decided by pm and third-party" in reason
    first = decide(req(gate_id, "sign", SUN))
    assert not first.complete and first.slot == "third-party"
    done = decide(req(gate_id, "sign", LI))
    assert done.complete and done.outcome == "sign" and done.slot == "contractor"


def test_com7_site_access_gate_refuses_an_incomplete_checklist(project: ProjectIn) -> None:
    """COM-7: the visit's checklist gate records nothing until the duty staff's consent and the
    badge are there for every site; the refusal names COM-7."""
    from flows.signoffs import site_access

    gate_id = open_(site_access("site-access-installation", "installation"))
    entry = {"duty_staff_consent": True, "duty_staff_name": "Zhou Min", "badge": True}
    sites = [entry | {"site_id": s.site_id} for s in project.sites]
    reason = assert_refused(req(gate_id, "submit", ZHANG, data={"sites": sites[:1]}))
    assert "COM-7: no site-access checklist for site(s) GZ-PY-02" in reason
    no_badge = [sites[0], sites[1] | {"badge": False}]
    assert "COM-7: every engineer on site wears a badge" in assert_refused(
        req(gate_id, "submit", ZHANG, data={"sites": no_badge})
    )
    assert decide(req(gate_id, "submit", ZHANG, data={"sites": sites})).complete
