"""Typed gate data → document bodies. Pure functions; the templates render the result."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any, NamedTuple

from models.document_body import (
    DOCUMENT_KINDS,
    DocField,
    DocSection,
    DocTable,
    DocumentBody,
    SignatureLine,
)
from models.gate_data import (
    CommissioningPlanIn,
    CooperationPlanIn,
    HandoverIn,
    InspectionIn,
    MeetingIn,
    MilestoneIn,
    ProjectPlanIn,
    SiteProblemIn,
    SurveyDataIn,
    TestRecordIn,
    TrainingIn,
    WorkResumeIn,
    WorkStopIn,
)
from models.project_input import ProjectIn, ThirdPartyIn

THIRD_PARTY_SIGN = SignatureLine(party_zh="第三方负责人", party_en="Third party's lead")
LEAD_SIGN = SignatureLine(party_zh="项目经理", party_en="Project manager (our lead)")
CUSTOMER_SIGN = SignatureLine(party_zh="客户代表", party_en="Customer representative")
CONTRACTOR_SIGN = SignatureLine(party_zh="工程督导/项目经理", party_en="Supervisor / PM")
BOTH = [CUSTOMER_SIGN, CONTRACTOR_SIGN]


def field(zh: str, en: str, value: object) -> DocField:
    return DocField(label_zh=zh, label_en=en, value=str(value))


def section(
    zh: str,
    en: str,
    *,
    fields: Sequence[DocField] = (),
    headers: Sequence[str] = (),
    rows: Iterable[Sequence[object]] = (),
    text: str = "",
) -> DocSection:
    table = DocTable(headers=list(headers), rows=[[str(c) for c in r] for r in rows]) if headers else None
    return DocSection(heading_zh=zh, heading_en=en, fields=list(fields), table=table, text=text)


def body(
    kind: str,
    project: ProjectIn,
    sections: Sequence[DocSection],
    signatures: Sequence[SignatureLine] = (),
    copies: int = 1,
) -> DocumentBody:
    zh, en, rule = DOCUMENT_KINDS[kind]
    return DocumentBody(
        kind=kind,
        title_zh=zh,
        title_en=en,
        rule=rule,
        project_code=project.code,
        customer=project.customer,
        sections=list(sections),
        signatures=list(signatures),
        copies=copies,
    )


def sites_section(project: ProjectIn) -> DocSection:
    return section(
        "站点",
        "Sites",
        headers=["站点 Site", "名称 Name", "地址 Address"],
        rows=[(s.site_id, s.name, s.address) for s in project.sites],
    )


def contract_section(project: ProjectIn) -> DocSection:
    return section(
        "合同配置",
        "Contract configuration",
        headers=["编码 Item", "描述 Description", "数量 Qty", "站点 Site"],
        rows=[(i.item_code, i.description, i.quantity, i.site_id or "—") for i in project.contract_items],
    )


def survey_plan(project: ProjectIn) -> DocumentBody:
    return body(
        "survey-plan",
        project,
        [
            section(
                "计划",
                "Plan",
                fields=[
                    field("规模", "Project size", project.size.value),
                    field("计划开始", "Planned start", project.planned_start),
                    field("计划结束", "Planned end", project.planned_end),
                ],
            ),
            sites_section(project),
            contract_section(project),
            section(
                "勘察人员",
                "Surveyors",
                headers=["姓名 Name", "角色 Role"],
                rows=[
                    (c.name, c.role.value)
                    for c in project.contacts
                    if c.role.value in ("engineer", "supervisor")
                ],
            ),
        ],
    )


def survey_report(project: ProjectIn, data: SurveyDataIn, round_no: int) -> DocumentBody:
    """ENG-3/4: three parts — shipping data, design information, commissioning data."""
    cables = [(s.site_id, c.name, f"{c.measured_length_m:g} m") for s in data.sites for c in s.cable_runs]
    terminals = [
        (s.site_id, t.terminal, t.occupancy.value, t.explanation or "—")
        for s in data.sites
        for t in s.terminals
    ]
    diffs = [
        (s.site_id, d.item_code, d.contract_quantity, d.actual_quantity, d.note or "—")
        for s in data.sites
        for d in s.contract_differences
    ]
    gaps = [(s.site_id, n.item, n.requirement, n.finding) for s in data.sites for n in s.non_compliances]
    return body(
        "survey-report",
        project,
        [
            section(
                "第一部分 排产发货数据",
                "Part 1 — Shipping data",
                headers=["站点 Site", "编码 Item", "合同 Contract", "实际 Actual", "说明 Note"],
                rows=diffs,
                text="" if diffs else "与合同配置一致 / Matches the contract configuration",
            ),
            section(
                "第二部分 工程设计信息",
                "Part 2 — Design information (measured cable lengths, ENG-5)",
                headers=["站点 Site", "线缆 Cable run", "实测长度 Measured"],
                rows=cables,
            ),
            section(
                "第三部分 调测数据信息",
                "Part 3 — Commissioning data (terminal occupancy)",
                headers=["站点 Site", "端子 Terminal", "占用 Occupancy", "说明 Explanation"],
                rows=terminals,
            ),
            section(
                "不符合项",
                "Items not meeting survey requirements (ENG-7)",
                headers=["站点 Site", "项目 Item", "要求 Requirement", "发现 Finding"],
                rows=gaps,
                text="" if gaps else "无 / None",
            ),
            section("轮次", "Round", fields=[field("提交轮次", "Submission round", round_no)]),
        ],
        signatures=[CUSTOMER_SIGN],
    )


def contract_change_request(
    project: ProjectIn, site_id: str, item_code: str, contract_qty: int, actual_qty: int, note: str
) -> DocumentBody:
    return body(
        "contract-change-request",
        project,
        [
            section(
                "变更项",
                "Change",
                fields=[
                    field("站点", "Site", site_id),
                    field("编码", "Item", item_code),
                    field("合同数量", "Contract quantity", contract_qty),
                    field("实际需要", "Actual need", actual_qty),
                    field("说明", "Note", note or "—"),
                ],
            )
        ],
    )


class SurveyMemo(NamedTuple):
    key: str
    body: DocumentBody
    description: str


def survey_memos(project: ProjectIn, data: SurveyDataIn) -> list[SurveyMemo]:
    """ENG-7: every item that does not meet the survey requirements, at every site, gets a memo."""
    return [
        SurveyMemo(
            f"survey-memo-{site.site_id}-{n}".lower(),
            survey_memo(project, site.site_id, gap.item, gap.requirement, gap.finding),
            f"{gap.item}: {gap.finding}",
        )
        for site in data.sites
        for n, gap in enumerate(site.non_compliances, 1)
    ]


def survey_memo(project: ProjectIn, site_id: str, item: str, requirement: str, finding: str) -> DocumentBody:
    return body(
        "survey-memo",
        project,
        [
            section(
                "备忘",
                "Memo",
                fields=[
                    field("站点", "Site", site_id),
                    field("项目", "Item", item),
                    field("要求", "Requirement", requirement),
                    field("发现", "Finding", finding),
                ],
            )
        ],
        signatures=BOTH,
    )


def environment_acceptance(project: ProjectIn, data: SurveyDataIn, stage: str) -> DocumentBody:
    gaps = [(s.site_id, n.item, n.finding) for s in data.sites for n in s.non_compliances]
    return body(
        "environment-acceptance",
        project,
        [
            section("验收阶段", "Stage", fields=[field("阶段", "Stage", stage)]),
            sites_section(project),
            section(
                "环境问题",
                "Environment findings",
                headers=["站点 Site", "项目 Item", "发现 Finding"],
                rows=gaps,
                text="" if gaps else "环境满足要求 / Environment meets requirements",
            ),
        ],
        signatures=BOTH,
    )


def readiness_feedback(project: ProjectIn, round_no: int, previous_date: Any) -> DocumentBody:
    return body(
        "readiness-feedback",
        project,
        [
            section(
                "准备情况",
                "Site readiness",
                fields=[
                    field("轮次", "Round", round_no),
                    field("上次约定日期", "Previously agreed date", previous_date or "—"),
                    field(
                        "请确认",
                        "Please confirm",
                        "站点是否已具备安装条件 / Is the site ready for installation?",
                    ),
                ],
            )
        ],
        signatures=[CUSTOMER_SIGN],
    )


def meeting_section(meeting: MeetingIn) -> DocSection:
    return section(
        "协调会",
        "Coordination meeting",
        fields=[
            field("日期", "Held on", meeting.held_on),
            field("参会", "Attendees", ", ".join(meeting.attendees)),
            field("范围", "Scope", meeting.scope),
            field("分工界面", "Division of work", meeting.division_of_work),
        ],
    )


def project_plan(project: ProjectIn, plan: ProjectPlanIn) -> DocumentBody:
    return body(
        "project-plan",
        project,
        [
            section(
                "工程计划",
                "Plan",
                fields=[
                    field("安装开始", "Installation start", plan.installation_start),
                    field("安装结束", "Installation end", plan.installation_end),
                    field("所需支持", "Support needed", plan.support_needed or "—"),
                ],
            ),
            sites_section(project),
        ],
        signatures=BOTH,
    )


def inspection_report(project: ProjectIn, data: InspectionIn) -> DocumentBody:
    return body(
        "inspection-report",
        project,
        [
            section(
                "箱数",
                "Boxes",
                fields=[
                    field("应到箱数", "Expected boxes", data.expected_boxes),
                    field("实到箱数", "Counted boxes", data.counted_boxes),
                    field("1号箱已开", "Box 1 opened", "是 yes" if data.box1_opened else "否 no"),
                    field(
                        "箱型已核对", "Box types verified", "是 yes" if data.box_types_verified else "否 no"
                    ),
                ],
            ),
            section(
                "短缺",
                "Missing",
                headers=["编码 Item", "数量 Qty", "说明 Note"],
                rows=[(m.item_code, m.quantity, m.note) for m in data.missing_items],
                text="" if data.missing_items else "无 / None",
            ),
            section(
                "损坏",
                "Damaged",
                headers=["编码 Item", "数量 Qty", "说明 Note"],
                rows=[(m.item_code, m.quantity, m.note) for m in data.damaged_items],
                text="" if data.damaged_items else "无 / None",
            ),
        ],
        signatures=BOTH,
    )


def with_correction(draft: DocumentBody, correction: str) -> DocumentBody:
    """ENG-15: a corrected version says what was corrected; the signed one stays untouched."""
    if not correction:
        return draft
    note = section("更正", "Correction", text=correction)
    return draft.model_copy(update={"sections": [*draft.sections, note]})


def arrival_certificate(project: ProjectIn, data: InspectionIn) -> DocumentBody:
    return body(
        "arrival-certificate",
        project,
        [
            section(
                "到货",
                "Arrival",
                fields=[
                    field("箱数", "Boxes received", data.counted_boxes),
                    field("保管", "Custody", "已交客户保管 / Handed to customer custody"),
                    field("原件", "Original", "原件经办事处返回公司 / Original returns via the office"),
                ],
            ),
            contract_section(project),
        ],
        signatures=[CUSTOMER_SIGN],
    )


def inspection_shortfalls(data: InspectionIn) -> list[tuple[str, int, str]]:
    """ENG-14: every discrepancy found at inspection, as the re-shipment request's rows."""
    rows = [(m.item_code, m.quantity, f"missing {m.note}") for m in data.missing_items]
    rows += [(m.item_code, m.quantity, f"damaged {m.note}") for m in data.damaged_items]
    if data.counted_boxes != data.expected_boxes:
        rows.append(("boxes", data.expected_boxes - data.counted_boxes, "box count differs"))
    return rows


