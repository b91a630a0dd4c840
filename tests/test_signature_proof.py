"""Every signature is made by the person it names (issue #9): forgery through every door.

The decision path gets each door's evidence — a staff account proven by a session or a token,
the approval link a customer opened, a paper's scan recorded by a staff member — and refuses
whatever the evidence does not prove: someone signing as someone else, a customer slot taken
by staff, a link of another person or gate, a used link, a disabled account, the Prefect UI,
a door without evidence. Each refusal is recorded and nothing is signed (`assert_refused`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from flows.signoffs import customer_signoff, two_party_signoff
from models.gate import GateDecision
from models.gate_spec import Door, Proof
from models.project_input import ProjectIn
from models.staff import StaffUser
from siteflow import audit_chain
from siteflow.db import session_scope
from siteflow.decisions import DecisionRequest, Signer, decide
from siteflow.signature_proof import Evidence
from siteflow.stand_in_signers import as_staff, by_link, link_id, proven, staff_account
from tests.test_decisions import (
    CHEN,
    CODE,
    HUANG,
    LI,
    WANG,
    add_document,
    add_project,
    assert_refused,
    open_,
    project_form,
    signoff_gate,
)


@pytest.fixture
def project(database_url: str) -> ProjectIn:
    form = project_form()
    add_project(form)
    return form


SCAN = hashlib.sha256(b"scan of the stamped arrival certificate").hexdigest()


def arrival_gate() -> str:
    doc = add_document(doc_key="arrival-certificate")
    return open_(customer_signoff("arrival-certificate-signoff-r1", "ENG-13", "Arrival", doc, paper=True))


def paper(gate_id: str, signer: Signer, recorder: Signer, scan: str | None = SCAN) -> DecisionRequest:
    return DecisionRequest(
        gate_id=gate_id,
        decision="approve",
        signer=signer,
        door=Door.PAPER,
        evidence=Evidence(
            Proof.PAPER, account=staff_account(recorder.name, recorder.email), scan_sha256=scan
        ),
    )


def signature(gate_id: str) -> GateDecision:
    with session_scope() as session:
        return session.execute(select(GateDecision).where(GateDecision.gate_id == gate_id)).scalar_one()


def test_staff_cannot_sign_as_someone_else(project: ProjectIn) -> None:
    gate_id = signoff_gate()
    # the PM's own token, naming the customer as the signer
    pm_token = as_staff(gate_id, "approve", LI)
    reason = assert_refused(replace(pm_token, signer=CHEN))
    assert reason.startswith(f"you are signed in as {LI} and cannot sign as {CHEN.email}")
    # a customer slot is not for a staff account, even one with the customer's email
    reason = assert_refused(as_staff(gate_id, "approve", CHEN))
    assert "is filled only by the customer through their own mailed link" in reason
    # the forger hears about the proof only, not the named person's role (asked for another)
    reason = assert_refused(replace(pm_token, signer=CHEN, role="supervisor", at=datetime.now(UTC)))
    assert reason.startswith("you are signed in as") and "listed as" not in reason


def test_a_link_signs_once_for_the_person_and_gate_it_was_mailed_for(project: ProjectIn) -> None:
    gate_id = signoff_gate()
    chen_link = by_link(gate_id, "approve", CHEN)
    # Chen's link naming Huang (another customer of the project)
    assert "was mailed to chen.jing@customer.example" in assert_refused(replace(chen_link, signer=HUANG))
    # a link of another gate
    other = open_(customer_signoff("other-signoff", "ENG-8", "Other", add_document(doc_key="other")))
    foreign = replace(by_link(other, "approve", CHEN), gate_id=gate_id)
    assert "does not belong to gate survey-report-signoff" in assert_refused(foreign)
    decide(chen_link)
    assert signature(gate_id).proof == "mailbox"
    assert "already decided" in assert_refused(by_link(gate_id, "approve", HUANG))


def test_doors_without_proof_are_refused(project: ProjectIn) -> None:
    gate_id = signoff_gate()
    link = link_id(gate_id, CHEN.email)
    for door, evidence in (
        (Door.CLI, Evidence(Proof.UNVERIFIED)),  # a CLI request without a token
        (Door.DEMO, Evidence(Proof.MAILBOX, link=link)),  # the old demo door
        (Door.EMAIL, Evidence(Proof.TOKEN, account=staff_account(CHEN.name, CHEN.email))),  # wrong proof
    ):
        request = DecisionRequest(
            gate_id=gate_id, decision="approve", signer=CHEN, door=door, evidence=evidence
        )
        assert "cannot prove who is signing" in assert_refused(request)
    ui = DecisionRequest(gate_id=gate_id, decision="approve", signer=CHEN, door=Door.PREFECT_UI)
    assert "the Prefect UI cannot prove who pressed Resume" in assert_refused(ui)


def test_a_disabled_account_signs_nothing(project: ProjectIn) -> None:
    gate_id = open_(two_party_signoff("env-acceptance", "ENG-10", "Env", add_document(doc_key="env")))
    request = as_staff(gate_id, "sign", WANG)
    with session_scope() as session:
        user = session.execute(select(StaffUser).where(StaffUser.email == WANG.email)).scalar_one()
        user.disabled_at = datetime.now(UTC)
    assert "is disabled" in assert_refused(request)


def test_two_party_gate_takes_one_proven_person_of_each_side(project: ProjectIn) -> None:
    """ENG-10: the customer by their link, our supervisor by their account; the trail says how."""
    gate_id = open_(two_party_signoff("env-acceptance", "ENG-10", "Env", add_document(doc_key="env")))
    # the supervisor cannot fill the customer's slot by naming the customer
    assert "cannot sign as" in assert_refused(replace(as_staff(gate_id, "sign", WANG), signer=CHEN))
    decide(proven(gate_id, "sign", CHEN))
    result = decide(proven(gate_id, "sign", WANG))
    assert result.complete
    with session_scope() as session:
        rows = session.execute(select(GateDecision).where(GateDecision.gate_id == gate_id)).scalars()
        assert sorted((d.party, d.door, d.proof) for d in rows) == [
            ("contractor", "cli", "token"),
            ("customer", "email", "mailbox"),
        ]
        events = audit_chain.events_for(session, CODE)
        proofs = sorted(json.loads(e.payload)["proof"] for e in events if e.kind == "gate.decision")
    assert proofs == ["mailbox", "token"]


def test_paper_records_a_customer_signature_with_its_scan(project: ProjectIn) -> None:
    """ENG-13: the arrival certificate signed and stamped on site, recorded by our PM with its scan."""
    plain = signoff_gate()
    assert "does not take papers" in assert_refused(paper(plain, CHEN, LI))
    gate_id = arrival_gate()
    assert "with its scan attached" in assert_refused(paper(gate_id, CHEN, LI, scan=None))
    assert "with its scan attached" in assert_refused(paper(gate_id, CHEN, LI, scan="not-a-hash"))
    assert "a paper records a customer's signature" in assert_refused(paper(gate_id, WANG, LI))
    result = decide(paper(gate_id, CHEN, LI))
    assert result.complete
    row = signature(gate_id)
    assert (row.door, row.proof, row.signer_email) == ("paper", "paper", CHEN.email)
    assert row.recorded_by == str(LI) and row.evidence_sha256 == SCAN


@pytest.mark.parametrize("who", ["customer", "staff"])
def test_proofs_are_kept_with_each_signature(project: ProjectIn, who: str) -> None:
    gate_id = open_(two_party_signoff("plan", "ENG-11", "Plan", add_document(doc_key="plan")))
    signer = CHEN if who == "customer" else WANG
    decide(proven(gate_id, "refuse", signer, comment="needs work"))
    assert signature(gate_id).proof == ("mailbox" if who == "customer" else "token")
