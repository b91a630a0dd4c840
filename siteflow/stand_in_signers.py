"""Signers for the demos, the benchmarks and the tests: the evidence a real door would give.

The demos answer every gate of a sample project on one machine. They sign as the people the
form lists, each through the door that person would use: a contractor contact through their
staff account (door `cli`, proof `token`; the account is made as `siteflow users add` makes it,
on the host, without a password), a customer through the link the gate mailed them (door
`email`, proof `mailbox`). The decision path checks this evidence exactly as it checks the
web's and the CLI's; only the HTTP hop is left out.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from models.approval_link import ApprovalLink
from models.gate import Gate
from models.gate_spec import Door, Proof
from models.project_input import ROLE_SIDE, Role, Side
from models.roster import roster_of
from models.staff import StaffUser
from siteflow.db import read_scope, session_scope
from siteflow.decisions import DecisionRequest, Signer
from siteflow.identity.roles import StaffRole
from siteflow.signature_proof import Evidence

STAFF_ROLE = {
    Role.PM: StaffRole.PM,
    Role.SUPERVISOR: StaffRole.SUPERVISOR,
    Role.ENGINEER: StaffRole.ENGINEER,
    Role.OFFICE: StaffRole.OFFICE,
    Role.UPGRADE_GUIDE: StaffRole.UPGRADE_GUIDE,
    Role.OPERATOR: StaffRole.OPERATOR,
}


def staff_account(name: str, email: str, role: Role = Role.PM) -> str:
    """The id of the staff account with this email, made (host-admin style) if there is none."""
    email = email.strip().lower()
    with read_scope() as session:  # the usual case, without queueing behind the writers
        found = session.execute(select(StaffUser.id).where(StaffUser.email == email)).scalar_one_or_none()
    if found is not None:
        return found
    with session_scope() as session:
        found = session.execute(select(StaffUser.id).where(StaffUser.email == email)).scalar_one_or_none()
        if found is not None:
            return found
        user = StaffUser(name=name, email=email, roles=[STAFF_ROLE.get(role, StaffRole.ENGINEER).value])
        session.add(user)
        session.flush()
        return user.id


def link_id(gate_id: str, email: str) -> str | None:
    """The newest approval link the gate mailed to this address, if any."""
    with read_scope() as session:
        return session.execute(
            select(ApprovalLink.id)
            .where(ApprovalLink.gate_id == gate_id, ApprovalLink.recipient_email == email.strip().lower())
            .order_by(ApprovalLink.created_at.desc())
            .limit(1)
        ).scalar_one_or_none()


def side_of(gate_id: str, email: str) -> tuple[Side | None, Role | None]:
    with read_scope() as session:
        gate = session.get(Gate, gate_id)
        form = roster_of(session, gate.subject) if gate is not None else None
        contact = form.contact(email.strip().lower()) if form is not None else None
        return (ROLE_SIDE.get(contact.role), contact.role) if contact is not None else (None, None)


def as_staff(gate_id: str, decision: str, signer: Signer, **kw: Any) -> DecisionRequest:
    """The CLI's request after its token proved `signer`'s staff account."""
    _, role = side_of(gate_id, signer.email)
    account = staff_account(signer.name, signer.email, role or Role.PM)
    return DecisionRequest(
        gate_id=gate_id,
        decision=decision,
        signer=signer,
        door=Door.CLI,
        evidence=Evidence(Proof.TOKEN, account=account),
        **kw,
    )


def by_link(gate_id: str, decision: str, signer: Signer, **kw: Any) -> DecisionRequest:
    """The email page's request after the link mailed to `signer` was opened."""
    return DecisionRequest(
        gate_id=gate_id,
        decision=decision,
        signer=signer,
        door=Door.EMAIL,
        evidence=Evidence(Proof.MAILBOX, link=link_id(gate_id, signer.email)),
        **kw,
    )


def proven(gate_id: str, decision: str, signer: Signer, **kw: Any) -> DecisionRequest:
    """`signer`'s request through the door they would use: customers and a third party's
    lead (COM-4) by link, staff by token."""
    side, role = side_of(gate_id, signer.email)
    by_mail = side is Side.CUSTOMER or role is Role.THIRD_PARTY  # no staff account outside our side
    return (by_link if by_mail else as_staff)(gate_id, decision, signer, **kw)
