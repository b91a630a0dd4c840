"""Typed data that gates collect from people on site (ENG-4 … ENG-31).

Each model validates on its own; `check_against(project)` adds the checks that need the
project form (every site present, known contract items). The registry maps the name stored
on a gate row to its model, so every door (UI, CLI, email) validates the same way; every text
field is one of the kinds of `models.text_kinds` (issue #10).
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.form_schema import FORM_CONFIG
from models.incident_contract import Severity
from models.incident_input import AttributionAnswer
from models.project_input import ProjectIn, Role
from models.site_access import SiteVisitAccessIn
from models.text_kinds import Email, ItemCode, Label, Line, Name, Note, OptionalLabel, SiteCode, Text


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False, **FORM_CONFIG)

    def check_against(self, subject: Any) -> None:
        """Checks that need the subject's form (a project's, an upgrade plan's); raise
        ValueError with a message for the person."""

    def check_for(self, decision: str) -> None:
        """Checks that depend on the decision taken with this data."""


class Occupancy(enum.StrEnum):
    FREE = "free"
    OCCUPIED = "occupied"
    UNCERTAIN = "uncertain"


class CableRunIn(_Data):
    name: Name = Field(title="Cable run", description="e.g. 'power A to rack 3'")
    measured_length_m: float = Field(
        gt=0, title="Measured length (m)", description="Measured on site, in metres (ENG-5)"
    )


class TerminalIn(_Data):
    terminal: Label = Field(description="Terminal or port on the distribution frame")
    occupancy: Occupancy = Field(description="Free, occupied, or uncertain (then explain why)")
    explanation: Note = Field(default="", description="Required when occupancy is uncertain")

    @model_validator(mode="after")
    def _explained(self) -> TerminalIn:
        if self.occupancy is Occupancy.UNCERTAIN and not self.explanation:
            raise ValueError(f"terminal {self.terminal}: uncertain occupancy needs an explanation (ENG-4)")
        return self


class ContractDifferenceIn(_Data):
    """An item whose quantity on site differs from the contract (ENG-6)."""

    item_code: ItemCode = Field(title="Contract item", description="The contract configuration item")
    contract_quantity: int = Field(ge=0, title="Quantity in the contract")
    actual_quantity: int = Field(ge=0, title="Quantity needed on site")
    note: Note = ""


class NonComplianceIn(_Data):
    """Something on site that does not meet the requirements (ENG-7)."""

    item: Line
    requirement: Line
    finding: Text


class SiteSurveyIn(_Data):
    """What was found at one site."""

    site_id: SiteCode = Field(title="Site", description="One of the project's sites")
    surveyed_on_site: bool = Field(
        title="Surveyed on site", description="Surveys are done on site, never remotely (ENG-4)"
    )
    cable_runs: list[CableRunIn] = Field(min_length=1, description="Measured cable lengths (ENG-5)")
    terminals: list[TerminalIn] = Field(min_length=1, description="Terminal occupancy (ENG-4)")
    contract_differences: list[ContractDifferenceIn] = Field(
        default_factory=list, description="Items that differ from the contract (ENG-6)"
    )
    non_compliances: list[NonComplianceIn] = Field(
        default_factory=list,
        title="Not meeting requirements",
        description="Items that do not meet the requirements (ENG-7)",
    )

    @model_validator(mode="after")
    def _on_site(self) -> SiteSurveyIn:
        if not self.surveyed_on_site:
            raise ValueError(f"site {self.site_id}: the survey must be done on site (ENG-4)")
        return self


class SurveyDataIn(_Data):
    """ENG-4 … ENG-7: the survey report's content, one entry per site."""

    sites: list[SiteSurveyIn] = Field(min_length=1, description="One entry per site of the project")

    def check_against(self, project: ProjectIn) -> None:
        wanted = {s.site_id for s in project.sites}
        given = [s.site_id for s in self.sites]
        missing = wanted - set(given)
        if missing:
            raise ValueError(
                f"survey report incomplete (ENG-4): no data for site(s) {', '.join(sorted(missing))}"
            )
        unknown = set(given) - wanted
        if unknown or len(given) != len(set(given)):
            raise ValueError(f"survey data names unknown or repeated sites: {given}")
        codes = {i.item_code for i in project.contract_items}
        for site in self.sites:
            for diff in site.contract_differences:
                if diff.item_code not in codes:
                    raise ValueError(f"contract item {diff.item_code!r} is not in the contract")


