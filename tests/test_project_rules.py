"""The engineering rules that live in typed data and pure functions, each checked without a stack.

The flow (flows/engineering_project.py) only sequences these: what a gate refuses, what a
document says and which notices go out are decided here, so each rule is checked in
milliseconds. The whole project on real parts is tests/test_engineering_e2e.py.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from models import paperwork as paper
from models.escalation import escalations
from models.gate_data import (
    CommissioningPlanIn,
    ConnectionCheckIn,
    CooperationPlanIn,
    InspectionIn,
    LeftoverIssueIn,
    MeetingIn,
    MilestoneIn,
    SiteAccessVisitIn,
    SiteProblemIn,
    SurveyDataIn,
    TrainingIn,
)
from models.gate_data import TestRecordIn as RecordIn
from models.memo import overdue
from models.project_input import ProjectIn, Role

ROOT = Path(__file__).resolve().parent.parent


def form(**changes: Any) -> ProjectIn:
    raw = yaml.safe_load((ROOT / "examples" / "project.yaml").read_text(encoding="utf-8"))
    return ProjectIn.model_validate(raw | changes)


def headings(body: Any) -> list[str]:
    return [s.heading_en for s in body.sections]


def site(site_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "site_id": site_id,
        "surveyed_on_site": True,
        "cable_runs": [{"name": "DC power A", "measured_length_m": 18.5}],
        "terminals": [{"terminal": "ODF-1/01", "occupancy": "free"}],
    } | extra


def survey(**first: Any) -> SurveyDataIn:
    return SurveyDataIn.model_validate({"sites": [site("GZ-TH-01", **first), site("GZ-PY-02")]})


def test_eng3_the_survey_report_has_its_three_parts() -> None:
    """ENG-3: the survey report template in three parts — shipping data, design information,
    commissioning data."""
    parts = headings(paper.survey_report(form(), survey(), 1))[:3]
    assert [p.split(" — ")[0] for p in parts] == ["Part 1", "Part 2", "Part 3"]
    assert (
        "Shipping data" in parts[0] and "Design information" in parts[1] and "Commissioning data" in parts[2]
    )


def test_eng7_every_item_not_meeting_requirements_gets_a_survey_memo() -> None:
    """ENG-7: one survey memo per non-compliance, per site; none when everything complies."""
    gaps = [
        {"item": "grounding", "requirement": "≤ 5 Ω", "finding": "7 Ω measured"},
        {"item": "air conditioning", "requirement": "≤ 28 °C", "finding": "31 °C"},
    ]
    memos = paper.survey_memos(form(), survey(non_compliances=gaps))
    assert [m.key for m in memos] == ["survey-memo-gz-th-01-1", "survey-memo-gz-th-01-2"]
    assert memos[0].description == "grounding: 7 Ω measured" and memos[0].body.kind == "survey-memo"
    assert paper.survey_memos(form(), survey()) == []


def test_eng12_box1_or_the_box_count_and_types_first() -> None:
    """ENG-12: the master packing list comes from box 1; if it cannot be opened, the total box
    count and the box types are verified first. The report is signed by both parties."""
    with pytest.raises(ValidationError, match="ENG-12"):
        InspectionIn.model_validate({"expected_boxes": 12, "counted_boxes": 12, "box1_opened": False})
    verified = InspectionIn.model_validate(
        {"expected_boxes": 12, "counted_boxes": 12, "box1_opened": False, "box_types_verified": True}
    )
    assert len(paper.inspection_report(form(), verified).signatures) == 2


def test_eng14_discrepancies_trigger_a_reshipment_request() -> None:
    """ENG-14: missing or damaged items and a wrong box count are all on the re-shipment request;
    an inspection without discrepancies makes none."""
    found = InspectionIn.model_validate(
        {
            "expected_boxes": 12,
            "counted_boxes": 11,
            "box1_opened": True,
            "missing_items": [{"item_code": "OSN-BOARD-TN54", "quantity": 1}],
            "damaged_items": [{"item_code": "DC-PDU-63A", "quantity": 1, "note": "bent rail"}],
        }
    )
    request = paper.inspection_reshipment(form(), found)
    assert request is not None and request.kind == "reshipment-request"
    assert request.sections[0].table is not None
    assert [r[0] for r in request.sections[0].table.rows] == ["OSN-BOARD-TN54", "DC-PDU-63A", "boxes"]
    clean = InspectionIn.model_validate({"expected_boxes": 12, "counted_boxes": 12, "box1_opened": True})
    assert paper.inspection_reshipment(form(), clean) is None


def test_eng17_no_power_on_before_the_connection_check() -> None:
    """ENG-17: short and open circuits ruled out and anti-static precautions in place."""
    ok = {"no_short_circuits": True, "no_open_circuits": True, "anti_static_precautions": True}
    ConnectionCheckIn.model_validate(ok)
    for missing in ok:
        with pytest.raises(ValidationError, match="ENG-17"):
            ConnectionCheckIn.model_validate(ok | {missing: False})


def commissioning_plan(**changes: Any) -> dict[str, Any]:
    return {
        "software_release": "OSN9800 V100R022C10SPC200",
        "parameters": [{"name": "NE ID", "value": "9-101"}],
        "preparation_needs": [
            {"need": "DCN port", "due": "2026-12-05", "responsible": "customer", "impact": "no remote access"}
        ],
    } | changes


def test_eng18_eng20_the_data_configuration_report_and_the_confirmed_release() -> None:
    """ENG-18: the data configuration report from the planned parameters; ENG-20: the software
    release confirmed with the PM is named there, and a plan without one is refused."""
    for missing in ("software_release", "parameters"):
        raw = commissioning_plan()
        del raw[missing]
        with pytest.raises(ValidationError, match=missing):
            CommissioningPlanIn.model_validate(raw)
    with pytest.raises(ValidationError, match="parameters"):
        CommissioningPlanIn.model_validate(commissioning_plan(parameters=[]))
    report = paper.data_configuration(form(), CommissioningPlanIn.model_validate(commissioning_plan()))
    assert report.kind == "data-configuration-report"
    assert report.sections[0].fields[0].value == "OSN9800 V100R022C10SPC200"
    assert report.sections[1].table is not None and report.sections[1].table.rows == [["NE ID", "9-101"]]


def test_eng19_preparation_needs_with_due_date_responsible_supporting_and_impact() -> None:
    """ENG-19: the commissioning preparation requirements name each need's due date, the
    responsible party, the supporting party and the impact."""
    body = paper.preparation_requirements(form(), CommissioningPlanIn.model_validate(commissioning_plan()))
    table = body.sections[0].table
    assert table is not None and [h.split()[-1] for h in table.headers] == [
        "Need",
        "Due",
        "Responsible",
        "Supporting",
        "Impact",
    ]
    assert table.rows == [["DCN port", "2026-12-05", "customer", "", "no remote access"]]


def test_eng21_three_milestones_and_a_weekly_report_per_week() -> None:
    """ENG-21: a daily report at each milestone (powered on, internal commissioning, first call)
    and one weekly report per ISO week with activity."""
    assert list(paper.MILESTONES) == ["powered-on", "internal-commissioning-done", "first-call-through"]
    diary = [(date(2026, 12, 3), "a"), (date(2026, 12, 6), "b"), (date(2026, 12, 7), "c")]
    assert {w: [line for _, line in lines] for w, lines in paper.weeks(diary).items()} == {
        "2026-W49": ["a", "b"],
        "2026-W50": ["c"],
    }


def milestone(problems: list[dict[str, Any]]) -> MilestoneIn:
    return MilestoneIn.model_validate(
        {"reached_on": "2026-12-03", "summary": "powered on", "problems": problems}
    )


def test_eng22_problems_not_solved_on_site_and_quality_problems_escalate() -> None:
    """ENG-22: an unsolved problem goes to remote support; a suspected product-quality problem to
    the office's product manager and the PM; a solved one says how, and is told to no one."""
    data = milestone(
        [
            {"description": "clock drift", "solved_on_site": False},
            {"description": "fan noise", "solved_on_site": True, "solution": "reseated the fan tray"},
            {
                "description": "board resets",
                "solved_on_site": True,
                "solution": "replaced",
                "suspected_product_quality": True,
            },
        ]
    )
    project = form()
    data.check_against(project)
    sent = escalations(project.code, "powered-on", "设备上电 / Equipment powered on", data.problems)
    assert [(e.key, e.roles) for e in sent] == [
        ("remote-support-powered-on-1", (Role.REMOTE_SUPPORT,)),
        ("product-quality-powered-on-3", (Role.PRODUCT_MANAGER, Role.PM)),
    ]
    assert "clock drift" in sent[0].text and "ENG-22" in sent[0].title
    assert paper.milestone_report(project, "powered-on", data).sections[-1].heading_en.endswith("(ENG-22)")
    with pytest.raises(ValidationError, match="ENG-22: say how the problem was solved"):
        SiteProblemIn.model_validate({"description": "x", "solved_on_site": True})