def inspection_reshipment(project: ProjectIn, data: InspectionIn) -> DocumentBody | None:
    """ENG-14: discrepancies at inspection trigger a re-shipment request at once; none, none."""
    rows = inspection_shortfalls(data)
    if not rows:
        return None
    return reshipment_request(project, "开箱验货发现差异 / Discrepancies found at inspection (ENG-14)", rows)


def faulty_parts_reshipment(project: ProjectIn, data: MilestoneIn) -> DocumentBody | None:
    """ENG-23: faulty boards or parts found in commissioning trigger the re-shipment flow, and
    the faulty parts go back."""
    if not data.faulty_parts:
        return None
    return reshipment_request(
        project,
        "调测中发现故障部件，故障件返回 / Faulty parts found; faulty parts returned",
        [(p.part, 1, f"{p.serial} {p.symptom}") for p in data.faulty_parts],
    )


def reshipment_request(project: ProjectIn, reason: str, rows: Sequence[Sequence[object]]) -> DocumentBody:
    return body(
        "reshipment-request",
        project,
        [
            section("补发货", "Re-shipment", headers=["项目 Item", "数量 Qty", "说明 Note"], rows=rows),
            section("原因", "Reason", text=reason),
        ],
    )


def work_stop_report(project: ProjectIn, stop: WorkStopIn) -> DocumentBody:
    return body(
        "stop-work-report",
        project,
        [
            section(
                "停工",
                "Stop of work",
                fields=[
                    field("日期", "Stopped on", stop.stopped_on),
                    field("原因方", "Caused by", stop.caused_by.value),
                    field("原因", "Reason", stop.reason),
                ],
            )
        ],
        signatures=BOTH,
    )


