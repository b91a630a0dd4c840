"""Incident handling (故障处理): intake → severity → acknowledgement → field work → closure.

Reads like docs/process.md §3. The run is named after the incident key and waits at gates without
holding a process (suspend re-runs the flow from the top; every task returns what it already
recorded). Field events (INC-4, INC-10, COM-8) and outages (INC-5 … INC-7) are not steps of
the flow: people record them through the web API while the run waits, checked by the core,
and each one publishes the clocks again. The flow itself touches nothing but tasks.
"""

from __future__ import annotations

from prefect import flow
from prefect.context import FlowRunContext
from prefect.runtime import flow_run

from flows.gate_wait import await_any_gate, await_gate, take_open_gates_answers
from models.gate_data import CustomerSeverityIn, IncidentClosureIn, OutageAttributionIn
from models.gate_spec import Decision, GateKind, GateSpec, Party
from models.incident_input import ClosureIn
from models.incident_run import IncidentReportIn
from models.project_input import Role
from siteflow.incidents.attribution import WAKE_KEY, DisputeRead, segments_text
from siteflow.links import gate_page
from tasks.gates import GateRead, open_gate
from tasks.incident_records import (
    close_incident,
    decide_attribution,
    incident_tags,
    mail_customer,
    read_disputes,
    register_incident,
    settle_severity,
    show_clocks,
)
from tasks.run_labels import tag_run

SEVERITY_GATE = "customer-severity"
CLOSURE_GATE = "closure"


def customer_severity_gate(candidates: list[str], because: list[str]) -> GateSpec:
    """INC-3: no level clearly applies — the customer chooses, and their level is final."""
    return GateSpec(
        key=SEVERITY_GATE,
        kind=GateKind.INCIDENT_SEVERITY,
        rule="INC-3",
        title="故障级别 / Severity of your incident",
        parties=[Party(slot="customer", roles=[Role.CUSTOMER])],
        decisions=[Decision.SUBMIT],
        data_model=CustomerSeverityIn.__name__,
        data_required_for=[Decision.SUBMIT],
        description="Please choose the level that fits: "
        + ", ".join(candidates)
        + (f" (open questions: {'; '.join(because)})" if because else "")
        + ". Until you answer we work to the most severe of them.",
    )


def closure_gate() -> GateSpec:
    """INC-8: the owner closes with description, cause, solution, process and summary."""
    return GateSpec(
        key=CLOSURE_GATE,
        kind=GateKind.INCIDENT_CLOSURE,
        rule="INC-8",
        title="Close the incident / 故障关闭",
        parties=[Party(slot="owner", roles=[Role.ENGINEER])],
        decisions=[Decision.CLOSE],
        data_model=IncidentClosureIn.__name__,
        data_required_for=[Decision.CLOSE],
        description="The owner (INC-9) closes it with `siteflow incidents close KEY --file closure.yaml`: "
        "description, cause, solution, process and summary, each filled in (INC-8).",
    )


def attribution_gate(dispute: DisputeRead) -> GateSpec:
    """INC-7: a disputed attribution is agreed with the customer; the customer decides."""
    return GateSpec(
        key=dispute.gate_key,
        kind=GateKind.OUTAGE_ATTRIBUTION,
        rule="INC-7",
        title=f"中断责任归属 / Who caused the outage of {dispute.element}?",
        parties=[Party(slot="customer", roles=[Role.CUSTOMER])],
        decisions=[Decision.SUBMIT],
        data_model=OutageAttributionIn.__name__,
        data_required_for=[Decision.SUBMIT],
        description=f"The outage of {dispute.element} from {dispute.start:%Y-%m-%d %H:%M} to "
        f"{dispute.end:%H:%M} UTC is recorded as: {segments_text(dispute.segments)}. "
        f"Disputed: {dispute.reason}. Please say which attribution holds — as recorded, or the "
        "whole outage the product's, the customer's or external. Your answer is final.",
    )


def acknowledgement(report: IncidentReportIn, severity: str, settled: bool) -> str:
    """COM-1: polite and positive; COM-2: the promise we make is on record (the outbox)."""
    level = severity if settled else f"{severity} (provisional until you confirm the level)"
    return (
        f"{report.caller_name}，您好 / Dear {report.caller_name},\n\n"
        f"我们已受理您的故障报告，编号 {report.key} / We have received your report; its key is "
        f"{report.key}.\n"
        f"级别 / Severity: {level}\n"
        f"报告内容 / What you reported: {report.reported}\n\n"
        "我们的工程师将尽快与您联系 / Our engineer will contact you shortly.\n"
        f"请在回复中注明编号 {report.key} / Please quote {report.key} in any reply.\n"
        "感谢您的支持！/ Thank you for your support."
    )