def test_eng22_an_escalation_nobody_would_receive_is_refused() -> None:
    """ENG-22: skipping the escalation is not possible — without a remote-support (or product-
    manager) contact the milestone is refused and nothing is recorded."""
    raw = yaml.safe_load((ROOT / "examples" / "project.yaml").read_text(encoding="utf-8"))
    bare = ProjectIn.model_validate(
        raw
        | {"contacts": [c for c in raw["contacts"] if c["role"] not in ("remote-support", "product-manager")]}
    )
    with pytest.raises(
        ValueError, match="ENG-22: a problem not solved on site .* no contact with role remote-support"
    ):
        milestone([{"description": "clock drift", "solved_on_site": False}]).check_against(bare)
    quality = milestone(
        [
            {
                "description": "resets",
                "solved_on_site": True,
                "solution": "swap",
                "suspected_product_quality": True,
            }
        ]
    )
    with pytest.raises(ValueError, match="ENG-22: a suspected product-quality problem .* product-manager"):
        quality.check_against(bare)
    milestone([]).check_against(bare)  # no problem, nothing to escalate


def test_eng23_faulty_parts_trigger_the_reshipment_flow() -> None:
    """ENG-23: faulty boards found in commissioning go on a re-shipment request (faulty parts returned)."""
    faulty = MilestoneIn.model_validate(
        {
            "reached_on": "2026-12-03",
            "summary": "powered on",
            "faulty_parts": [{"part": "TN54 line board", "serial": "21023197", "symptom": "LOS"}],
        }
    )
    request = paper.faulty_parts_reshipment(form(), faulty)
    assert request is not None and request.kind == "reshipment-request"
    assert "faulty parts returned" in request.sections[1].text
    assert paper.faulty_parts_reshipment(form(), milestone([])) is None