def work_resume_report(project: ProjectIn, resume: WorkResumeIn, stop: WorkStopIn) -> DocumentBody:
    return body(
        "resume-work-report",
        project,
        [
            section(
                "复工",
                "Resume of work",
                fields=[
                    field("停工日期", "Stopped on", stop.stopped_on),
                    field("复工日期", "Resumed on", resume.resumed_on),
                    field("说明", "Notes", resume.notes or "—"),
                ],
            )
        ],
        signatures=BOTH,
    )


def data_configuration(project: ProjectIn, plan: CommissioningPlanIn) -> DocumentBody:
    return body(
        "data-configuration-report",
        project,
        [
            section(
                "软件版本",
                "Software release (ENG-20)",
                fields=[field("版本", "Release", plan.software_release)],
            ),
            section(
                "数据配置",
                "Data configuration",
                headers=["参数 Parameter", "取值 Value"],
                rows=[(p.name, p.value) for p in plan.parameters],
            ),
        ],
    )


def preparation_requirements(project: ProjectIn, plan: CommissioningPlanIn) -> DocumentBody:
    return body(
        "preparation-requirements",
        project,
        [
            section(
                "需求",
                "Needs",
                headers=[
                    "需求 Need",
                    "完成日期 Due",
                    "责任方 Responsible",
                    "配合方 Supporting",
                    "影响 Impact",
                ],
                rows=[(n.need, n.due, n.responsible, n.supporting, n.impact) for n in plan.preparation_needs],
                text="" if plan.preparation_needs else "无 / None",
            )
        ],
    )


