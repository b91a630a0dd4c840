"""`siteflow demo incident`: one critical incident phoned in at night, from the call to the
month's report, on the real parts — so a newcomer sees INC-1 … INC-10 work in one sitting.

The story is back-dated, never in the future: the call came in 55 minutes ago, at night in the
demo contract's zone (a zone where it is night now is chosen, so the 24×7 critical clocks show
against business hours). The owner is a staff account made as `siteflow users add` makes it;
the report goes through the intake and run start the web API uses, each field event through
the core with its `at`, the closure through the closure gate and the one decision path. The
demo's SLA targets are short enough that the keeper's travel warnings (50 %, 75 %) are due
while the engineer is on the way; the demo waits for them to be mailed before the engineer
arrives. A few sample incidents, back-dated within the month through the core records
functions, give the month's report (the same as `siteflow report incidents`) something to
compare with.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from models.gate import Gate, GateStatus
from models.incident_contract import ContractIn
from models.incident_input import EVENT_ADAPTER, ClosureIn, IncidentIn, OutageIn, ProblemReportIn
from models.incident_run import IncidentNotice, IncidentReportIn, IncidentRun
from models.project_input import Role
from siteflow.db import read_scope, session_scope
from siteflow.decisions import Signer, decide
from siteflow.incidents import intake, records
from siteflow.incidents.clocks import ClockKind
from siteflow.incidents.report import IncidentMonthReport, month_bounds, monthly_report
from siteflow.incidents.report_output import ReportFormat, render_report
from siteflow.incidents.run_start import start_incident_run
from siteflow.incidents.run_view import publish_clocks
from siteflow.stand_in_signers import as_staff, staff_account

Say = Callable[[str], None]

OWNER = Signer("Max Bauer", "max.bauer@contractor.example")
PM = ("Li Wei", "li.wei@contractor.example")
CLOSURE_GATE = "closure"  # flows.incident.CLOSURE_GATE
NIGHT_ZONES = (
    "Pacific/Auckland",
    "Asia/Tokyo",
    "Asia/Shanghai",
    "Asia/Kolkata",
    "Asia/Dubai",
    "Europe/Moscow",
    "Europe/Berlin",
    "Europe/London",
    "America/Sao_Paulo",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "Pacific/Honolulu",
)
"""Whole-hour zones around the globe: for any instant one of them is near 02:30 at night."""

AGO = 55
"""Minutes from the call to the start of the demo: the story's times are in the past."""
RESPONSE, ON_SITE_NEEDED, ON_MY_WAY, ON_SITE, RESTORED = 6, 9, 12, 52, 54
TARGETS = {"response_minutes": 15, "travel_minutes": 50, "restoration_minutes": 120}
"""Critical targets small enough that travel passes 50 % and 75 % (minutes 34, 46.5) before
the engineer arrives at 52 and no other clock warns (response 6 of 15, restoration 54 of 120)."""
PRODUCT_MINUTES, EXTERNAL_MINUTES = 40, 15


class DemoIncident(BaseModel):
    """What the demo did and what the month's report says of it."""

    model_config = ConfigDict(frozen=True)

    key: str
    flow_run_id: str
    element: str
    zone: str
    received_at: datetime
    warnings_mailed: list[str]
    response_minutes: float
    travel_minutes: float
    restoration_minutes: float
    outage_minutes: float
    product_minutes: float
    external_minutes: float
    samples: list[str]
    report: IncidentMonthReport
    report_path: Path


def night_zone(at: datetime) -> str:
    """The zone of NIGHT_ZONES whose local time at `at` is nearest 02:30."""

    def distance(zone: str) -> float:
        local = at.astimezone(ZoneInfo(zone))
        minutes = local.hour * 60 + local.minute - 150
        return abs((minutes + 720) % 1440 - 720)

    return min(NIGHT_ZONES, key=distance)


def demo_contract(code: str, zone: str) -> ContractIn:
    """Mon–Fri 08:00–18:00 in `zone` (major and minor clocks stop at night, critical never)."""
    days = ["monday", "tuesday", "wednesday", "thursday", "friday"]
    return ContractIn.model_validate(
        {
            "code": code,
            "customer": "Metro Fibre Ltd",
            "important_customer": False,
            "timezone": zone,
            "business_hours": [{"day": d, "start": "08:00", "end": "18:00"} for d in days],
            "sla": [
                {
                    "version": 1,
                    "effective_from": "2026-01-01T00:00:00+00:00",
                    "targets": [
                        {"severity": "critical", **TARGETS},
                        {
                            "severity": "major",
                            "response_minutes": 240,
                            "travel_minutes": 480,
                            "restoration_minutes": 480,
                        },
                        {"severity": "minor", "response_minutes": 480, "restoration_minutes": 2400},
                    ],
                }
            ],
            "pause_reasons": ["customer-room-closed", "waiting-for-customer"],
            "escalation": [{"role": "pm", "name": PM[0], "email": PM[1], "after_minutes": 30}],
        }
    )


