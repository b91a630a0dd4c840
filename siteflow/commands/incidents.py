"""`siteflow incidents …` and `siteflow report incidents`: incidents under SLA (INC-1 … INC-10)
as yourself, through the web API (:mod:`siteflow.web.incidents_api`); a contract and the month's
report work on the host's database. Exit 2 when refused (nothing changed), 1 when siteflow
could not be asked.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from siteflow.commands.host_database import ready_db
from siteflow.commands.incident_calls import incident_call
from siteflow.commands.outage_dispute import dispute_outage
from siteflow.commands.problems import raise_problem
from siteflow.commands.terminal import (
    console,
    fail,
    id_column,
    load_structured,
    text_columns,
    validation_message,
)

incidents_app = typer.Typer(help="Incidents under SLA (INC-1 … INC-10), as yourself.", no_args_is_help=True)
incidents_app.command("problem")(raise_problem)  # siteflow/commands/problems.py
incidents_app.command("dispute")(dispute_outage)  # siteflow/commands/outage_dispute.py


def print_incident(view: dict[str, Any]) -> None:
    from rich import box
    from rich.table import Table

    from siteflow.incidents.views import IncidentView, clock_rows
    from siteflow.site_time import site_time

    incident = IncidentView.model_validate(view)
    console.print(
        f"{incident.key} · {incident.customer} · contract {incident.contract} · {incident.severity.value}"
        + (" · emergency" if incident.emergency else "")
        + f" · {incident.state.value} · owner {incident.owner}",
        markup=False,
        highlight=False,
    )
    table = Table(box=box.SIMPLE_HEAD)
    id_column(table, "clock")
    text_columns(table, "state", "elapsed", "remaining", "%", f"due ({incident.zone}, UTC)")
    for row in clock_rows(incident):
        table.add_row(*row)
    console.print(table)
    if incident.record:
        record = Table(box=box.SIMPLE_HEAD, title="record (COM-2: customer messages included)")
        text_columns(record, f"at ({incident.zone})", "event", "by", "what")
        for line in incident.record:
            record.add_row(site_time(line.at, incident.zone), line.kind.value, line.by, line.what)
        console.print(record)


@incidents_app.command("open")
def incidents_open(
    file: Annotated[Path, typer.Argument(help="Incident form as YAML or JSON (examples/incident.yaml)")],
) -> None:
    """Open an incident as its first receiver (INC-9): you own it until it is closed. The rules
    propose the severity from the questionnaire (INC-1 … INC-3); the customer gets the key."""
    from models.incident_run import IncidentReportIn

    raw = load_structured(file)
    try:
        form = IncidentReportIn.model_validate(raw)
    except ValidationError as exc:
        raise fail(validation_message(exc)) from None
    out = incident_call("POST", "/api/incidents", form.model_dump(mode="json", exclude_none=True))
    settled = "" if out["settled"] else " (provisional: the customer is asked, INC-3)"
    console.print(
        f"opened incident {out['key']}: {out['severity']}{settled}; owner {out['owner']}",
        markup=False,
        highlight=False,
    )
    console.print(f"  Prefect UI: {out['prefect_url']}", markup=False, highlight=False, soft_wrap=True)


@incidents_app.command("event")
def incidents_event(
    key: Annotated[str, typer.Argument(help="Incident key")],
    kind: Annotated[
        str,
        typer.Argument(
            help="contacted, on-site-needed, on-my-way, on-site, restored, pause, resume, departure; "
            "request or promise (to the customer, COM-2: --what, a promise's --due)"
        ),
    ],
    reason: Annotated[str | None, typer.Option(help="A pause's reason code (the contract's list)")] = None,
    at: Annotated[
        str | None, typer.Option(help="When it happened, ISO 8601 with offset; default now")
    ] = None,
    note: Annotated[str, typer.Option(help="A note kept with the event")] = "",
    duty_staff: Annotated[
        str, typer.Option(help="on-site: the customer's duty staff who agreed to entry (COM-7)")
    ] = "",
    badge: Annotated[bool, typer.Option(help="on-site: badges are worn (COM-7)")] = False,
    removable_media: Annotated[
        bool, typer.Option(help="on-site: removable media is used on the customer's computers")
    ] = False,
    room_supervisor: Annotated[
        str, typer.Option(help="on-site with removable media: the room supervisor who agreed (COM-7)")
    ] = "",
    what: Annotated[str, typer.Option(help="request/promise: what was asked or promised (COM-2)")] = "",
    due: Annotated[
        str | None, typer.Option(help="promise: by when, ISO 8601 with offset (you are reminded then)")
    ] = None,
) -> None:
    """Record a field event as yourself (INC-4; COM-8: no departure before restoration; COM-7:
    on-site only with the site-access checklist — --duty-staff NAME --badge)."""
    body: dict[str, object] = {
        "kind": kind,
        "at": at,
        "reason": reason,
        "note": note,
        "what": what,
        "due": due,
    }
    if kind == "on-site" and (duty_staff or badge or removable_media or room_supervisor):
        body["site_access"] = {
            "duty_staff_consent": bool(duty_staff),
            "duty_staff_name": duty_staff,
            "badge": badge,
            "removable_media": removable_media,
            "room_supervisor_consent": bool(room_supervisor),
            "room_supervisor_name": room_supervisor,
        }
    out = incident_call("POST", f"/api/incidents/{key}/events", body)
    console.print(f"recorded {out['kind']} on {out['key']} by {out['by']}", markup=False, highlight=False)
    print_incident(out["incident"])


@incidents_app.command("show")
def incidents_show(
    key: Annotated[str, typer.Argument(help="Incident key")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Each clock's elapsed, remaining, percentage and due time (INC-4), on the contract's clock."""
    out = incident_call("GET", f"/api/incidents/{key}")
    if as_json:
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return
    print_incident(out)