MILESTONES = {
    "powered-on": ("设备上电", "Equipment powered on"),
    "internal-commissioning-done": ("内部调测完成", "Internal commissioning done"),
    "first-call-through": ("打通第一个电话", "First call through"),
}


def _escalated_to(problem: SiteProblemIn) -> str:
    told = [] if problem.solved_on_site else ["远程支持 remote support"]
    told += ["产品经理与项目经理 product manager, PM"] if problem.suspected_product_quality else []
    return ", ".join(told) or "—"


def problems_section(data: MilestoneIn) -> list[DocSection]:
    """ENG-22: the problems met on site and where each went; no section when there were none
    (so reports issued before problems were recorded keep their bodies on replay)."""
    if not data.problems:
        return []
    return [
        section(
            "现场问题",
            "Problems on site (ENG-22)",
            headers=["问题 Problem", "现场解决 Solved on site", "质量问题 Quality", "去向 Escalated to"],
            rows=[
                (
                    p.description,
                    p.solution if p.solved_on_site else "否 no",
                    "疑似 suspected" if p.suspected_product_quality else "—",
                    _escalated_to(p),
                )
                for p in data.problems
            ],
        )
    ]


def milestone_report(project: ProjectIn, milestone: str, data: MilestoneIn) -> DocumentBody:
    zh, en = MILESTONES[milestone]
    return body(
        "milestone-report",
        project,
        [
            section(
                "里程碑",
                "Milestone",
                fields=[
                    field("里程碑", "Milestone", f"{zh} / {en}"),
                    field("日期", "Reached on", data.reached_on),
                    field("摘要", "Summary", data.summary),
                ],
            ),
            section(
                "故障部件",
                "Faulty parts (ENG-23)",
                headers=["部件 Part", "序列号 Serial", "现象 Symptom"],
                rows=[(p.part, p.serial, p.symptom) for p in data.faulty_parts],
                text="" if data.faulty_parts else "无 / None",
            ),
            *problems_section(data),
        ],
    )


def weeks(diary: Sequence[tuple[date, str]]) -> dict[str, list[tuple[date, str]]]:
    """ENG-21: the events of commissioning grouped by ISO week: one weekly report per week with activity."""
    grouped: dict[str, list[tuple[date, str]]] = {}
    for day, line in diary:
        iso = day.isocalendar()
        grouped.setdefault(f"{iso.year}-W{iso.week:02d}", []).append((day, line))
    return grouped


def weekly_report(project: ProjectIn, week: str, lines: Sequence[Sequence[object]]) -> DocumentBody:
    return body(
        "weekly-report",
        project,
        [section(f"第 {week} 周", f"Week {week}", headers=["日期 Date", "事项 Event"], rows=lines)],
    )


