"""Engineering project (工程开通): survey → installation → commissioning → completion.

Reads like docs/process.md §1. Every gate suspends the run (no process is held while a customer
takes days to sign); when it resumes the flow re-runs from the top and every task returns
what it already created, so no side effect happens twice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from itertools import count

from prefect import flow
from prefect.context import FlowRunContext
from prefect.runtime import flow_run

from flows.replay import Ledger
from flows.signoffs import (
    cooperation_signoff,
    customer_signoff,
    data_entry,
    readiness_check,
    site_access,
    two_party_signoff,
)
from models import paperwork as paper
from models.document_body import DocumentBody
from models.escalation import escalations
from models.gate_data import (
    CommissioningPlanIn,
    CooperationPlanIn,
    CutoverIn,
    HandoverIn,
    InspectionIn,
    MeetingIn,
    MilestoneIn,
    ProjectPlanIn,
    ReadinessIn,
    StopCause,
    SurveyDataIn,
    TestRecordIn,
    TrainingIn,
    WorkResumeIn,
    WorkStopIn,
)
from models.gate_spec import Decision, GateSpec
from models.project import ProjectState
from models.project_input import ProjectIn, ProjectSize, Role, SharedPhase
from tasks.documents import DocumentRead
from tasks.gates import GateRead
from tasks.project_records import (
    mark_project_failed,
    register_project,
    set_project_state,
)
from tasks.run_labels import project_tags, tag_run

OURS = [Role.SUPERVISOR, Role.ENGINEER]
SURVEY_NOTE = (
    "现场勘察，请安排人员陪同 / On-site survey; please arrange for someone to accompany the engineers."
)


def _emails(project: ProjectIn, *roles: Role) -> list[str]:
    return [f"{c.name} <{c.email}>" for c in project.contacts_with(*roles)]


def _until_signed(
    ledger: Ledger,
    key: str,
    rule: str,
    title: str,
    doc_key: str,
    draft: DocumentBody,
    both: bool = False,
    on_paper: bool = False,
    signoff: Callable[..., GateSpec] | None = None,
) -> tuple[DocumentRead, GateRead]:
    """Issue, sign, and on refusal issue a corrected version for a new signature (ENG-15).

    A signed version is never altered: the refusing side's comment becomes the correction
    note of the next version, which needs its own signature; the PM is told of each refusal.
    """
    project = ledger.project
    correction = ""
    for round_no in count(1):
        doc = ledger.issue(doc_key, paper.with_correction(draft, correction))
        spec = (signoff or (two_party_signoff if both else customer_signoff))(
            f"{key}-r{round_no}", rule, title, doc.id, paper=on_paper
        )
        gate = ledger.gate(spec, doc.summary_md)
        if gate.outcome in (Decision.APPROVE.value, Decision.SIGN.value):
            ledger.sign(doc, gate.signers)
            return doc, gate
        refusal = next(s for s in gate.signatures if s.decision == gate.outcome)
        correction = refusal.comment or f"corrected after refusal in round {round_no}"
        ledger.notify(
            f"{key}-refused-r{round_no}",
            _emails(project, Role.PM),
            f"[{project.code}] {title}: {gate.outcome}",
            f"{refusal.signer} answered {gate.outcome}: {refusal.comment}",
        )
    raise AssertionError("unreachable")


def on_site(ledger: Ledger, phase: SharedPhase, key: str, visit: str, work: str) -> None:
    """Before a visit's work on site starts: the cooperation agreement when the third party's
    shared work starts in this phase (COM-4), then the visit's site-access checklist (COM-7).

    `work` is the key of the visit's first on-site gate: a project whose visit began before
    these gates existed (a run resumed after an upgrade of siteflow) is not asked afterwards."""
    if ledger.began(work):
        return
    third = ledger.project.third_party
    if third is not None and third.starts_in is phase:
        cooperation(ledger)
    ledger.gate(site_access(key, visit))


def cooperation(ledger: Ledger) -> None:
    """COM-4: work with a third party is agreed in writing — responsibilities and plan — and
    signed by both leads (our PM, the third party's lead) before the shared work starts."""
    project = ledger.project
    assert project.third_party is not None
    entry = ledger.gate(
        data_entry(
            "cooperation-plan",
            "COM-4",
            f"Cooperation with {project.third_party.company} / 第三方合作",
            "CooperationPlanIn",
            [Role.PM],
            description="Who is responsible for what (ours and the third party's, at least one each) "
            "and the dated plan of the shared work; both leads then sign the agreement.",
        ),
    )
    _until_signed(
        ledger,
        "cooperation-agreement-signoff",
        "COM-4",
        "Cooperation agreement, both leads / 合作协议双方负责人签字",
        "cooperation-agreement",
        paper.cooperation_agreement(
            project, project.third_party, CooperationPlanIn.model_validate(entry.data())
        ),
        signoff=cooperation_signoff,
    )


def _copies_to_construction(ledger: Ledger, key: str, title: str, text: str) -> None:
    """ENG-8: copies of the signed reports go to the customer's construction-department contact.

    A project whose form names none (role ``construction``; forms made before the role existed)
    is not refused: the copies are for information, not a signature, and refusing the form
    would stop the survey for a recipient needed only at its close-out, or make the stored form
    of a running project invalid. So the copies go to the customer contacts (nothing is lost:
    they can forward them) and the PM is told, once, that ENG-8 wants a construction contact.
    """
    project = ledger.project
    construction = _emails(project, Role.CONSTRUCTION)
    if construction:
        ledger.notify(key, construction, title, text)
        return
    ledger.notify(key, _emails(project, Role.CUSTOMER), title, text)
    ledger.notify(
        "no-construction-contact",
        _emails(project, Role.PM),
        f"[{project.code}] 未指定客户建设部联系人 / No construction-department contact (ENG-8)",
        "本项目没有客户建设部联系人（角色 construction），报告副本已发给客户联系人，请转交建设部。"
        " / The project names no contact of the customer's construction department (role "
        "`construction`): the copies of the survey and environment acceptance reports went to the "
        "customer contacts instead; please make sure the construction department receives them.",
    )


def survey(ledger: Ledger) -> SurveyDataIn:
    """§1.1, ENG-1 … ENG-8."""
    project = ledger.project
    ledger.phase("survey")
    plan = ledger.issue("survey-plan", paper.survey_plan(project))
    visit = project.planned_start
    for round_no in count(1):  # ENG-1: confirm the site can be surveyed
        key = f"survey-readiness-r{round_no}"
        if not ledger.decided(key):  # the round that waits: the visit as agreed now (COM-3)
            ledger.invite("survey-visit", f"工程勘察 / Site survey {project.code}", visit, visit, SURVEY_NOTE)
        gate = ledger.gate(
            readiness_check(
                key,
                "ENG-1",
                "Can the site be surveyed? / 是否具备勘察条件",
                plan.id,
            ),
            plan.summary_md,
        )
        if gate.outcome == Decision.READY.value:
            break
        visit = ReadinessIn.model_validate(gate.data()).agreed_date or visit  # moved: told in advance
    if project.size in (ProjectSize.MEDIUM, ProjectSize.LARGE):  # ENG-2
        ledger.gate(
            data_entry(
                "survey-coordination-meeting",
                "ENG-2",
                "Survey coordination meeting / 勘察准备协调会",
                "MeetingIn",
                [Role.PM],
                description="Medium/large project: record the network scope "
                "and the division of work fixed at the meeting.",
            ),
        )
    for round_no in count(1):  # each round is a visit on site: its checklist first (COM-7)
        on_site(
            ledger,
            SharedPhase.SURVEY,
            f"site-access-survey-r{round_no}",
            "survey / 勘察",
            f"survey-data-r{round_no}",
        )
        entry = ledger.gate(
            data_entry(
                f"survey-data-r{round_no}",
                "ENG-4",
                "Survey results per site / 勘察结果",
                "SurveyDataIn",
                OURS,
                description="Done on site: measured cable lengths (ENG-5), "
                "terminal occupancy (uncertain ones explained), items that differ from the contract "
                "(ENG-6) and items that do not meet requirements (ENG-7) — one entry per site.",
            ),
        )
        data = SurveyDataIn.model_validate(entry.data())
        report = ledger.issue("survey-report", paper.survey_report(project, data, round_no))
        for site in data.sites:
            for diff in site.contract_differences:  # ENG-6
                key = f"contract-change-{site.site_id}-{diff.item_code}".lower()
                change = ledger.issue(
                    key,
                    paper.contract_change_request(
                        project,
                        site.site_id,
                        diff.item_code,
                        diff.contract_quantity,
                        diff.actual_quantity,
                        diff.note,
                    ),
                )
                ledger.notify(
                    f"{key}-v{change.version}",
                    _emails(project, Role.OFFICE, Role.PM),
                    f"[{project.code}] 合同变更申请 / Contract change request {diff.item_code}",
                    change.summary_md,
                )
        for memo_key, memo_body, what in paper.survey_memos(project, data):  # ENG-7
            memo = ledger.issue(memo_key, memo_body)
            ledger.memo(memo_key, "survey-memo", what, "", None, memo.id)
        gate = ledger.gate(
            customer_signoff(
                f"survey-report-signoff-r{round_no}",
                "ENG-8",
                "Sign the survey report / 勘察报告签字",
                report.id,
                "Approve to sign; reject with a comment to send the survey back for a new "
                "round of measurements.",
            ),
            report.summary_md,
        )
        if gate.outcome == Decision.APPROVE.value:
            ledger.sign(report, gate.signers)
            env = ledger.issue(
                "environment-acceptance-survey", paper.environment_acceptance(project, data, "survey / 勘察")
            )
            _copies_to_construction(  # ENG-8: copies to the customer's construction department
                ledger,
                "survey-copies",
                f"[{project.code}] 勘察报告与环境验收报告 / Survey and environment reports",
                report.summary_md + "\n\n" + env.summary_md,
            )
            return data
    raise AssertionError("unreachable")


def installation(ledger: Ledger, survey_data: SurveyDataIn) -> None:
    """§1.2, ENG-9 … ENG-16."""
    project = ledger.project
    ledger.phase("installation")
    agreed: date | None = None
    for round_no in count(1):  # ENG-9: repeat until the customer says the site is ready
        feedback = ledger.issue(
            f"readiness-feedback-r{round_no}", paper.readiness_feedback(project, round_no, agreed)
        )
        gate = ledger.gate(
            readiness_check(
                f"installation-readiness-r{round_no}",
                "ENG-9",
                "Is the site ready for installation? / 工程准备是否就绪",
                feedback.id,
            ),
            feedback.summary_md,
        )
        if gate.outcome == Decision.READY.value:
            break
        agreed = ReadinessIn.model_validate(gate.data()).agreed_date
    on_site(
        ledger,
        SharedPhase.INSTALLATION,
        "site-access-installation",
        "installation / 安装",
        "environment-acceptance-signoff-r1",
    )
    environment, _ = _until_signed(
        ledger,
        "environment-acceptance-signoff",
        "ENG-10",
        "Environment acceptance, both parties / 环境验收双方签字",
        "environment-acceptance",
        paper.environment_acceptance(project, survey_data, "installation / 安装"),
        both=True,
    )
    _copies_to_construction(  # ENG-8: the signed environment acceptance report, copied too
        ledger,
        "environment-acceptance-copies",
        f"[{project.code}] 环境验收报告（双方已签字）/ Environment acceptance report, signed by both parties",
        environment.summary_md,
    )

    kickoff = ledger.gate(
        data_entry(  # ENG-11
            "kickoff-meeting",
            "ENG-11",
            "Kick-off meeting and project plan / 工程协调会与工程计划",
            "ProjectPlanIn",
            [Role.PM],
            description="Installation period, schedule and support needed.",
        ),
    )
    schedule = ProjectPlanIn.model_validate(kickoff.data())
    ledger.invite(  # COM-3: the installation period, arranged in advance
        "installation",
        f"设备安装 / Installation {project.code}",
        schedule.installation_start,
        schedule.installation_end,
        schedule.support_needed,
    )
    _until_signed(
        ledger,
        "project-plan-signoff",
        "ENG-11",
        "Project plan, both parties / 工程计划双方签字",
        "project-plan",
        paper.project_plan(project, schedule),
        both=True,
    )

    inspection = ledger.gate(
        data_entry(  # ENG-12
            "equipment-inspection",
            "ENG-12",
            "Equipment inspection / 开箱验货",
            "InspectionIn",
            OURS,
            description="Master packing list from box 1; count boxes; check box by box with the customer.",
        ),
    )
    found = InspectionIn.model_validate(inspection.data())
    _until_signed(
        ledger,
        "inspection-report-signoff",
        "ENG-12",
        "Inspection report, both parties / 验货报告双方签字",
        "inspection-report",
        paper.inspection_report(project, found),
        both=True,
    )
    reshipment = paper.inspection_reshipment(project, found)
    if reshipment is not None:  # ENG-14
        request = ledger.issue("reshipment-request-inspection", reshipment)
        ledger.notify(
            "reshipment-inspection",
            _emails(project, Role.OFFICE, Role.PM),
            f"[{project.code}] 补发货申请 / Re-shipment request",
            request.summary_md,
        )
        ledger.notify(
            "reshipment-explained",
            _emails(project, Role.CUSTOMER),
            f"[{project.code}] 到货差异说明 / Explanation of shipment discrepancies",
            "我们已向办事处申请补发，到货后将及时通知您。/ A re-shipment has been requested; "
            "we will tell you when it arrives.\n\n" + request.summary_md,
        )

    _until_signed(
        ledger,
        "arrival-certificate-signoff",
        "ENG-13",  # ENG-13, ENG-15
        "Sign and stamp the arrival certificate / 到货证明签字盖章",
        "arrival-certificate",
        paper.arrival_certificate(project, found),
        on_paper=True,  # signed and stamped on site: staff may record the paper with its scan
    )

    for stop_no in count(1):  # ENG-16: stops and resumes, each reported and signed by both
        progress = ledger.gate(
            data_entry(
                f"installation-progress-{stop_no}",
                "ENG-16",
                "Installation progress / 安装进展",
                "WorkStopIn",
                OURS,
                decisions=[Decision.COMPLETE, Decision.STOP_WORK],
                data_for=[Decision.STOP_WORK],
                description="Report installation complete, or a stop of work with its cause.",
            ),
        )
        if progress.outcome == Decision.COMPLETE.value:
            return
        stop = WorkStopIn.model_validate(progress.data())
        _until_signed(
            ledger,
            f"stop-work-{stop_no}-signoff",
            "ENG-16",
            "Stop-work report, both parties / 停工报告",
            f"stop-work-report-{stop_no}",
            paper.work_stop_report(project, stop),
            both=True,
        )
        if stop.caused_by is StopCause.CUSTOMER:
            ledger.notify(
                f"customer-stop-{stop_no}",
                _emails(project, Role.PM),
                f"[{project.code}] 客户原因停工 / Work stopped by the customer",
                f"{stop.stopped_on}: {stop.reason}",
            )
        resumed = ledger.gate(
            data_entry(
                f"resume-work-{stop_no}",
                "ENG-16",
                "Resume work / 复工",
                "WorkResumeIn",
                OURS,
                decisions=[Decision.RESUME_WORK],
            ),
        )
        _until_signed(
            ledger,
            f"resume-work-{stop_no}-signoff",
            "ENG-16",
            "Resume-work report, both parties / 复工报告",
            f"resume-work-report-{stop_no}",
            paper.work_resume_report(project, WorkResumeIn.model_validate(resumed.data()), stop),
            both=True,
        )


def commissioning(ledger: Ledger) -> TestRecordIn:
    """§1.3, ENG-17 … ENG-25."""
    project = ledger.project
    ledger.phase("commissioning")
    on_site(
        ledger,
        SharedPhase.COMMISSIONING,
        "site-access-commissioning",
        "commissioning / 调测",
        "connection-check",
    )
    ledger.gate(
        data_entry(
            "connection-check",
            "ENG-17",
            "Connection check before power-on / 上电前检查",
            "ConnectionCheckIn",
            OURS,
            description="No power-on until short/open circuits are ruled "
            "out and anti-static precautions are in place.",
        ),
    )
    setup = ledger.gate(
        data_entry(
            "commissioning-plan",
            "ENG-18",
            "Data configuration and software release / 数据配置与版本确认",
            "CommissioningPlanIn",
            [Role.PM],
            description="The PM confirms the software release "
            "(ENG-20); the data configuration (ENG-18) and preparation needs (ENG-19) follow.",
        ),
    )
    plan = CommissioningPlanIn.model_validate(setup.data())
    ledger.issue("data-configuration-report", paper.data_configuration(project, plan))
    needs = ledger.issue("preparation-requirements", paper.preparation_requirements(project, plan))
    ledger.notify(
        "preparation-requirements",
        _emails(project, Role.CUSTOMER),
        f"[{project.code}] 调测准备工作需求表 / Commissioning preparation requirements",
        needs.summary_md,
    )

    diary: list[tuple[date, str]] = []
    for milestone, (zh, en) in paper.MILESTONES.items():  # ENG-21, ENG-23
        reached = ledger.gate(
            data_entry(
                f"milestone-{milestone}",
                "ENG-21",
                f"Milestone: {en} / {zh}",
                "MilestoneIn",
                OURS,
                description="Daily report of the milestone; list faulty boards or parts (ENG-23) "
                "and problems met on site: unsolved ones go to remote support, suspected "
                "product-quality ones to the office's product manager and the PM (ENG-22).",
            ),
        )
        data = MilestoneIn.model_validate(reached.data())
        ledger.issue(f"milestone-report-{milestone}", paper.milestone_report(project, milestone, data))
        diary.append((data.reached_on, f"{zh} / {en}: {data.summary}"))
        for escalation in escalations(project.code, milestone, f"{zh} / {en}", data.problems):  # ENG-22
            ledger.notify(
                escalation.key, _emails(project, *escalation.roles), escalation.title, escalation.text
            )
        faulty = paper.faulty_parts_reshipment(project, data)
        if faulty is not None:  # ENG-23
            request = ledger.issue(f"reshipment-request-{milestone}", faulty)
            ledger.notify(
                f"reshipment-{milestone}",
                _emails(project, Role.OFFICE, Role.PM),
                f"[{project.code}] 补发货申请 / Re-shipment request (faulty parts)",
                request.summary_md,
            )
    for week, lines in paper.weeks(diary).items():  # ENG-21: one weekly report per week with activity
        ledger.issue(f"weekly-report-{week.lower()}", paper.weekly_report(project, week, lines))

    training = ledger.gate(
        data_entry("training", "ENG-24", "On-site training / 现场培训", "TrainingIn", OURS)
    )
    _until_signed(
        ledger,
        "training-record-signoff",
        "ENG-24",
        "Sign and stamp the training record / 培训记录签字盖章",
        "training-record",
        paper.training_record(project, TrainingIn.model_validate(training.data())),
    )

    for round_no in count(1):  # ENG-25: self-test until every item passes
        tested = ledger.gate(
            data_entry(
                f"self-test-r{round_no}", "ENG-25", "Commissioning self-test / 开通自测", "TestRecordIn", OURS
            ),
        )
        result = TestRecordIn.model_validate(tested.data())
        ledger.issue("self-test-record", paper.test_record("self-test-record", project, result, round_no))
        if result.all_passed:
            ledger.issue("preliminary-acceptance-application", paper.acceptance_application(project, result))
            return result
    raise AssertionError("unreachable")


def completion(ledger: Ledger) -> None:
    """§1.4, ENG-26 … ENG-31: accept first, then hand over and cut over, observe, certify."""
    project = ledger.project
    ledger.phase("completion")
    meeting = ledger.gate(
        data_entry(
            "acceptance-meeting",
            "ENG-26",
            "Acceptance coordination meeting / 验收协调会",
            "MeetingIn",
            [Role.PM],
            description="Fix the acceptance date and method (scope field).",
        ),
    )
    MeetingIn.model_validate(meeting.data())
    for round_no in count(1):  # ENG-27, ENG-28
        tested = ledger.gate(
            data_entry(
                f"acceptance-test-r{round_no}",
                "ENG-27",
                "Acceptance test results / 验收测试",
                "TestRecordIn",
                OURS,
                description="Item by item with the customer; every leftover "
                "issue gets a resolution date (ENG-28).",
            ),
        )
        result = TestRecordIn.model_validate(tested.data())
        record = ledger.issue(
            "acceptance-test-record", paper.test_record("acceptance-test-record", project, result, round_no)
        )
        gate = ledger.gate(
            customer_signoff(
                f"acceptance-test-signoff-r{round_no}",
                "ENG-27",
                "Sign the acceptance test record / 验收测试记录签字",
                record.id,
                "Approve to sign; reject with a comment to repeat the acceptance test.",
            ),
            record.summary_md,
        )
        if gate.outcome == Decision.APPROVE.value:
            ledger.sign(record, gate.signers)
            break
    for n, issue in enumerate(result.leftover_issues, 1):
        memo = ledger.issue(
            f"project-memo-{n}",
            paper.project_memo(project, issue.description, issue.resolution_date, issue.owner),
        )
        ledger.memo(
            f"project-memo-{n}",
            "project-memo",
            issue.description,
            issue.owner,
            issue.resolution_date,
            memo.id,
        )

    handover = ledger.gate(
        data_entry(  # ENG-29, after acceptance (ENG-30)
            "handover",
            "ENG-29",
            "Handover of completion documents and spares / 竣工资料移交",
            "HandoverIn",
            OURS,
        ),
    )
    _until_signed(
        ledger,
        "handover-signoff",
        "ENG-29",
        "Handover record, both parties / 移交记录双方签字",
        "handover-record",
        paper.handover_record(project, HandoverIn.model_validate(handover.data())),
        both=True,
    )

    cutover_gate = ledger.gate(
        data_entry(
            "cutover",
            "ENG-30",
            "Cutover done / 割接完成",
            "CutoverIn",
            OURS,
            description="Record when the cutover happened; observation starts then.",
        ),
    )
    cutover = CutoverIn.model_validate(cutover_gate.data())
    ledger.gate(
        data_entry(
            "observation",
            "ENG-30",
            f"Observation of {project.observation_days} day(s) after cutover / 割接后观察",
            "ObservationIn",
            OURS,
            not_before=cutover.cutover_at + timedelta(days=project.observation_days),
            description=f"The crew leaves only after {project.observation_days} day(s) of normal "
            "running; this gate refuses an earlier answer.",
        ),
    )

    certificate, _ = _until_signed(  # ENG-31: three copies, no alterations (ENG-15)
        ledger,
        "acceptance-certificate-signoff",
        "ENG-31",
        "Sign the acceptance certificate (3 copies) / 验收证书签字",
        "acceptance-certificate",
        paper.acceptance_certificate(project, result.tested_on, len(result.leftover_issues)),
    )
    ledger.notify(
        "certificate-to-office",
        _emails(project, Role.OFFICE, Role.PM),
        f"[{project.code}] 验收证书 / Acceptance certificate (3 copies)",
        certificate.summary_md,
    )


def project_run_name() -> str:
    """A project's run is named after its code, e.g. P-2026-001 (the run list says which is which)."""
    project = flow_run.parameters.get("project")
    code = project.code if isinstance(project, ProjectIn) else dict(project or {}).get("code")
    return str(code or "engineering-project")


@flow(
    name="engineering-project",
    flow_run_name=project_run_name,
    persist_result=True,
    log_prints=True,
    on_failure=[mark_project_failed],
    on_crashed=[mark_project_failed],
)
def run_engineering_project(project: ProjectIn) -> str:
    """One engineering project from survey to acceptance certificate (docs/process.md §1)."""
    ctx = FlowRunContext.get()
    assert ctx is not None and ctx.flow_run is not None
    register_project(project, str(ctx.flow_run.id))
    tags = project_tags(project.code, project.customer)
    if not set(tags) <= set(ctx.flow_run.tags):
        tag_run(str(ctx.flow_run.id), tags)
    ledger = Ledger.load(project)
    survey_data = survey(ledger)
    installation(ledger, survey_data)
    commissioning(ledger)
    completion(ledger)
    ledger.phase("done")
    set_project_state(project.code, ProjectState.COMPLETED)
    return f"project {project.code} completed"
