"""Is the signer the person the signature names? The check every door's proof must pass.

A door proves who is acting (issue #9): the workspace by a signed-in session, the CLI by a
personal token, an email link by the mailbox it was sent to, a paper by its scan recorded by a
signed-in staff member. The door hands :func:`decide` its proof and the evidence (the staff
account, the link); this module checks them against the gate and the contact the signature
names, under the gate's lock, so no door can sign for someone it has not proven.

Customer slots are filled only by the customer: through their own link, or — where the gate
accepts it (ENG-13's arrival certificate) — by the paper they signed and stamped on site.
Staff accounts sign only the contractor's side.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from models.approval_link import ApprovalLink
from models.gate import Gate
from models.gate_spec import DOOR_PROOF, Door, Proof
from models.project_input import ROLE_SIDE, ContactIn, Side
from models.staff import StaffUser
from siteflow.links import gate_page

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class UnprovenSignature(Exception):
    """The door could not prove that the signer is the person named; nothing is signed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Evidence:
    """What a door proved, as it hands it to :func:`decide`.

    `account` is the staff account id (session, token, and the recorder of a paper); `link` the
    approval link id (mailbox); `scan_sha256` the SHA-256 of a paper's scan.
    """

    proof: Proof
    account: str | None = None
    link: str | None = None
    scan_sha256: str | None = None


@dataclass(frozen=True)
class Proven:
    """The check's answer: the proof to keep with the signature, and for a paper who recorded it."""

    proof: Proof
    recorded_by: str | None = None
    scan_sha256: str | None = None


def prefect_ui_refusal(gate: Gate) -> str:
    return (
        f"the Prefect UI cannot prove who pressed Resume, so gate {gate.key} takes no signature there; "
        f"decide it signed in at {gate_page(gate.id)}, or with `siteflow gates decide {gate.id}` after "
        "`siteflow login`; nothing was signed"
    )


def check(
    session: Session, gate: Gate, door: Door, evidence: Evidence, email: str, contact: ContactIn
) -> Proven:
    """Raise :class:`UnprovenSignature` unless `evidence` proves that `email` (a listed contact of
    the gate's subject) is the one signing through `door`."""
    if door is Door.PREFECT_UI:
        raise UnprovenSignature(prefect_ui_refusal(gate))
    wanted = DOOR_PROOF.get(door)
    if wanted is None or evidence.proof is not wanted:
        raise UnprovenSignature(
            f"door {door.value} cannot prove who is signing gate {gate.key}; decide it signed in at "
            f"{gate_page(gate.id)}, with `siteflow gates decide` after `siteflow login`, or through the "
            "link mailed to you; nothing was signed"
        )
    side = ROLE_SIDE.get(contact.role)
    if evidence.proof is Proof.MAILBOX:
        _check_link(session, gate, evidence, email)
        return Proven(Proof.MAILBOX)
    if evidence.proof is Proof.PAPER:
        return _check_paper(session, gate, evidence, contact)
    account = _account(session, evidence)
    if account.email != email:
        raise UnprovenSignature(
            f"you are signed in as {account.name} <{account.email}> and cannot sign as {email}; "
            "each person signs for themselves; nothing was signed"
        )
    if side is Side.CUSTOMER:
        raise UnprovenSignature(_customer_only(gate, contact))
    return Proven(evidence.proof)


def _account(session: Session, evidence: Evidence) -> StaffUser:
    user = session.get(StaffUser, evidence.account) if evidence.account else None
    if user is None:
        raise UnprovenSignature("no staff account stands behind this request; sign in and try again")
    if user.disabled_at is not None:
        raise UnprovenSignature(f"the staff account of {user.email} is disabled; nothing was signed")
    return user


def _check_link(session: Session, gate: Gate, evidence: Evidence, email: str) -> None:
    link = session.get(ApprovalLink, evidence.link) if evidence.link else None
    if link is None or link.gate_id != gate.id:
        raise UnprovenSignature(f"this link does not belong to gate {gate.key}; nothing was signed")
    if link.recipient_email.lower() != email:
        raise UnprovenSignature(
            f"the link was mailed to {link.recipient_email}; it cannot sign as {email}; nothing was signed"
        )
    if link.used_at is not None:
        raise UnprovenSignature("this link was used already; each link signs once")
    link.used_at = datetime.now(UTC)  # with the signature, in its transaction: one link, one signature


def _check_paper(session: Session, gate: Gate, evidence: Evidence, contact: ContactIn) -> Proven:
    if not gate.accepts_paper:
        raise UnprovenSignature(
            f"gate {gate.key} does not take papers; its signers decide through their own link "
            "or the workspace"
        )
    if ROLE_SIDE.get(contact.role) is not Side.CUSTOMER:
        raise UnprovenSignature(
            f"a paper records a customer's signature; {contact.name} <{contact.email}> is our own staff "
            "and signs signed in"
        )
    if not evidence.scan_sha256 or not SHA256_RE.match(evidence.scan_sha256):
        raise UnprovenSignature("a paper is recorded with its scan attached; attach the scan and try again")
    recorder = _account(session, evidence)
    if recorder.email == contact.email:
        raise UnprovenSignature("a paper is recorded by a staff member, not by its signer")
    return Proven(
        Proof.PAPER, recorded_by=f"{recorder.name} <{recorder.email}>", scan_sha256=evidence.scan_sha256
    )


def _customer_only(gate: Gate, contact: ContactIn) -> str:
    paper = " or by recording the paper they signed, with its scan (door paper)" if gate.accepts_paper else ""
    return (
        f"{contact.name} <{contact.email}> signs the customer's side of gate {gate.key}; a customer slot "
        f"is filled only by the customer through their own mailed link{paper}; nothing was signed"
    )