def training_record(project: ProjectIn, data: TrainingIn) -> DocumentBody:
    return body(
        "training-record",
        project,
        [
            section(
                "培训",
                "Training",
                fields=[
                    field("日期", "Held on", data.held_on),
                    field("学员", "Trainees", ", ".join(data.trainees)),
                    field("内容", "Topics", ", ".join(data.topics)),
                    field("学时", "Hours", f"{data.hours:g}"),
                ],
            )
        ],
        signatures=[CUSTOMER_SIGN],
    )


def test_record(kind: str, project: ProjectIn, data: TestRecordIn, round_no: int) -> DocumentBody:
    return body(
        kind,
        project,
        [
            section(
                "测试",
                "Tests",
                fields=[field("日期", "Tested on", data.tested_on), field("轮次", "Round", round_no)],
            ),
            section(
                "测试项",
                "Items",
                headers=["项目 Item", "期望 Expected", "结果 Result", "通过 Pass"],
                rows=[(i.item, i.expected, i.result, "✔" if i.passed else "✘") for i in data.items],
            ),
            section(
                "遗留问题",
                "Leftover issues (ENG-28)",
                headers=["问题 Issue", "解决日期 Resolve by", "负责人 Owner"],
                rows=[(x.description, x.resolution_date, x.owner) for x in data.leftover_issues],
                text="" if data.leftover_issues else "无 / None",
            ),
        ],
        signatures=[CUSTOMER_SIGN] if kind == "acceptance-test-record" else [],
    )


def acceptance_application(project: ProjectIn, data: TestRecordIn) -> DocumentBody:
    passed = sum(i.passed for i in data.items)
    return body(
        "preliminary-acceptance-application",
        project,
        [
            section(
                "申请",
                "Application",
                fields=[
                    field("自测通过", "Self-test items passed", f"{passed}/{len(data.items)}"),
                    field("申请", "Request", "申请初验 / Preliminary acceptance requested"),
                ],
            )
        ],
    )


def project_memo(project: ProjectIn, description: str, resolution_date: Any, owner: str) -> DocumentBody:
    return body(
        "project-memo",
        project,
        [
            section(
                "遗留问题",
                "Leftover issue",
                fields=[
                    field("问题", "Issue", description),
                    field("解决日期", "Resolve by", resolution_date),
                    field("负责人", "Owner", owner),
                ],
            )
        ],
        signatures=BOTH,
    )


def handover_record(project: ProjectIn, data: HandoverIn) -> DocumentBody:
    return body(
        "handover-record",
        project,
        [
            section(
                "移交",
                "Handover",
                fields=[
                    field(
                        "竣工资料",
                        "Completion documents",
                        "已移交 handed over" if data.documents_handed_over else "未 not yet",
                    ),
                    field(
                        "备品备件",
                        "Spares",
                        "已移交 handed over" if data.spares_handed_over else "未 not yet",
                    ),
                    field("维护联系人", "Maintenance contact", data.maintenance_contact),
                ],
            )
        ],
        signatures=BOTH,
    )


def acceptance_certificate(project: ProjectIn, accepted_on: Any, memos: int) -> DocumentBody:
    return body(
        "acceptance-certificate",
        project,
        [
            section(
                "验收",
                "Acceptance",
                fields=[
                    field("验收日期", "Accepted on", accepted_on),
                    field("遗留问题备忘录", "Open project memos", memos),
                    field("交办事处接口人", "Returned to", "办事处接口人 / the office's interface person"),
                ],
            ),
            sites_section(project),
            contract_section(project),
        ],
        signatures=BOTH,
        copies=3,
    )


def cooperation_agreement(project: ProjectIn, third: ThirdPartyIn, plan: CooperationPlanIn) -> DocumentBody:
    """COM-4: work with a third party agreed in writing — responsibilities and plan — for both leads."""
    return body(
        "cooperation-agreement",
        project,
        [
            section(
                "合作方",
                "Third party",
                fields=[
                    field("公司", "Company", third.company),
                    field("共同工作", "Shared work", third.shared_work),
                    field("开始阶段", "Starts in", third.starts_in.value),
                ],
            ),
            section(
                "职责",
                "Responsibilities",
                headers=["责任方 Party", "职责 Responsibility"],
                rows=[(r.party.value, r.duty) for r in plan.responsibilities],
            ),
            section(
                "计划",
                "Plan",
                headers=["日期 Due", "工作 Activity", "负责人 Owner"],
                rows=[(step.due, step.activity, step.owner) for step in plan.plan],
            ),
        ],
        signatures=[LEAD_SIGN, THIRD_PARTY_SIGN],
    )
