"""What a flow asks for when it opens a gate: who decides, what they may say, what data comes."""

from __future__ import annotations

import enum
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from models.project_input import Role


class GateKind(enum.StrEnum):
    CUSTOMER_SIGNOFF = "customer-signoff"
    READINESS = "readiness-check"
    TWO_PARTY = "two-party-signoff"
    DATA_ENTRY = "data-entry"
    PM_DECISION = "pm-decision"
    GO_NO_GO = "go-no-go"  # UPG-3
    ROLLBACK_DECISION = "rollback-decision"  # UPG-8 … UPG-10
    INCIDENT_SEVERITY = "incident-severity"  # INC-3: the customer's level where none clearly applies
    INCIDENT_CLOSURE = "incident-closure"  # INC-8: the owner closes with the five parts
    OUTAGE_ATTRIBUTION = "outage-attribution"  # INC-7: the customer decides a disputed attribution


class Decision(enum.StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    READY = "ready"
    NOT_READY = "not-ready"
    SIGN = "sign"
    REFUSE = "refuse"
    SUBMIT = "submit"
    COMPLETE = "installation-complete"
    STOP_WORK = "stop-work"
    RESUME_WORK = "resume-work"
    GO = "go"
    NO_GO = "no-go"
    COMMIT = "commit"
    ROLLBACK = "rollback"
    CLOSE = "close"  # INC-8


class Party(BaseModel):
    """A slot that one person fills; two slots make a two-party gate (different people)."""

    model_config = ConfigDict(frozen=True)

    slot: str
    roles: list[Role]


class GateSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    kind: GateKind
    rule: str
    title: str
    description: str = ""
    parties: list[Party] = Field(min_length=1)
    decisions: list[Decision] = Field(min_length=1)
    data_model: str | None = None
    data_required_for: list[Decision] = Field(default_factory=list)
    ends_at_once: list[Decision] = Field(
        default_factory=list,
        description="Decisions that settle a multi-party gate without waiting for the others",
    )
    document_id: str | None = None
    not_before: datetime | None = None
    deadline: datetime | None = None
    default_decision: Decision | None = Field(
        default=None, description="Taken by system:deadline when nobody decided by the deadline"
    )
    accepts_paper: bool = Field(
        default=False,
        description="A customer slot may be filled by staff recording the paper the customer signed "
        "and stamped on site, with its scan (door paper; e.g. ENG-13's arrival certificate)",
    )


class Door(enum.StrEnum):
    """How a decision reached us; part of the audit trail."""

    CLI = "cli"  # `siteflow gates decide` with the user's personal token, through the web API
    WEB = "web"  # the staff workspace, signed in
    PREFECT_UI = "prefect-ui"  # cannot prove who pressed Resume: every answer is refused
    EMAIL = "email"  # the gate's own mailed link (mailbox possession)
    PAPER = "paper"  # staff recording a paper the named person signed, with its scan
    SYSTEM = "system"  # the deadline's default
    DEMO = "demo"  # before issue #9; only in earlier records


class Proof(enum.StrEnum):
    """What proved that the signer is the person the signature names (issue #9).

    Every new signature carries one; signatures recorded before proofs existed carry
    ``unverified`` and are shown as "identity not verified".
    """

    SESSION = "session"  # a signed-in workspace session of the staff account with that email
    TOKEN = "token"  # a personal API token of that staff account
    MAILBOX = "mailbox"  # the single-use link mailed to that address for this gate
    PAPER = "paper"  # a scan of the paper the person signed, recorded by a signed-in staff member
    SYSTEM = "system"  # the system itself (deadline defaults)
    UNVERIFIED = "unverified"  # only earlier records: the signer was typed, not proven


DOOR_PROOF: dict[Door, Proof] = {
    Door.CLI: Proof.TOKEN,
    Door.WEB: Proof.SESSION,
    Door.EMAIL: Proof.MAILBOX,
    Door.PAPER: Proof.PAPER,
    Door.SYSTEM: Proof.SYSTEM,
}
"""The one proof each door can give; the Prefect UI and the demo door give none."""
