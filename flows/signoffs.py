"""The shapes of gate used by the engineering process: who decides and what they may say."""

from __future__ import annotations

from datetime import datetime

from models.gate_spec import Decision, GateKind, GateSpec, Party
from models.project_input import Role

CUSTOMER = Party(slot="customer", roles=[Role.CUSTOMER])
CONTRACTOR = Party(slot="contractor", roles=[Role.PM, Role.SUPERVISOR])


def customer_signoff(
    key: str, rule: str, title: str, document_id: str, note: str = "", paper: bool = False
) -> GateSpec:
    """A customer contact of the project approves or rejects one document version; with `paper`,
    staff may record the paper the customer signed and stamped on site instead (door paper)."""
    return GateSpec(
        accepts_paper=paper,
        key=key,
        kind=GateKind.CUSTOMER_SIGNOFF,
        rule=rule,
        title=title,
        parties=[CUSTOMER],
        decisions=[Decision.APPROVE, Decision.REJECT],
        document_id=document_id,
        description=note
        or "Approve to sign this version; reject (with a comment) to get a corrected version.",
    )


def two_party_signoff(key: str, rule: str, title: str, document_id: str, paper: bool = False) -> GateSpec:
    """Both parties sign (two different people); a refusal by either settles it at once."""
    return _both_sign(
        key,
        rule,
        title,
        document_id,
        paper,
        [CUSTOMER, CONTRACTOR],
        "Needs the customer's and our signature (supervisor or PM), by two different people.",
    )


def _both_sign(
    key: str, rule: str, title: str, document_id: str, paper: bool, parties: list[Party], description: str
) -> GateSpec:
    return GateSpec(
        accepts_paper=paper,
        key=key,
        kind=GateKind.TWO_PARTY,
        rule=rule,
        title=title,
        parties=parties,
        decisions=[Decision.SIGN, Decision.REFUSE],
        ends_at_once=[Decision.REFUSE],
        document_id=document_id,
        description=description,
    )


def readiness_check(key: str, rule: str, title: str, document_id: str | None = None) -> GateSpec:
    """The customer says whether the site is ready; not ready needs an agreed date."""
    return GateSpec(
        key=key,
        kind=GateKind.READINESS,
        rule=rule,
        title=title,
        parties=[CUSTOMER],
        decisions=[Decision.READY, Decision.NOT_READY],
        data_model="ReadinessIn",
        data_required_for=[Decision.NOT_READY],
        document_id=document_id,
        description="Answer *ready*, or *not-ready* with the agreed date of the next attempt.",
    )


def data_entry(
    key: str,
    rule: str,
    title: str,
    data_model: str,
    roles: list[Role],
    decisions: list[Decision] | None = None,
    data_for: list[Decision] | None = None,
    description: str = "",
    not_before: datetime | None = None,
) -> GateSpec:
    """Someone of ours submits typed data measured or agreed on site."""
    decisions = decisions or [Decision.SUBMIT]
    return GateSpec(
        key=key,
        kind=GateKind.DATA_ENTRY,
        rule=rule,
        title=title,
        parties=[Party(slot="entry", roles=roles)],
        decisions=decisions,
        data_model=data_model,
        data_required_for=data_for if data_for is not None else decisions,
        description=description,
        not_before=not_before,
    )


OUR_LEAD = Party(slot="contractor", roles=[Role.PM])
THIRD_PARTY_LEAD = Party(slot="third-party", roles=[Role.THIRD_PARTY])


def cooperation_signoff(key: str, rule: str, title: str, document_id: str, paper: bool = False) -> GateSpec:
    """COM-4: both leads sign the cooperation agreement — our PM and the third party's lead (its
    mailed link); a refusal by either settles it at once and a corrected version follows."""
    return _both_sign(
        key,
        rule,
        title,
        document_id,
        paper,
        [OUR_LEAD, THIRD_PARTY_LEAD],
        "Needs the signatures of both leads: our PM and the third party's lead (COM-4).",
    )


def site_access(key: str, visit: str) -> GateSpec:
    """COM-7: the site-access checklist of one on-site visit; the visit's work waits for it."""
    return data_entry(
        key,
        "COM-7",
        f"Site access checklist: {visit} / 进站检查",
        "SiteAccessVisitIn",
        [Role.SUPERVISOR, Role.ENGINEER],
        description="Before work on site starts, for every site: the duty staff agreed to entry (who), "
        "badges worn, and — when removable media is used on the customer's computers — the room "
        "supervisor agreed (who). Work on site starts only after this is recorded (COM-7).",
    )