def test_eng24_the_training_record_is_signed_by_the_customer() -> None:
    """ENG-24: on-site training recorded with trainees and topics, signed and stamped by the customer."""
    with pytest.raises(ValidationError, match="trainees"):
        TrainingIn.model_validate({"held_on": "2026-12-09", "trainees": [], "topics": ["alarms"], "hours": 4})
    data = TrainingIn.model_validate(
        {"held_on": "2026-12-09", "trainees": ["Chen Jing"], "topics": ["alarms"], "hours": 4}
    )
    assert [s.party_en for s in paper.training_record(form(), data).signatures] == ["Customer representative"]


def record(*passed: bool, issues: list[dict[str, Any]] | None = None) -> RecordIn:
    items = [
        {"item": f"item {n}", "result": "ok" if ok else "fail", "passed": ok} for n, ok in enumerate(passed)
    ]
    return RecordIn.model_validate(
        {"tested_on": "2026-12-10", "items": items, "leftover_issues": issues or []}
    )


def test_eng25_eng27_self_test_until_all_pass_and_the_customer_signs_acceptance() -> None:
    """ENG-25: the preliminary acceptance is applied for only when every self-test item passed;
    ENG-27: the acceptance test record carries the customer's signature, the self-test's none."""
    assert not record(True, False).all_passed and record(True, True).all_passed
    application = paper.acceptance_application(form(), record(True, True))
    assert application.sections[0].fields[0].value == "2/2"
    accepted = paper.test_record("acceptance-test-record", form(), record(True), 1)
    assert [s.party_en for s in accepted.signatures] == ["Customer representative"]
    assert paper.test_record("self-test-record", form(), record(True), 1).signatures == []


def test_eng26_the_acceptance_meeting_fixes_date_and_method() -> None:
    """ENG-26: the acceptance coordination meeting records its date and the agreed method."""
    with pytest.raises(ValidationError, match="scope"):
        MeetingIn.model_validate({"held_on": "2026-12-12", "attendees": ["Li Na"], "division_of_work": "x"})
    MeetingIn.model_validate(
        {"held_on": "2026-12-12", "attendees": ["Li Na"], "scope": "item by item", "division_of_work": "x"}
    )


