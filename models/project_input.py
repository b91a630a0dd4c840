"""The engineering-project form: one typed model for the Prefect UI, YAML/JSON files and the CLI.

Validation here is what refuses a bad form before any work starts (issue: no sites,
unknown role, dates out of order, duplicate sites or contacts). Every text field is one of
the kinds of `models.text_kinds` (issue #10: checked before it reaches Prefect or the
database; the deployment's parameter schema carries the same limits, so Prefect refuses too).
"""

from __future__ import annotations

import enum
from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from models.form_schema import field_title, model_title
from models.text_kinds import EMAIL_RE, Email, ItemCode, Label, Line, Name, Phone, ProjectCode, SiteCode

__all__ = ["EMAIL_RE"]  # the identity module checks staff emails with the same pattern


class ProjectSize(enum.StrEnum):
    """ENG-2: medium and large projects hold a survey coordination meeting."""

    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"


class Role(enum.StrEnum):
    CUSTOMER = "customer"
    PM = "pm"
    SUPERVISOR = "supervisor"
    ENGINEER = "engineer"
    OFFICE = "office"
    UPGRADE_GUIDE = "upgrade-guide"  # UPG-2, UPG-7: assesses operators, handles surprises
    OPERATOR = "operator"  # UPG-4: runs the upgrade steps
    REMOTE_SUPPORT = "remote-support"  # ENG-22: takes the problems not solved on site
    PRODUCT_MANAGER = "product-manager"  # ENG-22: the office's, told of suspected quality problems
    THIRD_PARTY = "third-party"  # COM-4: the third party's lead, co-signs the cooperation agreement
    CONSTRUCTION = "construction"  # ENG-8: the customer's construction department (建设部), gets copies


class Side(enum.StrEnum):
    """The two parties of a two-party signature (ENG-10, ENG-11, ENG-12, ENG-16)."""

    CUSTOMER = "customer"
    CONTRACTOR = "contractor"


ROLE_SIDE: dict[Role, Side | None] = {
    Role.CUSTOMER: Side.CUSTOMER,
    Role.PM: Side.CONTRACTOR,
    Role.SUPERVISOR: Side.CONTRACTOR,
    Role.ENGINEER: Side.CONTRACTOR,
    Role.OFFICE: None,
    Role.UPGRADE_GUIDE: Side.CONTRACTOR,
    Role.OPERATOR: Side.CONTRACTOR,
    Role.REMOTE_SUPPORT: None,
    Role.PRODUCT_MANAGER: None,
    Role.THIRD_PARTY: None,
    Role.CONSTRUCTION: Side.CUSTOMER,  # the carrier's own people: mail to them is mail to a customer
}


def known_zone(value: str) -> str:
    """An IANA time zone name, refused with a hint when the machine's zone database lacks it."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Asia/Shanghai)") from exc
    return value


class Strict(BaseModel):
    """Base of the forms a PM fills in (the Prefect UI's *Custom run*, YAML files): field titles in
    plain words ("Planned start", not "Planned Start"; "Size", not the enum's "ProjectSize")."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        allow_inf_nan=False,
        field_title_generator=field_title,
        model_title_generator=model_title,
    )


class SiteIn(Strict):
    site_id: SiteCode = Field(description="Site code")
    name: Name
    address: Line = Field(description="Street address of the site")


class ContractItemIn(Strict):
    """One line of the contract configuration (合同配置), checked in the survey (ENG-1, ENG-6)."""

    item_code: ItemCode
    description: Line
    quantity: int = Field(gt=0)
    site_id: SiteCode | None = Field(
        default=None, title="Site", description="Site code this item is for, if one (from the sites above)"
    )


class ContactIn(Strict):
    name: Name
    email: Email
    role: Role
    phone: Phone = ""

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return value.lower()


class SharedPhase(enum.StrEnum):
    """COM-4: the phase in which the work shared with the third party starts."""

    SURVEY = "survey"
    INSTALLATION = "installation"
    COMMISSIONING = "commissioning"


class ThirdPartyIn(Strict):
    """COM-4: a third party works with us on this project (its lead is a contact of role third-party)."""

    company: Name
    shared_work: Line = Field(description="What is done together, e.g. 'power supply and cabling'")
    starts_in: SharedPhase = Field(
        default=SharedPhase.INSTALLATION,
        title="Shared work starts in",
        description="The cooperation agreement is signed before this phase's work starts",
    )


class ProjectIn(Strict):
    """Everything a PM states when starting an engineering project (docs/process.md §1)."""

    code: ProjectCode = Field(description="Project code: capitals, digits and dashes, e.g. GD-2026-017")
    customer: Name
    size: ProjectSize = Field(
        default=ProjectSize.SMALL,
        title="Project size",
        description="Medium and large projects hold a survey coordination meeting (ENG-2)",
    )
    sites: list[SiteIn] = Field(min_length=1)
    contract_items: list[ContractItemIn] = Field(min_length=1)
    contacts: list[ContactIn] = Field(min_length=2)
    observation_days: int = Field(
        default=2, ge=1, le=3, description="Days the crew observes after cutover (ENG-30)"
    )
    timezone: Label = Field(default="Asia/Shanghai", description="IANA time zone of the sites")
    planned_start: date
    planned_end: date
    third_party: ThirdPartyIn | None = Field(
        default=None,
        title="Third party",
        description="Only when a third party shares the work: a cooperation agreement comes first (COM-4)",
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return known_zone(value)

    @model_validator(mode="after")
    def _consistent(self) -> ProjectIn:
        if self.planned_end < self.planned_start:
            raise ValueError(f"planned_end {self.planned_end} is before planned_start {self.planned_start}")
        site_ids = [s.site_id for s in self.sites]
        dup_sites = {s for s in site_ids if site_ids.count(s) > 1}
        if dup_sites:
            raise ValueError(f"duplicate site ids: {', '.join(sorted(dup_sites))}")
        for item in self.contract_items:
            if item.site_id is not None and item.site_id not in site_ids:
                raise ValueError(f"contract item {item.item_code} names unknown site {item.site_id}")
        emails = [c.email for c in self.contacts]
        dup_emails = {e for e in emails if emails.count(e) > 1}
        if dup_emails:
            raise ValueError(f"a contact may have one role only; repeated: {', '.join(dup_emails)}")
        roles = {c.role for c in self.contacts}
        for needed in (Role.CUSTOMER, Role.PM):
            if needed not in roles:
                raise ValueError(f"contacts need at least one {needed.value!r}")
        if self.third_party is not None and Role.THIRD_PARTY not in roles:  # COM-4
            raise ValueError(
                f"third party {self.third_party.company}: add its lead to the contacts with role "
                "'third-party' (they co-sign the cooperation agreement, COM-4)"
            )
        if self.third_party is None and Role.THIRD_PARTY in roles:
            raise ValueError(
                "a contact has role 'third-party' but the form names no third party: fill in "
                "third_party (company and shared work, COM-4) or change the contact's role"
            )
        return self

    def contact(self, email: str) -> ContactIn | None:
        wanted = email.strip().lower()
        return next((c for c in self.contacts if c.email == wanted), None)

    def contacts_with(self, *roles: Role) -> list[ContactIn]:
        return [c for c in self.contacts if c.role in roles]