@incidents_app.command("list")
def incidents_list(
    open_: Annotated[bool, typer.Option("--open", help="Only open incidents")] = False,
    breached: Annotated[bool, typer.Option("--breached", help="Only those with a missed target")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Incidents with their level, state and clocks."""
    from rich import box
    from rich.table import Table

    from siteflow.incidents.views import IncidentView, duration

    query = f"?open={str(open_).lower()}&breached={str(breached).lower()}"
    out = incident_call("GET", f"/api/incidents{query}")
    if as_json:
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return
    table = Table(box=box.SIMPLE_HEAD)
    id_column(table, "key")
    text_columns(table, "customer", "severity", "state", "clocks (elapsed / %)")
    for raw in out:
        v = IncidentView.model_validate(raw)
        clocks = ", ".join(
            f"{c.clock.value} {duration(c.elapsed_seconds)}"
            + (f" {c.percent:.0f}%" if c.percent is not None else "")
            + (" BREACHED" if c.breached else "")
            for c in v.clocks
        )
        table.add_row(v.key, v.customer, v.severity.value, v.state.value, clocks)
    console.print(table)


@incidents_app.command("outage")
def incidents_outage(
    key: Annotated[str, typer.Argument(help="Incident key")],
    file: Annotated[
        Path, typer.Argument(help="Outage as YAML or JSON: element, type, start, end, units, causes")
    ],
) -> None:
    """Record an outage with its cause segments (INC-5 … INC-7); they must add up to it."""
    out = incident_call("POST", f"/api/incidents/{key}/outages", load_structured(file))
    counted = "counted" if out["counted"] else "kept, not counted (15 s or less, INC-5)"
    disputed = (
        "; disputed: the customer is asked to decide its attribution (INC-7)" if out["disputed"] else ""
    )
    console.print(
        f"recorded outage {out['outage_id']} on {key}: {counted}{disputed}", markup=False, highlight=False
    )


@incidents_app.command("close")
def incidents_close(
    key: Annotated[str, typer.Argument(help="Incident key")],
    file: Annotated[Path, typer.Option("--file", help="description, cause, solution, process, summary")],
) -> None:
    """Close it as its owner (INC-8): all five parts; the customer is mailed the summary."""
    raw = load_structured(file)
    if not isinstance(raw, dict):
        raise fail(f"{file} must hold the five parts of a closure")
    out = incident_call("POST", f"/api/incidents/{key}/close", raw)
    console.print(out["message"], markup=False, highlight=False)
    if out["resuming"]:
        console.print(f"{key}'s run is being resumed: it closes and mails the summary.", highlight=False)


@incidents_app.command("handover")
def incidents_handover(
    key: Annotated[str, typer.Argument(help="Incident key")],
    to: Annotated[str, typer.Option("--to", help="The colleague's staff email")],
    note: Annotated[str, typer.Option(help="Why, for the colleague")] = "",
) -> None:
    """Ask a colleague to take over an incident you own (INC-9); you stay its owner until they accept."""
    out = incident_call("POST", f"/api/incidents/{key}/handover", {"to": to, "note": note})
    console.print(
        f"asked {out['to']} to take over {key}; {out['owner']} owns it until they accept",
        markup=False,
        highlight=False,
    )


@incidents_app.command("accept")
def incidents_accept(key: Annotated[str, typer.Argument(help="Incident key")]) -> None:
    """Accept an incident handed over to you (INC-9): from now on you own it."""
    out = incident_call("POST", f"/api/incidents/{key}/handover/accept", {})
    console.print(
        f"you own {key} now ({out['reassignments']} reassignment(s))", markup=False, highlight=False
    )


@incidents_app.command("decline")
def incidents_decline(key: Annotated[str, typer.Argument(help="Incident key")]) -> None:
    """Decline an incident handed over to you (INC-9): its owner keeps it."""
    out = incident_call("POST", f"/api/incidents/{key}/handover/decline", {})
    console.print(f"declined; {out['owner']} still owns {key}", markup=False, highlight=False)


@incidents_app.command("contract")
def incidents_contract(
    file: Annotated[Path, typer.Argument(help="Contract as YAML or JSON (examples/incident-contract.yaml)")],
) -> None:
    """Record a support contract or new terms (host admin, on siteflow's database)."""
    ready_db()
    from models.incident_contract import ContractIn
    from siteflow.db import session_scope
    from siteflow.incidents.records import save_contract

    try:
        contract = ContractIn.model_validate(load_structured(file))
    except ValidationError as exc:
        raise fail(validation_message(exc)) from None
    with session_scope() as session:
        save_contract(session, contract=contract)
    console.print(f"contract {contract.code} of {contract.customer} recorded", markup=False, highlight=False)


def report_incidents(
    month: Annotated[str, typer.Option(help="The month, YYYY-MM (e.g. 2026-11)")],
    fmt: Annotated[str, typer.Option("--format", help="html, csv or json")] = "html",
    zone: Annotated[str, typer.Option(help="IANA zone of the month's bounds")] = "UTC",
    output: Annotated[Path | None, typer.Option(help="Write here instead of standard output")] = None,
) -> None:
    """The month's incident report (INC-1 … INC-7, TL 9000 SO annualised), from the database."""
    from siteflow.clock import utc_now
    from siteflow.db import read_scope
    from siteflow.incidents import records
    from siteflow.incidents.report import month_bounds, monthly_report
    from siteflow.incidents.report_output import ReportFormat, render_report
    from siteflow.settings import get_settings

    try:
        chosen = ReportFormat(fmt)
        start, end = month_bounds(month, zone)
    except (ValueError, KeyError) as exc:
        raise fail(f"{exc} (formats: html, csv, json)") from None
    ready_db()
    from datetime import timedelta

    with read_scope() as session:
        report = monthly_report(
            month=month,
            zone=zone,
            incidents=records.incidents_received(session, start=start, end=end),
            outages=records.outages_started(session, start=start, end=end),
            problems=records.problem_reports(session, opened_before=end),
            contracts=records.contracts(session),
            as_of=utc_now(),
            threshold=timedelta(seconds=get_settings().outage_threshold_seconds),
        )
    text = render_report(report, chosen)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        console.print(f"wrote {output}")
