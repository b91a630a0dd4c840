"""Typed form fields for a gate's data, generated from its data model's JSON schema (issue #9).

The workspace's gate page and the customer's email-link page ask for the same data with the
same inputs: choices as choices, dates as dates, numbers as numbers, yes/no as a checkbox,
lists of things (cable runs, contract differences, leftover issues …) as repeatable rows, and
a site or contract item as one of the project's own (ENG-4 … ENG-7: survey data is per site
and names only contract items). No page needs JavaScript (the pages' CSP allows none): "add a
row" is a submit button that shows the form again with one more row, nothing decided.

A posted form is turned back into the data dict the model validates (:func:`parse`); what
cannot even be read (a number that is not one) is a field error before any decision is tried,
and a refusal's validation problems are put back on their fields (:func:`field_errors`), so
the person sees which field to fix with everything they typed kept.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError

from models.gate_data import GATE_DATA_MODELS
from models.project_input import ProjectIn
from models.roster import Roster
from models.upgrade_plan import UpgradePlanIn

PREFIX = "data"
ROWS = "__rows"  # hidden field: how many rows a repeatable list was shown with
ADD = "_add"  # the "add a row" button's name; its value is the list's path
MAX_ROWS = 200
MODEL = "x-model"  # the model class a (resolved) schema node describes

LABELS: dict[str, str] = {
    "sites": "各站点 / Sites",
    "site_id": "站点 / Site",
    "surveyed_on_site": "已现场勘察 / Surveyed on site",
    "cable_runs": "线缆 / Cable runs",
    "CableRunIn.name": "线缆名称 / Cable run",
    "measured_length_m": "实测长度（米）/ Measured length (m)",
    "terminals": "端子 / Terminals",
    "terminal": "端子/端口 / Terminal or port",
    "occupancy": "占用情况 / Occupancy",
    "explanation": "说明 / Explanation",
    "contract_differences": "与合同不符的项目 / Items that differ from the contract",
    "item_code": "合同项目 / Contract item",
    "contract_quantity": "合同数量 / Quantity in the contract",
    "actual_quantity": "实际数量 / Actual quantity",
    "note": "备注 / Note",
    "non_compliances": "不符合要求的项目 / Items that do not meet requirements",
    "item": "项目 / Item",
    "requirement": "要求 / Requirement",
    "finding": "发现 / Finding",
    "agreed_date": "约定日期（未就绪时）/ Agreed date (when not ready)",
    "notes": "备注 / Notes",
    "held_on": "会议日期 / Held on",
    "attendees": "参会人（每行一位）/ Attendees (one per line)",
    "scope": "网络范围与验收方式 / Network scope and acceptance method",
    "division_of_work": "分工界面 / Division of work",
    "installation_start": "安装开始 / Installation starts",
    "installation_end": "安装结束 / Installation ends",
    "support_needed": "需要的支持 / Support needed",
    "expected_boxes": "应到箱数 / Boxes expected",
    "counted_boxes": "实到箱数 / Boxes counted",
    "box1_opened": "已开 1 号箱取装箱总清单 / Box 1 opened (master packing list)",
    "box_types_verified": "已核对箱数与箱型 / Box count and types verified",
    "missing_items": "缺件 / Missing items",
    "damaged_items": "损坏件 / Damaged items",
    "quantity": "数量 / Quantity",
    "stopped_on": "停工日期 / Stopped on",
    "caused_by": "停工原因方 / Caused by",
    "reason": "原因 / Reason",
    "resumed_on": "复工日期 / Resumed on",
    "no_short_circuits": "无短路 / No short circuits",
    "no_open_circuits": "无断路 / No open circuits",
    "anti_static_precautions": "已做防静电措施 / Anti-static precautions taken",
    "software_release": "软件版本 / Software release",
    "parameters": "配置参数 / Configuration parameters",
    "ConfigParameterIn.name": "参数 / Parameter",
    "value": "值 / Value",
    "preparation_needs": "准备需求 / Preparation needs",
    "need": "需求 / Need",
    "due": "完成日期 / Due",
    "responsible": "负责方 / Responsible",
    "supporting": "配合方 / Supporting",
    "impact": "影响 / Impact",
    "reached_on": "达到日期 / Reached on",
    "summary": "概要 / Summary",
    "faulty_parts": "故障部件 / Faulty parts",
    "part": "部件 / Part",
    "serial": "序列号 / Serial number",
    "symptom": "现象 / Symptom",
    "trainees": "学员（每行一位）/ Trainees (one per line)",
    "topics": "培训内容（每行一项）/ Topics (one per line)",
    "hours": "学时 / Hours",
    "tested_on": "测试日期 / Tested on",
    "items": "测试项目 / Test items",
    "expected": "预期结果 / Expected",
    "result": "实际结果 / Result",
    "passed": "通过 / Passed",
    "leftover_issues": "遗留问题 / Leftover issues",
    "description": "描述 / Description",
    "resolution_date": "解决日期 / To be resolved by",
    "owner": "负责人 / Owner",
    "cutover_at": "割接时间（站点当地时间）/ Cutover at (site's local time)",
    "running_normally": "设备运行正常 / Equipment running normally",
    "documents_handed_over": "资料已移交 / Documents handed over",
    "spares_handed_over": "备件已移交 / Spares handed over",
    "maintenance_contact": "维护联系人 / Maintenance contact",
    "tools_ready": "工具与车辆就绪 / Tools and vehicles ready",
    "replacements": "替换的操作人员 / Replacement operators",
    "replaces": "被替换人 / Replaces",
    "ReplacementIn.name": "姓名 / Name",
    "email": "邮箱 / Email",
    "qualifications": "资质（每行一项）/ Qualifications (one per line)",
}

CHOICE_LABELS: dict[str, str] = {
    "free": "空闲 / free",
    "occupied": "已占用 / occupied",
    "uncertain": "不确定 / uncertain",
    "customer": "客户 / customer",
    "contractor": "我方 / contractor",
    "external": "外部原因 / external",
}

DECISION_LABELS: dict[str, str] = {
    "approve": "同意 / Approve",
    "reject": "不同意 / Reject",
    "ready": "已就绪 / Ready",
    "not-ready": "未就绪 / Not ready",
    "sign": "签字 / Sign",
    "refuse": "拒签 / Refuse",
    "submit": "提交 / Submit",
    "installation-complete": "安装完成 / Installation complete",
    "stop-work": "停工 / Stop work",
    "resume-work": "复工 / Resume work",
    "go": "执行 / Go",
    "no-go": "不执行 / No go",
    "commit": "确认升级 / Commit",
    "rollback": "回退 / Roll back",
}

MESSAGES = {
    "missing": "必填 / Required",
    "bad_number": "请输入数字 / Enter a number",
    "bad_whole": "请输入整数 / Enter a whole number",
    "bad_time": "请输入日期和时间 / Enter a date and time",
}


def decision_label(decision: str) -> str:
    return DECISION_LABELS.get(decision, decision)


@dataclass
class FieldView:
    """One input as the template draws it; `rows` are the rows of a repeatable list."""

    path: str
    label: str
    help: str
    kind: str  # text, textarea, date, datetime, int, number, bool, choice, lines, rows, object
    required: bool
    value: Any = ""
    choices: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None
    rows: list[list[FieldView]] = field(default_factory=list)
    row_errors: list[str | None] = field(default_factory=list)
    minimum: str | None = None
    step: str | None = None
    enforce: bool = False  # the browser checks it is filled (top level only: a blank row is dropped)


@dataclass
class Parsed:
    data: dict[str, Any]
    errors: dict[str, str]
    empty: bool  # nothing was filled in at all


class _Schema:
    """A model's JSON schema with its $refs resolved, and what the roster offers to pick."""

    def __init__(self, model: type[BaseModel], roster: Roster | None) -> None:
        self.root = {**model.model_json_schema(), MODEL: model.__name__}
        self.defs: dict[str, Any] = self.root.get("$defs", {})
        self.roster = roster

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[1]
            return {
                **self.defs[name],
                MODEL: name,  # the class name, for labels: a form's titles are for people
                **{k: v for k, v in node.items() if k != "$ref"},
            }
        if "allOf" in node and len(node["allOf"]) == 1:
            return {**self.resolve(node["allOf"][0]), **{k: v for k, v in node.items() if k != "allOf"}}
        return node

    def unwrap(self, node: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """The field's own schema and whether it may be left empty (``X | None``)."""
        node = self.resolve(node)
        options = node.get("anyOf")
        if options:
            real = [o for o in options if o.get("type") != "null"]
            if len(real) == 1:
                rest = {k: v for k, v in node.items() if k != "anyOf"}
                return {**self.resolve(real[0]), **rest}, True
        return node, False

    def sites(self) -> list[tuple[str, str]]:
        if isinstance(self.roster, ProjectIn):
            return [(s.site_id, f"{s.site_id} — {s.name}") for s in self.roster.sites]
        return []

    def contract_items(self) -> list[tuple[str, str]]:
        if not isinstance(self.roster, ProjectIn):
            return []
        seen: dict[str, str] = {}
        for item in self.roster.contract_items:
            seen.setdefault(item.item_code, f"{item.item_code} — {item.description}")
        return list(seen.items())

    def zone(self) -> ZoneInfo:
        return ZoneInfo(zone_of(self.roster))

    def kind(self, name: str, node: dict[str, Any]) -> str:
        if name == "site_id" and self.sites():
            return "choice"
        if name == "item_code" and self.contract_items():
            return "choice"
        if "enum" in node:
            return "choice"
        t = node.get("type")
        if t == "string":
            fmt = node.get("format")
            if fmt == "date":
                return "date"
            if fmt == "date-time":
                return "datetime"
            return "textarea" if name in LONG_TEXT else "text"
        if t == "integer":
            return "int"
        if t == "number":
            return "number"
        if t == "boolean":
            return "bool"
        if t == "array":
            items = self.resolve(node.get("items", {}))
            return "rows" if items.get("type") == "object" else "lines"
        if t == "object":
            return "object"
        return "text"

    def choices(self, name: str, node: dict[str, Any]) -> list[tuple[str, str]]:
        if name == "site_id" and self.sites():
            return self.sites()
        if name == "item_code" and self.contract_items():
            return self.contract_items()
        return [(str(v), CHOICE_LABELS.get(str(v), str(v))) for v in node.get("enum", [])]


LONG_TEXT = {"scope", "division_of_work", "support_needed", "notes", "summary", "explanation", "finding"}


def zone_of(roster: Roster | None) -> str:
    """The site's IANA time zone: a project's, or an upgrade window's."""
    if isinstance(roster, ProjectIn):
        return roster.timezone
    if isinstance(roster, UpgradePlanIn):
        return roster.window.timezone
    if roster is not None:  # an incident's: its contract's zone
        return roster.timezone
    return "UTC"


def model_of(name: str | None) -> type[BaseModel] | None:
    return GATE_DATA_MODELS.get(name) if name else None


def _label(owner: str, name: str, node: dict[str, Any]) -> str:
    return LABELS.get(f"{owner}.{name}") or LABELS.get(name) or str(node.get("title", name))


def _properties(schema: _Schema, node: dict[str, Any]) -> list[tuple[str, dict[str, Any], bool]]:
    required = set(node.get("required", []))
    return [(n, p, n in required) for n, p in node.get("properties", {}).items()]


def initial_values(model_name: str | None, roster: Roster | None) -> dict[str, str]:
    """What a fresh form shows: survey rows one per site of the project, each with its site
    picked (ENG-4: one entry per site), and every required list with one row to fill."""
    model = model_of(model_name)
    if model is None:
        return {}
    schema = _Schema(model, roster)
    values: dict[str, str] = {}

    def visit(node: dict[str, Any], path: str) -> None:
        for name, prop, required in _properties(schema, node):
            sub, _ = schema.unwrap(prop)
            if schema.kind(name, sub) != "rows":
                continue
            items = schema.resolve(sub.get("items", {}))
            here = f"{path}.{name}"
            per_site = "site_id" in items.get("properties", {}) and schema.sites()
            count = len(schema.sites()) if per_site and required else max(1, int(sub.get("minItems", 1)))
            values[f"{here}.{ROWS}"] = str(count)
            for i in range(count):
                if per_site and required:
                    values[f"{here}.{i}.site_id"] = schema.sites()[i][0]
                visit(items, f"{here}.{i}")

    visit(schema.root, PREFIX)
    return values


def posted_values(form: Mapping[str, Any]) -> dict[str, str]:
    """The data fields of a posted form (and the add-a-row button), as plain strings."""
    return {
        k: str(v) for k, v in form.items() if (k.startswith(f"{PREFIX}.") or k == ADD) and isinstance(v, str)
    }


def _row_count(values: Mapping[str, str], path: str, add: str | None) -> int:
    try:
        count = int(values.get(f"{path}.{ROWS}", "1"))
    except ValueError:
        count = 1
    return max(0, min(MAX_ROWS, count + (1 if add == path else 0)))


def fields(
    model_name: str | None, roster: Roster | None, values: Mapping[str, str], errors: Mapping[str, str]
) -> list[FieldView]:
    """The inputs of a gate's data model, filled with `values`, each with its error if any."""
    model = model_of(model_name)
    if model is None:
        return []
    schema = _Schema(model, roster)
    add = values.get(ADD)

    def build(node: dict[str, Any], path: str, top: bool) -> list[FieldView]:
        owner = str(node.get(MODEL, ""))
        out = []
        for name, prop, required in _properties(schema, node):
            sub, nullable = schema.unwrap(prop)
            here = f"{path}.{name}"
            kind = schema.kind(name, sub)
            view = FieldView(
                path=here,
                label=_label(owner, name, sub),
                help=str(sub.get("description", "")),
                kind=kind,
                required=required and not nullable and kind not in ("bool", "rows"),
                value=values.get(here, ""),
                choices=schema.choices(name, sub),
                error=errors.get(here),
            )
            view.enforce = view.required and top
            if kind == "int":
                view.step = "1"
            elif kind == "number":
                view.step = "any"
            if "minimum" in sub:
                view.minimum = str(sub["minimum"])
            elif kind == "int" and "exclusiveMinimum" in sub:
                view.minimum = str(int(sub["exclusiveMinimum"]) + 1)
            if kind == "bool":
                view.value = values.get(here) == "on"
            if kind == "rows":
                items = schema.resolve(sub.get("items", {}))
                count = _row_count(values, here, add)
                view.value = str(count)
                view.rows = [build(items, f"{here}.{i}", False) for i in range(count)]
                view.row_errors = [errors.get(f"{here}.{i}") for i in range(count)]
            out.append(view)
        return out

    return build(schema.root, PREFIX, True)


def parse(model_name: str | None, roster: Roster | None, values: Mapping[str, str]) -> Parsed:
    """The data dict of a posted form. Blank optional inputs are left out (the model's default
    applies), blank rows are dropped, and an input that cannot be read is a field error."""
    model = model_of(model_name)
    if model is None:
        return Parsed({}, {}, True)
    schema = _Schema(model, roster)
    errors: dict[str, str] = {}
    filled = False

    def read(node: dict[str, Any], path: str) -> tuple[dict[str, Any], bool]:
        nonlocal filled
        out: dict[str, Any] = {}
        any_here = False
        for name, prop, _required in _properties(schema, node):
            sub, _ = schema.unwrap(prop)
            here = f"{path}.{name}"
            kind = schema.kind(name, sub)
            raw = values.get(here, "").strip()
            if kind == "bool":
                out[name] = values.get(here) == "on"
                any_here = any_here or out[name]
                continue
            if kind == "rows":
                items = schema.resolve(sub.get("items", {}))
                rows = []
                for i in range(_row_count(values, here, None)):
                    row, has = read(items, f"{here}.{i}")
                    if has:
                        rows.append(row)
                out[name] = rows
                any_here = any_here or bool(rows)
                continue
            if kind == "lines":
                lines = [line.strip() for line in values.get(here, "").splitlines() if line.strip()]
                out[name] = lines
                any_here = any_here or bool(lines)
                continue
            if not raw:
                continue
            any_here = True
            if kind in ("int", "number"):
                try:
                    number = float(raw.replace(",", "."))
                except ValueError:
                    errors[here] = MESSAGES["bad_number"]
                    continue
                if kind == "int":
                    if not number.is_integer():
                        errors[here] = MESSAGES["bad_whole"]
                        continue
                    out[name] = int(number)
                else:
                    out[name] = number
            elif kind == "datetime":
                try:
                    local = datetime.fromisoformat(raw)
                except ValueError:
                    errors[here] = MESSAGES["bad_time"]
                    continue
                if local.tzinfo is None:  # typed in the site's time, as the label says
                    local = local.replace(tzinfo=schema.zone())
                out[name] = local.isoformat()
            else:
                out[name] = raw
        filled = filled or any_here
        return out, any_here

    data, _ = read(schema.root, PREFIX)
    return Parsed(data, errors, not filled)


_LOC_RE = re.compile(r"^\d+$")


def field_errors(
    model_name: str | None, roster: Roster | None, data: Mapping[str, Any], decision: str
) -> dict[str, str]:
    """Where the model's own checks find fault with `data`, by input path; faults of a whole
    row or the whole form are kept on the row or on ``data``."""
    model = model_of(model_name)
    if model is None:
        return {}
    try:
        parsed = model.model_validate(dict(data))
    except ValidationError as exc:
        out: dict[str, str] = {}
        for e in exc.errors():
            path = ".".join([PREFIX, *(str(p) for p in e["loc"])])
            msg = (
                MESSAGES["missing"] if e["type"] == "missing" else str(e["msg"]).removeprefix("Value error, ")
            )
            out.setdefault(path, msg)
        return out
    try:
        if roster is not None:
            parsed.check_against(roster)  # type: ignore[attr-defined]
        parsed.check_for(decision)  # type: ignore[attr-defined]
    except ValueError as exc:
        return {PREFIX: str(exc)}
    return {}