class ReadinessIn(_Data):
    """ENG-1 / ENG-9: when the site is not ready, a planned start date is agreed."""

    agreed_date: date | None = Field(
        default=None, description="When not ready: the date agreed for the next attempt"
    )
    notes: Note = ""

    def check_for(self, decision: str) -> None:
        if decision == "not-ready" and self.agreed_date is None:
            raise ValueError(
                "not ready: give agreed_date, the planned date of the next attempt (ENG-1, ENG-9)"
            )


class MeetingIn(_Data):
    """ENG-2, ENG-11, ENG-26: a coordination meeting and what it fixed."""

    held_on: date
    attendees: list[Name] = Field(min_length=1)
    scope: Text = Field(description="Network scope / acceptance method agreed")
    division_of_work: Text = Field(description="分工界面: who does what")


class ProjectPlanIn(_Data):
    """ENG-11: installation period, schedule and support needed."""

    installation_start: date
    installation_end: date
    support_needed: Note = ""

    @model_validator(mode="after")
    def _ordered(self) -> ProjectPlanIn:
        if self.installation_end < self.installation_start:
            raise ValueError("installation_end is before installation_start")
        return self


class ShortItemIn(_Data):
    """A contract item missing or damaged."""

    item_code: ItemCode = Field(title="Contract item", description="The contract configuration item")
    quantity: int = Field(gt=0)
    note: Note = ""


class InspectionIn(_Data):
    """ENG-12 … ENG-14: box count, box-by-box check, shortages."""

    expected_boxes: int = Field(gt=0, title="Boxes expected")
    counted_boxes: int = Field(ge=0, title="Boxes counted")
    box1_opened: bool = Field(
        title="Box 1 opened", description="Master packing list taken from box No. 1 (ENG-12)"
    )
    box_types_verified: bool = Field(
        default=False,
        title="Box count and types verified",
        description="Needed when box 1 could not be opened (ENG-12)",
    )
    missing_items: list[ShortItemIn] = Field(default_factory=list)
    damaged_items: list[ShortItemIn] = Field(default_factory=list)

    @model_validator(mode="after")
    def _box1(self) -> InspectionIn:
        if not self.box1_opened and not self.box_types_verified:
            raise ValueError("box 1 was not opened: verify the total box count and box types first (ENG-12)")
        return self

    @property
    def discrepancies(self) -> bool:
        return bool(self.missing_items or self.damaged_items) or (self.counted_boxes != self.expected_boxes)


class StopCause(enum.StrEnum):
    CUSTOMER = "customer"
    CONTRACTOR = "contractor"
    EXTERNAL = "external"


class WorkStopIn(_Data):
    """ENG-16: a stop of work and who caused it."""

    stopped_on: date
    caused_by: StopCause = Field(description="Who caused the stop: customer, contractor or external")
    reason: Text


class WorkResumeIn(_Data):
    resumed_on: date
    notes: Note = ""


class ConnectionCheckIn(_Data):
    """ENG-17: before power-on."""

    no_short_circuits: bool = Field(title="No short circuits")
    no_open_circuits: bool = Field(title="No open circuits")
    anti_static_precautions: bool = Field(title="Anti-static precautions in place")
    notes: Note = ""

    @model_validator(mode="after")
    def _safe(self) -> ConnectionCheckIn:
        if not (self.no_short_circuits and self.no_open_circuits and self.anti_static_precautions):
            raise ValueError(
                "power-on is not allowed until short/open circuits are cleared and anti-static "
                "precautions are in place (ENG-17)"
            )
        return self


class ConfigParameterIn(_Data):
    name: Label
    value: Line


class PreparationNeedIn(_Data):
    need: Line
    due: date
    responsible: Name
    supporting: Note = ""
    impact: Note = ""


class CommissioningPlanIn(_Data):
    """ENG-18 … ENG-20: data configuration, preparation needs, confirmed software release."""

    software_release: Label = Field(description="Confirmed with the PM (ENG-20)")
    parameters: list[ConfigParameterIn] = Field(
        min_length=1, title="Configuration parameters", description="Data configuration (ENG-18)"
    )
    preparation_needs: list[PreparationNeedIn] = Field(default_factory=list)


class FaultyPartIn(_Data):
    part: Label
    serial: OptionalLabel = ""
    symptom: Note = ""