SITE_ACCESS = {"duty_staff_consent": True, "duty_staff_name": "Max Weber (duty staff)", "badge": True}
"""COM-7: the demo engineer's site-access checklist, recorded with the on-site event."""


def _event(key: str, kind: str, at: datetime, note: str = "") -> None:
    """One field event by the owner, through the core's checks, as the web API records it."""
    raw: dict[str, object] = {"kind": kind, "at": at, "by": OWNER.name, "note": note}
    if kind == "on-site":
        raw["site_access"] = SITE_ACCESS
    event = EVENT_ADAPTER.validate_python(raw)
    with session_scope() as session:
        records.record_event(session, key=key, event=event, now=datetime.now(UTC))
    publish_clocks(key)


def _wait(check: Callable[[], Any], what: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.3)
    raise RuntimeError(f"{what} did not happen within {timeout:.0f}s")


def _travel_warnings(key: str) -> list[str]:
    with read_scope() as session:
        return sorted(
            session.scalars(
                select(IncidentNotice.notice_key).where(
                    IncidentNotice.incident_key == key, IncidentNotice.notice_key.like("travel:warning-%")
                )
            )
        )


def _mailed(mail_dir: Path, key: str, least: int) -> list[str]:
    """Subjects of the travel warnings that reached the mail catcher; [] until `least` did."""
    import email
    import email.policy

    subjects = []
    for path in mail_dir.glob("*.eml"):
        subject = str(email.message_from_bytes(path.read_bytes(), policy=email.policy.default)["Subject"])
        if f"[{key}] travel clock" in subject and subject not in subjects:
            subjects.append(subject)
    return sorted(subjects) if len(subjects) >= least else []


def _flow_state(run_id: str) -> str:
    from uuid import UUID

    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(UUID(run_id))
    return run.state.type.value if run.state is not None else ""


def _closure_gate(key: str) -> str | None:
    with read_scope() as session:
        return session.scalar(
            select(Gate.id).where(
                Gate.subject == key, Gate.key == CLOSURE_GATE, Gate.status == GateStatus.OPEN.value
            )
        )


def record_samples(code: str, stamp: str, before: datetime, say: Say) -> list[str]:
    """A few other incidents of the month, back-dated through the core records functions (no
    run: the keeper passes over them): a major one during business hours caused by our own work
    with an overdue problem report, a minor one, a major one whose response was late."""
    start, _ = month_bounds(f"{before:%Y-%m}")
    gap = min(timedelta(days=1), (before - start) / 4)
    if gap < timedelta(minutes=10):
        say("  (too early in the month for back-dated sample incidents)")
        return []
    samples = [
        ("major", "DEMO-CORE-2", 0.04, 0.3, True),
        ("minor", "DEMO-ACC-7", 0.1, 0.6, False),
        ("major", "DEMO-CORE-3", 0.5, 0.7, False),
    ]
    keys: list[str] = []
    for n, (severity, element, respond, restore, ours) in enumerate(samples, 1):
        key = f"INC-{before.year}-{stamp}{n}"
        received = before - n * gap
        with session_scope() as session:
            records.open_incident(
                session,
                incident=IncidentIn.model_validate(
                    {
                        "key": key,
                        "received_at": received,
                        "channel": "email",
                        "contract": code,
                        "customer": "Metro Fibre Ltd",
                        "caller_name": "Ana Souza",
                        "caller_contact": "+55 11 5555 0100",
                        "elements": [element],
                        "reported": f"{element}: alarms and degraded service.",
                        "severity": severity,
                        "emergency": False,
                        "affects_operation": True,
                        "owner": OWNER.name,
                    }
                ),
                now=received,
            )
            for kind, share in (("contacted", respond), ("restored", restore)):
                at = received + gap * share
                event = EVENT_ADAPTER.validate_python({"kind": kind, "at": at, "by": OWNER.name})
                records.record_event(session, key=key, event=event, now=at)
            down, up = received + gap * 0.01, received + gap * restore
            records.record_outage(
                session,
                key=key,
                outage=OutageIn.model_validate(
                    {
                        "element": element,
                        "type": "network-element",
                        "start": down,
                        "end": up,
                        "affected_units": 300,
                        "units_in_service": 5000,
                        "causes": [{"cause": "product" if ours else "customer", "start": down, "end": up}],
                        "our_work": ours,
                        "work_ref": "P-2026-001" if ours else None,
                    }
                ),
                now=up,
            )
            if ours:
                records.raise_problem_report(
                    session,
                    key=key,
                    report=ProblemReportIn(
                        title="Line card reboots after the patch",
                        office="Guangzhou office",
                        due=(up - timedelta(days=2)).date(),
                        by=OWNER.name,
                    ),
                    now=up,
                )
            records.close_incident(
                session,
                key=key,
                closure=ClosureIn(
                    description=f"{element} degraded",
                    cause="see outage",
                    solution="restored",
                    process="remote",
                    summary="Restored remotely.",
                    by=OWNER.name,
                ),
                now=up,
            )
        keys.append(key)
        say(f"  sample {key}: {severity}, {element}, received {received:%Y-%m-%d %H:%M} UTC")
    return keys


