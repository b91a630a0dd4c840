"""Typed content of a generated document; the bilingual templates render only this."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DocField(_Frozen):
    label_zh: str
    label_en: str
    value: str


class DocTable(_Frozen):
    headers: list[str]
    rows: list[list[str]]


class DocSection(_Frozen):
    heading_zh: str
    heading_en: str
    fields: list[DocField] = Field(default_factory=list)
    table: DocTable | None = None
    text: str = ""


class SignatureLine(_Frozen):
    party_zh: str
    party_en: str


class DocumentBody(_Frozen):
    kind: str
    title_zh: str
    title_en: str
    rule: str
    project_code: str
    customer: str
    sections: list[DocSection] = Field(default_factory=list)
    signatures: list[SignatureLine] = Field(default_factory=list)
    copies: int = 1


DOCUMENT_KINDS: dict[str, tuple[str, str, str]] = {
    # kind: (Chinese title, English title, rule)
    "survey-plan": ("工程勘察计划", "Survey plan", "ENG-1"),
    "survey-report": ("工程勘察报告", "Survey report", "ENG-4"),
    "contract-change-request": ("合同变更申请", "Contract change request", "ENG-6"),
    "survey-memo": ("工程勘察备忘录", "Survey memo", "ENG-7"),
    "readiness-feedback": ("工程准备反馈表", "Site readiness feedback", "ENG-9"),
    "environment-acceptance": ("环境验收报告", "Environment acceptance report", "ENG-10"),
    "project-plan": ("工程计划", "Project plan", "ENG-11"),
    "inspection-report": ("开箱验货报告", "Equipment inspection report", "ENG-12"),
    "arrival-certificate": ("到货证明", "Arrival certificate", "ENG-13"),
    "reshipment-request": ("补发货申请", "Re-shipment request", "ENG-14"),
    "stop-work-report": ("停工报告", "Stop-work report", "ENG-16"),
    "resume-work-report": ("复工报告", "Resume-work report", "ENG-16"),
    "data-configuration-report": ("数据配置报告", "Data configuration report", "ENG-18"),
    "preparation-requirements": ("调测准备工作需求表", "Commissioning preparation requirements", "ENG-19"),
    "milestone-report": ("工程日报（里程碑）", "Milestone daily report", "ENG-21"),
    "weekly-report": ("工程周报", "Weekly report", "ENG-21"),
    "training-record": ("现场培训记录单", "On-site training record", "ENG-24"),
    "self-test-record": ("开通测试记录", "Commissioning self-test record", "ENG-25"),
    "preliminary-acceptance-application": ("初验申请报告", "Preliminary acceptance application", "ENG-25"),
    "acceptance-test-record": ("验收测试记录", "Acceptance test record", "ENG-27"),
    "project-memo": ("工程备忘录", "Project memo", "ENG-28"),
    "handover-record": ("竣工资料移交记录", "Completion documents handover record", "ENG-29"),
    "acceptance-certificate": ("验收证书", "Acceptance certificate", "ENG-31"),
    "cooperation-agreement": ("第三方合作协议", "Third-party cooperation agreement", "COM-4"),
    "upgrade-report": ("版本升级报告", "Software upgrade report", "UPG-4 … UPG-11"),
}