class SiteProblemIn(_Data):
    """ENG-22: a problem met on site. One the engineer could not solve there goes to remote
    support; a suspected product-quality problem goes to the office's product manager and the PM."""

    description: Text
    solved_on_site: bool = Field(title="Solved on site", description="Untick: it goes to remote support")
    solution: Note = Field(default="", description="How it was solved on site (needed when solved)")
    suspected_product_quality: bool = Field(
        default=False,
        title="Suspected product-quality problem",
        description="Then the office's product manager and the PM are told (ENG-22)",
    )

    @model_validator(mode="after")
    def _solved_how(self) -> SiteProblemIn:
        if self.solved_on_site and not self.solution:
            raise ValueError(
                "ENG-22: say how the problem was solved on site (solution), or untick solved_on_site "
                "so that it is escalated to remote support"
            )
        return self


class MilestoneIn(_Data):
    """ENG-21 milestone daily report, ENG-22 problems and their escalation, ENG-23 faulty parts found."""

    reached_on: date
    summary: Text
    faulty_parts: list[FaultyPartIn] = Field(default_factory=list)
    problems: list[SiteProblemIn] = Field(
        default_factory=list, description="Problems met on site (ENG-22): unsolved ones escalate"
    )

    def check_against(self, project: ProjectIn) -> None:
        """ENG-22: an escalation that cannot reach anyone is refused, not silently dropped."""
        if any(not p.solved_on_site for p in self.problems) and not project.contacts_with(
            Role.REMOTE_SUPPORT
        ):
            raise ValueError(
                "ENG-22: a problem not solved on site is escalated to remote support, but project "
                f"{project.code} lists no contact with role remote-support; nothing was recorded — "
                "ask the office for the remote-support contact and add it to the project"
            )
        if any(p.suspected_product_quality for p in self.problems) and not project.contacts_with(
            Role.PRODUCT_MANAGER
        ):
            raise ValueError(
                "ENG-22: a suspected product-quality problem goes to the office's product manager and "
                f"the PM, but project {project.code} lists no contact with role product-manager; nothing "
                "was recorded — add the office's product manager to the project"
            )


class SiteAccessVisitIn(_Data):
    """COM-7: the site-access checklist of one on-site visit, one entry per site visited.

    Every site of the project is visited in each phase, so every site needs its checklist."""

    sites: list[SiteVisitAccessIn] = Field(min_length=1, description="One checklist per site")

    def check_against(self, project: ProjectIn) -> None:
        wanted = {s.site_id for s in project.sites}
        given = [s.site_id for s in self.sites]
        missing = wanted - set(given)
        if missing:
            raise ValueError(
                "COM-7: no site-access checklist for site(s) "
                f"{', '.join(sorted(missing))}: work there cannot start without one"
            )
        if set(given) - wanted or len(given) != len(set(given)):
            raise ValueError(f"site-access checklists name unknown or repeated sites: {given}")


class CooperationParty(enum.StrEnum):
    """COM-4: who carries a responsibility in work shared with a third party."""

    CONTRACTOR = "contractor"
    THIRD_PARTY = "third-party"
    CUSTOMER = "customer"


class ResponsibilityIn(_Data):
    party: CooperationParty
    duty: Line = Field(description="What this party is responsible for")


class CooperationStepIn(_Data):
    due: date
    activity: Line
    owner: Name


class CooperationPlanIn(_Data):
    """COM-4: the cooperation agreement's content — who is responsible for what, and the plan."""

    responsibilities: list[ResponsibilityIn] = Field(min_length=1)
    plan: list[CooperationStepIn] = Field(min_length=1, description="Dated steps of the shared work")

    @model_validator(mode="after")
    def _both_sides(self) -> CooperationPlanIn:
        parties = {r.party for r in self.responsibilities}
        lacking = [
            p.value for p in (CooperationParty.CONTRACTOR, CooperationParty.THIRD_PARTY) if p not in parties
        ]
        if lacking:
            raise ValueError(
                "COM-4: the agreement states the responsibilities of both parties; none given for "
                + " and ".join(lacking)
            )
        return self


class TrainingIn(_Data):
    """ENG-24."""

    held_on: date
    trainees: list[Name] = Field(min_length=1)
    topics: list[Line] = Field(min_length=1)
    hours: float = Field(gt=0, title="Hours of training")