def test_eng28_leftover_issues_have_a_date_and_open_memos_are_tracked_to_it() -> None:
    """ENG-28: every leftover issue has a resolution date, its memo is filed by both parties, and
    an open memo past its date is overdue."""
    with pytest.raises(ValidationError, match="resolution_date"):
        LeftoverIssueIn.model_validate({"description": "label missing", "owner": "Wang Qiang"})
    memo = paper.project_memo(form(), "label missing", date(2026, 12, 20), "Wang Qiang")
    assert len(memo.signatures) == 2
    assert overdue("open", date(2026, 12, 20), today=date(2026, 12, 21))
    assert not overdue("open", date(2026, 12, 20), today=date(2026, 12, 20))
    assert not overdue("resolved", date(2026, 12, 20), today=date(2027, 1, 5))
    assert not overdue("open", None, today=date(2027, 1, 5))


def access(site_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "site_id": site_id,
        "duty_staff_consent": True,
        "duty_staff_name": "Zhou Min",
        "badge": True,
    } | changes


def test_com7_every_site_of_the_visit_has_its_checklist() -> None:
    """COM-7: before a visit's work on site, each site's checklist — duty staff consent (who),
    badge, and the room supervisor's consent when removable media is used."""
    project = form()
    SiteAccessVisitIn.model_validate({"sites": [access("GZ-TH-01"), access("GZ-PY-02")]}).check_against(
        project
    )
    with pytest.raises(ValueError, match="COM-7: no site-access checklist for site.*GZ-PY-02"):
        SiteAccessVisitIn.model_validate({"sites": [access("GZ-TH-01")]}).check_against(project)
    for changes, says in (
        ({"duty_staff_consent": False}, "duty staff's consent"),
        ({"duty_staff_name": ""}, "duty staff's consent"),
        ({"badge": False}, "badge"),
        ({"removable_media": True}, "room supervisor's consent"),
        ({"removable_media": True, "room_supervisor_consent": True}, "room supervisor's consent"),
    ):
        with pytest.raises(ValidationError, match=f"COM-7: .*{says}"):
            SiteAccessVisitIn.model_validate({"sites": [access("GZ-TH-01", **changes), access("GZ-PY-02")]})


def test_com4_a_third_party_needs_its_lead_and_an_agreement_of_both_sides() -> None:
    """COM-4: the form says a third party is involved (optional; its lead is a contact of role
    third-party); the agreement names both parties' responsibilities and a plan."""
    assert form().third_party is None  # projects without one are unchanged
    third = {"company": "Southern Power Works", "shared_work": "DC power and cabling"}
    with pytest.raises(ValidationError, match="add its lead to the contacts with role 'third-party'"):
        form(third_party=third)
    raw = yaml.safe_load((ROOT / "examples" / "project.yaml").read_text(encoding="utf-8"))
    lead = {"name": "Sun Yue", "email": "sun.yue@power-works.example", "role": "third-party"}
    with pytest.raises(ValidationError, match="names no third party"):
        form(contacts=[*raw["contacts"], lead])
    project = form(third_party=third, contacts=[*raw["contacts"], lead])
    assert project.third_party is not None and project.third_party.starts_in.value == "installation"

    plan = {
        "responsibilities": [{"party": "contractor", "duty": "installation"}],
        "plan": [{"due": "2026-12-05", "activity": "joint site walk", "owner": "Sun Yue"}],
    }
    with pytest.raises(ValidationError, match="COM-4: .*none given for third-party"):
        CooperationPlanIn.model_validate(plan)
    plan["responsibilities"].append({"party": "third-party", "duty": "DC power"})
    agreement = paper.cooperation_agreement(
        project, project.third_party, CooperationPlanIn.model_validate(plan)
    )
    assert (agreement.kind, agreement.rule, agreement.title_zh) == (
        "cooperation-agreement",
        "COM-4",
        "第三方合作协议",
    )
    assert [s.party_en for s in agreement.signatures] == ["Project manager (our lead)", "Third party's lead"]


def test_every_contact_role_has_its_printed_label() -> None:
    """A paper names each person's role in Chinese and English; a role added to the forms
    without a label here would be printed as its bare id."""
    from models.project_input import Role
    from siteflow.documents.print_view import ROLE_LABELS

    assert set(ROLE_LABELS) == {role.value for role in Role}