def month_report(month: str, as_of: datetime) -> IncidentMonthReport:
    """The month's figures from the database, exactly as `siteflow report incidents` builds them."""
    from siteflow.settings import get_settings

    start, end = month_bounds(month)
    with read_scope() as session:
        return monthly_report(
            month=month,
            incidents=records.incidents_received(session, start=start, end=end),
            outages=records.outages_started(session, start=start, end=end),
            problems=records.problem_reports(session, opened_before=end),
            contracts=records.contracts(session),
            as_of=as_of,
            threshold=timedelta(seconds=get_settings().outage_threshold_seconds),
        )


def play_incident(mail_dir: Path, output: Path, say: Say, timeout: float = 90) -> DemoIncident:
    """The demo on a running stack: the night's incident end to end, the samples, the report."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    received = now - timedelta(minutes=AGO)
    stamp = f"{datetime.now(UTC):%H%M%S}"
    key, element, code = f"INC-{received.year}-{stamp}0", f"OSN-DEMO-{stamp}", f"C-DEMO-{stamp}"
    zone = night_zone(received)
    local = received.astimezone(ZoneInfo(zone))
    with session_scope() as session:
        records.save_contract(session, contract=demo_contract(code, zone))
    staff_account(OWNER.name, OWNER.email, Role.ENGINEER)
    say(f"contract {code}: critical targets response 15 / travel 50 / restoration 120 min, 24×7 (INC-4)")

    report = IncidentReportIn.model_validate(
        {
            "key": key,
            "received_at": received,
            "channel": "phone",
            "contract": code,
            "customer": "Metro Fibre Ltd",
            "caller_name": "Ana Souza",
            "caller_contact": "+55 11 5555 0100",
            "caller_email": "ana.souza@metrofibre.example",
            "elements": [element],
            "reported": "All voice and data on the ring are down.",
            "questionnaire": {"service_down_totally": "yes"},
            "owner_name": OWNER.name,
            "owner_email": OWNER.email,
        }
    )
    with session_scope() as session:  # the web API's intake; the call-back in the same commit,
        taken = intake.take_intake(session, report=report, now=datetime.now(UTC))
        contacted = EVENT_ADAPTER.validate_python(  # so the keeper never sees a 55-min-old open response
            {"kind": "contacted", "at": received + timedelta(minutes=RESPONSE), "by": OWNER.name}
        )
        records.record_event(session, key=key, event=contacted, now=datetime.now(UTC))
    run_id = start_incident_run(report)
    say(
        f"{local:%H:%M} {zone}: {key} phoned in, {taken.severity.value}"
        + (" · emergency" if taken.emergency else "")
        + f" — owner {taken.owner} (INC-9); flow run {run_id}"
    )
    _wait(lambda: _closure_gate(key), "the run reaching its closure gate", timeout)

    def at(minutes: float) -> datetime:
        return received + timedelta(minutes=minutes)

    say(f"  +{RESPONSE:>2} min  contacted (the engineer called back)")
    for minutes, kind, note in (
        (ON_SITE_NEEDED, "on-site-needed", "line card must be replaced"),
        (ON_MY_WAY, "on-my-way", "spare card in the van"),
    ):
        _event(key, kind, at(minutes), note)
        say(f"  +{minutes:>2} min  {kind}")
    say("  the engineer is on the way; travel has used over 75 % of its 50 min: the keeper warns …")
    _wait(lambda: len(_travel_warnings(key)) >= 2, "the keeper's travel warnings", timeout)
    mailed: list[str] = _wait(lambda: _mailed(mail_dir, key, 2), "the warning mails", timeout)
    for subject in mailed:
        say(f"  mailed to owner and PM: {subject}")
    _event(key, "on-site", at(ON_SITE), "in the equipment room")
    say(f"  +{ON_SITE} min  on-site (travel {ON_SITE - ON_SITE_NEEDED} min of 50: on time)")

    down, split, up = at(-1), at(PRODUCT_MINUTES - 1), at(PRODUCT_MINUTES + EXTERNAL_MINUTES - 1)
    with session_scope() as session:
        records.record_outage(
            session,
            key=key,
            outage=OutageIn.model_validate(
                {
                    "element": element,
                    "type": "service-impact",
                    "start": down,
                    "end": up,
                    "affected_units": 1200,
                    "units_in_service": 8000,
                    "causes": [
                        {"cause": "product", "start": down, "end": split},
                        {"cause": "external", "start": split, "end": up},
                    ],
                    "note": "line card failed; then the site's mains power failed",
                }
            ),
            now=datetime.now(UTC),
        )
    say(
        f"  outage {element}: {PRODUCT_MINUTES} min product + {EXTERNAL_MINUTES} min external (INC-5 … INC-7)"
    )
    _event(key, "restored", at(RESTORED), "card replaced, power back")
    _event(key, "departure", now, "service stable")
    say(f"  +{RESTORED} min  restored; +{AGO} min  departure (COM-8: not before restoration)")

    gate_id = _closure_gate(key)
    assert gate_id is not None
    closure = {
        "description": "Ring down: line card failure, then a mains power failure at the site",
        "cause": "Faulty TN54 line card (product); mains power failure (external)",
        "solution": "Card replaced on site; power restored by the utility",
        "process": "Called back, on site, card replaced, waited for power",
        "summary": "Service restored 54 minutes after the call.",
    }
    result = decide(as_staff(gate_id, "close", OWNER, data=closure))
    say(f"  closure gate (INC-8): {result.message}")
    _wait(lambda: _flow_state(run_id) == "COMPLETED", "the run Completed", timeout)
    say(f"run {key} Completed")

    samples = record_samples(code, stamp, received, say)
    month = f"{received:%Y-%m}"
    figures = month_report(month, datetime.now(UTC))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render_report(figures, ReportFormat.HTML), encoding="utf-8")
    with read_scope() as session:
        clocks = records.incident_clocks(session, key=key, now=datetime.now(UTC))
        assert session.get(IncidentRun, key) is not None
    row = next(f for f in figures.outages_by_element if f.name == element)

    def spent(clock: ClockKind) -> float:
        return round(clocks.reading(clock).elapsed.total_seconds() / 60, 2)

    return DemoIncident(
        key=key,
        flow_run_id=run_id,
        element=element,
        zone=zone,
        received_at=received,
        warnings_mailed=mailed,
        response_minutes=spent(ClockKind.RESPONSE),
        travel_minutes=spent(ClockKind.TRAVEL),
        restoration_minutes=spent(ClockKind.RESTORATION),
        outage_minutes=row.minutes,
        product_minutes=row.product_minutes,
        external_minutes=round(row.minutes - row.product_minutes, 2),
        samples=samples,
        report=figures,
        report_path=output,
    )


def summary_lines(done: DemoIncident) -> list[str]:
    """The key figures, as the demo prints them."""
    r = done.report
    lines = [
        f"report {r.month}: {r.incidents} incidents ({r.emergencies} emergencies), "
        f"{r.outages_counted} outages counted, {len(r.breaches)} breaches, "
        f"{len(r.overdue_problems)} problem reports overdue",
        f"{done.key}: response {done.response_minutes:g} min, travel {done.travel_minutes:g} min, "
        f"restoration {done.restoration_minutes:g} min; outage {done.outage_minutes:g} min "
        f"({done.product_minutes:g} product, {done.external_minutes:g} external)",
    ]
    for c in r.outages_by_customer:
        lines.append(f"{c.name}: SO {c.so:g} (product {c.so_product:g}) — {r.so_formula}")
    lines.append(f"HTML report with charts: {done.report_path}")
    return lines


def run_incident_demo(say: Say, output: Path | None = None) -> DemoIncident:
    """Start the stack if it is not running (like the other demos), play, print the figures."""
    from siteflow.db import migrate
    from siteflow.settings import get_settings
    from siteflow.stack import Stack, prefect_healthy

    settings = get_settings()
    migrate()
    stack: Stack | None = None
    if not prefect_healthy(settings.resolved_prefect_api_url):
        say("siteflow is not running: starting it for the demo …")
        stack = Stack(settings, say=say)
        stack.start()
    try:
        target = output or settings.home / "reports" / f"incidents-{datetime.now(UTC):%Y-%m-%d-%H%M%S}.html"
        done = play_incident(settings.mail_dir, target, say)
    finally:
        if stack is not None:
            stack.stop()
    for line in summary_lines(done):
        say(line)
    return done