class TestItemIn(_Data):
    item: Line
    expected: Note = ""
    result: Text
    passed: bool = Field(description="Tick when the item passed")


class LeftoverIssueIn(_Data):
    description: Text
    resolution_date: date
    owner: Name


class TestRecordIn(_Data):
    """ENG-25 self-test / ENG-27 acceptance test, ENG-28 leftover issues."""

    tested_on: date
    items: list[TestItemIn] = Field(min_length=1)
    leftover_issues: list[LeftoverIssueIn] = Field(default_factory=list)

    @property
    def all_passed(self) -> bool:
        """ENG-25: the self-test repeats until every item passes; only then is acceptance applied for."""
        return all(item.passed for item in self.items)


class CutoverIn(_Data):
    """ENG-30: when the cutover happened (the observation period starts then)."""

    cutover_at: datetime = Field(
        title="Cutover at", description="Date and time with its zone, e.g. 2026-11-20T02:00:00+08:00"
    )
    notes: Note = ""

    @model_validator(mode="after")
    def _not_future(self) -> CutoverIn:
        if self.cutover_at.tzinfo is None:
            raise ValueError("cutover_at needs a time zone, e.g. 2026-11-20T02:00:00+08:00")
        if self.cutover_at > datetime.now(UTC):
            raise ValueError("cutover_at is in the future: record the cutover once it has happened")
        return self


class ObservationIn(_Data):
    running_normally: bool = Field(description="The equipment ran normally through the observation")
    notes: Note = ""

    @model_validator(mode="after")
    def _normal(self) -> ObservationIn:
        if not self.running_normally:
            raise ValueError("the crew leaves only when the equipment runs normally (ENG-30)")
        return self


class HandoverIn(_Data):
    """ENG-29: documents, equipment and spares handed over; maintenance contact agreed."""

    documents_handed_over: bool
    spares_handed_over: bool
    maintenance_contact: Line


class ReplacementIn(_Data):
    """UPG-2: an operator the guide found unqualified, and who takes their place."""

    replaces: Name = Field(description="Name of the operator being replaced")
    name: Name
    email: Email
    qualifications: list[Label] = Field(default_factory=list)


class GoNoGoIn(_Data):
    """UPG-1, UPG-3: what people confirm at the go/no-go gate beside the automatic checks."""

    model_config = ConfigDict(title="Go / no-go")

    tools_ready: bool = Field(title="Tools and vehicles ready", description="UPG-1")
    replacements: list[ReplacementIn] = Field(
        default_factory=list, description="Qualified operators replacing unqualified ones (UPG-2)"
    )

    def check_for(self, decision: str) -> None:
        if decision == "go" and not self.tools_ready:
            raise ValueError("go needs tools and vehicles ready (UPG-1); answer no-go until they are")


class CustomerSeverityIn(_Data):
    """INC-3: where no level clearly applies, the customer's level, which is final."""

    severity: Severity = Field(title="Severity", description="critical, major or minor (INC-1)")


class OutageAttributionIn(_Data):
    """INC-7: which attribution of the disputed outage holds — the customer's answer is final."""

    holds: AttributionAnswer = Field(
        title="Attribution / 责任归属",
        description="recorded: the cause segments as we recorded them; product, customer or external: "
        "the whole outage is attributed to that cause",
    )


class IncidentClosureIn(_Data):
    """INC-8: description, cause, solution, process and summary — all five, each filled in."""

    description: Text = Field(title="Description", description="What the fault was")
    cause: Text = Field(title="Cause", description="Why it happened")
    solution: Text = Field(title="Solution", description="What fixed it")
    process: Text = Field(title="Process", description="How it was handled, step by step")
    summary: Text = Field(title="Summary", description="For the customer: mailed to them on closing")


GATE_DATA_MODELS: dict[str, type[_Data]] = {
    cls.__name__: cls
    for cls in (
        SurveyDataIn,
        ReadinessIn,
        MeetingIn,
        ProjectPlanIn,
        InspectionIn,
        WorkStopIn,
        WorkResumeIn,
        ConnectionCheckIn,
        CommissioningPlanIn,
        MilestoneIn,
        SiteAccessVisitIn,
        CooperationPlanIn,
        TrainingIn,
        TestRecordIn,
        CutoverIn,
        ObservationIn,
        HandoverIn,
        GoNoGoIn,
        CustomerSeverityIn,
        OutageAttributionIn,
        IncidentClosureIn,
    )
}