def summary_mail(report: IncidentReportIn, closure: IncidentClosureIn) -> str:
    return (
        f"{report.caller_name}，您好 / Dear {report.caller_name},\n\n"
        f"故障 {report.key} 已处理完毕 / Incident {report.key} is closed.\n\n"
        f"总结 / Summary: {closure.summary}\n"
        f"原因 / Cause: {closure.cause}\n"
        f"解决方案 / Solution: {closure.solution}\n\n"
        "感谢您的耐心与支持！/ Thank you for your patience and support."
    )


def incident_run_name() -> str:
    """The run is named after the incident key, e.g. INC-2026-0042."""
    report = flow_run.parameters.get("report")
    key = report.key if isinstance(report, IncidentReportIn) else dict(report or {}).get("key")
    return str(key or "incident")


def wait_for_closure(key: str, run_id: str) -> GateRead:
    """INC-8's closure gate; meanwhile INC-7: each disputed outage goes to the customer at its
    own gate, and their answer is recorded as final. One open-gates wait for all of them: a
    decision at any gate, or a dispute recorded meanwhile (the `WAKE_KEY` bell), re-runs the
    flow from the top, which opens what is new and waits again. Returns the closure gate once
    it is decided and no attribution waits for the customer."""
    closure_spec = closure_gate()
    attempt = 0
    while True:
        closing = open_gate.with_options(task_run_name="open-gate-closure")(key, run_id, closure_spec)
        waiting: list[tuple[GateRead, GateSpec]] = [] if closing.closed else [(closing, closure_spec)]
        for dispute in read_disputes(key):
            if not dispute.pending:
                continue
            spec = attribution_gate(dispute)
            gate = open_gate.with_options(task_run_name=f"open-gate-{spec.key}")(key, run_id, spec)
            if gate.closed:  # the customer answered: final (INC-7)
                holds = OutageAttributionIn.model_validate(gate.data()).holds
                decide_attribution(key, dispute.outage_id, holds, gate.signers[0])
            else:
                waiting.append((gate, spec))
        if not waiting:
            return closing
        attempt, refusals = take_open_gates_answers([gate for gate, _ in waiting])
        await_any_gate(waiting, attempt, describe_wait(waiting, refusals), wake=WAKE_KEY)


def describe_wait(waiting: list[tuple[GateRead, GateSpec]], refusals: list[str]) -> str:
    """The open-gates form's text: refusals just now, then where each gate is decided."""
    lines = "\n".join(
        f"- [**{spec.title}** ({spec.rule}) — gate `{gate.key}` in siteflow's workspace]"
        f"({gate_page(gate.id)})"
        for gate, spec in waiting
    )
    refused = "".join(f"{reason}\n\n" for reason in refusals)
    return (
        (f"{refused}---\n\n" if refused else "")
        + f"{lines}\n\nThe Prefect UI cannot tell who pressed Resume, so it takes no signature: the "
        "owner closes with `siteflow incidents close KEY --file closure.yaml`, the customer answers "
        "through the link mailed to them. An answer given here is refused and this form opens again; "
        f"`{WAKE_KEY}` only wakes the run (an outage's attribution was disputed, INC-7)."
    )


@flow(name="incident", flow_run_name=incident_run_name, persist_result=True, log_prints=True)
def run_incident(report: IncidentReportIn) -> str:
    """One incident from receipt to closure (docs/process.md §3, INC-1 … INC-10)."""
    ctx = FlowRunContext.get()
    assert ctx is not None and ctx.flow_run is not None
    run_id = str(ctx.flow_run.id)
    tags = incident_tags(report.key, report.customer, report.contract)
    if not set(tags) <= set(ctx.flow_run.tags):
        tag_run(run_id, tags)
    taken = register_incident(report, run_id)  # INC-4 received, INC-9 first receiver, INC-1 … INC-3
    customer = f"{report.caller_name} <{report.caller_email}>"
    mail_customer(
        report.key,
        "incident-acknowledged",
        customer,
        f"[{report.key}] 已受理 / We have your report",
        acknowledgement(report, taken.severity.value, taken.settled),
    )
    show_clocks(report.key)
    if not taken.settled:  # INC-3: ask the customer; their level is final
        gate = await_gate(
            report.key, customer_severity_gate([c.value for c in taken.candidates], taken.because)
        )
        level = CustomerSeverityIn.model_validate(gate.data()).severity
        taken = settle_severity(report.key, level, gate.signers[0])
        show_clocks(report.key)
    closing = wait_for_closure(report.key, run_id)  # field events and outages arrive meanwhile (web API)
    parts = IncidentClosureIn.model_validate(closing.data())
    close_incident(report.key, ClosureIn(**parts.model_dump(), by=closing.signers[0]))
    show_clocks(report.key)
    mail_customer(
        report.key,
        "incident-summary",
        customer,
        f"[{report.key}] 故障已关闭 / Your incident is closed",
        summary_mail(report, parts),
    )
    return f"incident {report.key} closed ({taken.severity.value})"
