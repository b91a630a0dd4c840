"""The month's incident report over 100,000 incidents and 20,000 outages (issue #11 benchmark).

    python -m benchmarks.incident_report [--incidents 100000] [--outages 20000]
                                         [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Why: `siteflow report incidents --month 2026-11` reads the month's incidents with their events,
its outages with their cause segments, and computes every figure (clocks on the contracts'
business hours, percentiles, TL 9000 SO annualised outage minutes). How long does that take at
a large contractor's volume, and what does it cost over the least a report could do?

How: a fresh migrated database (SQLite under a temp dir; with ``--pg-url`` also a fresh
PostgreSQL database, dropped at the end), filled by bulk inserts (the fixture, not the intake:
taking 100,000 incidents in one by one is not what is measured): 10 contracts, N incidents in
November 2026 (a mix of critical, major and minor, each with contacted / on-site-needed /
on-site / restored events), M outages with one to three cause segments. Timed, as the CLI does
it: reading the month (``records.incidents_received``, ``outages_started``, ``problem_reports``)
and ``monthly_report`` — and, separately, rendering the JSON and the HTML with its charts.

Baseline, same run, same database: bare SQL aggregation of the same kinds of figures — counts by
severity and emergency (GROUP BY), each incident's response and restoration minutes on the 24×7
clock (a join of incidents with their first contacted / restored event; median, 90th percentile
and max taken in Python over the fetched column), outage minutes and counts per element and per
customer and product-attributable minutes (GROUP BY over outages and cause segments). It does
not know business hours, SLA versions, pauses or the SO formula, so it is the least such a
report costs, not the same report. Not part of the test suite; no thresholds.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.fresh_database import database, example_contract, use_database

MONTH = "2026-11"
START = datetime(2026, 11, 1, tzinfo=UTC)
SECONDS_IN_MONTH = 30 * 24 * 3600
CONTRACTS = 10
ELEMENTS_PER_CONTRACT = 20


def contract(n: int) -> Any:
    """Ten contracts of the example's terms, in three zones, a third of them important, each
    with its covered elements and a holiday in the month."""
    return example_contract(
        code=f"C-BENCH-{n}",
        customer=f"Carrier {n}",
        important_customer=n % 3 == 0,
        timezone=["Europe/Berlin", "Asia/Shanghai", "America/New_York"][n % 3],
        holidays=[{"start": "2026-11-11", "name": "holiday"}],
        elements=[
            {"name": f"NE-{n}-{e:02d}", "units_in_service": 1000 + 100 * e}
            for e in range(ELEMENTS_PER_CONTRACT)
        ],
        customer_contacts=[],
        duty=None,
    )


def fill(incidents: int, outages: int, seed: int = 7) -> float:
    """The fixture, by bulk inserts; returns the seconds it took."""
    from sqlalchemy import insert

    from models.incident import Incident, IncidentEventRow, Outage, OutageCause
    from siteflow.db import session_scope
    from siteflow.incidents import records

    rng = random.Random(seed)
    t0 = time.perf_counter()
    with session_scope() as session:
        for n in range(CONTRACTS):
            records.save_contract(session, contract=contract(n))
    rows: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    keys: list[tuple[str, int, datetime]] = []
    for i in range(incidents):
        n = i % CONTRACTS
        received = START + timedelta(seconds=rng.randrange(SECONDS_IN_MONTH - 3 * 86400))
        severity = rng.choices(["critical", "major", "minor"], [1, 4, 15])[0]
        key = f"INC-2026-{i:06d}"
        keys.append((key, n, received))
        rows.append(
            {
                "key": key,
                "contract_code": f"C-BENCH-{n}",
                "customer": f"Carrier {n}",
                "received_at": received,
                "channel": "phone",
                "caller_name": "Caller",
                "caller_contact": "+49 30 1234 5678",
                "elements": [f"NE-{n}-{rng.randrange(ELEMENTS_PER_CONTRACT):02d}"],
                "reported": "Service degraded.",
                "severity": severity,
                "initial_severity": severity,
                "emergency": severity == "critical",
                "affects_operation": True,
                "owner": "Max Bauer <max.bauer@contractor.example>",
                "state": "closed",
                "closed_at": received + timedelta(days=2),
                "created_at": received,
            }
        )
        at = received
        for seq, kind in enumerate(("contacted", "on-site-needed", "on-site", "restored"), 1):
            at = at + timedelta(minutes=rng.randrange(5, 240))
            data: dict[str, Any] = {"kind": kind, "at": at.isoformat(), "by": "Max Bauer", "note": ""}
            if kind == "on-site":
                data["site_access"] = {
                    "duty_staff_consent": True,
                    "duty_staff_name": "Duty",
                    "badge": True,
                }
            events.append(
                {
                    "id": str(uuid.uuid4()),
                    "incident_key": key,
                    "seq": seq,
                    "kind": kind,
                    "at": at,
                    "by": "Max Bauer",
                    "data": data,
                    "recorded_at": at,
                }
            )
    outage_rows: list[dict[str, Any]] = []
    cause_rows: list[dict[str, Any]] = []
    for j in range(outages):
        key, n, received = keys[rng.randrange(len(keys))]
        start = received + timedelta(minutes=rng.randrange(1, 60))
        seconds = rng.choice([10, 15, 16, 60, 600, 3600, 7200])
        oid = str(uuid.uuid4())
        outage_rows.append(
            {
                "id": oid,
                "incident_key": key,
                "element": f"NE-{n}-{j % ELEMENTS_PER_CONTRACT:02d}",
                "type": rng.choice(["service-impact", "network-element"]),
                "start": start,
                "end": start + timedelta(seconds=seconds),
                "affected_units": rng.randrange(1, 500),
                "units_in_service": 1000 + 100 * (j % ELEMENTS_PER_CONTRACT),
                "our_work": j % 17 == 0,
                "work_ref": None,
                "note": "",
                "recorded_at": start,
            }
        )
        parts = rng.choice([1, 2, 3]) if seconds >= 3 else 1
        cursor = start
        for p in range(parts):
            end = start + timedelta(seconds=seconds * (p + 1) / parts)
            cause_rows.append(
                {
                    "id": str(uuid.uuid4()),
                    "outage_id": oid,
                    "cause": ["product", "customer", "external"][(j + p) % 3],
                    "start": cursor,
                    "end": end,
                    "agreed_by_customer": False,
                }
            )
            cursor = end
    with session_scope() as session:
        for table, batch in (
            (Incident, rows),
            (IncidentEventRow, events),
            (Outage, outage_rows),
            (OutageCause, cause_rows),
        ):
            for k in range(0, len(batch), 5000):
                session.execute(insert(table), batch[k : k + 5000])
    return time.perf_counter() - t0


def siteflow_report() -> tuple[float, float, float, Any]:
    """Read and compute as `siteflow report incidents` does; then render JSON and HTML."""
    from siteflow.db import read_scope
    from siteflow.incidents import records
    from siteflow.incidents.report import month_bounds, monthly_report
    from siteflow.incidents.report_output import ReportFormat, render_report

    start, end = month_bounds(MONTH, "UTC")
    t0 = time.perf_counter()
    with read_scope() as session:
        report = monthly_report(
            month=MONTH,
            zone="UTC",
            incidents=records.incidents_received(session, start=start, end=end),
            outages=records.outages_started(session, start=start, end=end),
            problems=records.problem_reports(session, opened_before=end),
            contracts=records.contracts(session),
            as_of=end + timedelta(days=10),
            threshold=timedelta(seconds=15),
        )
    computed = time.perf_counter() - t0
    t1 = time.perf_counter()
    render_report(report, ReportFormat.JSON)
    json_s = time.perf_counter() - t1
    t2 = time.perf_counter()
    render_report(report, ReportFormat.HTML)
    html_s = time.perf_counter() - t2
    return computed, json_s, html_s, report


def bare_report() -> tuple[float, dict[str, Any]]:
    """The least a report of the same kinds of figures costs: SQL aggregation, percentiles in
    Python over one fetched column each."""
    from sqlalchemy import and_, func, select

    from models.incident import Incident, IncidentEventRow, Outage, OutageCause
    from siteflow.db import read_scope

    start, end = START, START + timedelta(days=30)
    t0 = time.perf_counter()
    figures: dict[str, Any] = {}
    in_month = and_(Incident.received_at >= start, Incident.received_at < end)
    with read_scope() as session:
        figures["by_severity"] = session.execute(
            select(Incident.severity, Incident.emergency, func.count())
            .where(in_month)
            .group_by(Incident.severity, Incident.emergency)
        ).all()
        for kind in ("contacted", "restored"):
            pairs = session.execute(
                select(Incident.severity, Incident.received_at, IncidentEventRow.at)
                .join(IncidentEventRow, IncidentEventRow.incident_key == Incident.key)
                .where(in_month, IncidentEventRow.kind == kind)
            ).all()
            by_level: dict[str, list[float]] = {}
            for severity, received, at in pairs:
                by_level.setdefault(severity, []).append((at - received).total_seconds() / 60)
            figures[kind] = {
                level: (statistics.median(v), sorted(v)[int(0.9 * (len(v) - 1))], max(v))
                for level, v in by_level.items()
            }
        spans = session.execute(
            select(Outage.element, Incident.customer, Outage.start, Outage.end, Outage.affected_units)
            .join(Incident, Incident.key == Outage.incident_key)
            .where(Outage.start >= start, Outage.start < end)
        ).all()
        per_element: dict[str, float] = {}
        per_customer: dict[str, float] = {}
        for element, customer, o_start, o_end, units in spans:
            seconds = (o_end - o_start).total_seconds()
            if seconds <= 15:
                continue
            per_element[element] = per_element.get(element, 0.0) + units * seconds / 60
            per_customer[customer] = per_customer.get(customer, 0.0) + units * seconds / 60
        figures["per_element"], figures["per_customer"] = per_element, per_customer
        product = session.execute(
            select(OutageCause.start, OutageCause.end)
            .join(Outage, Outage.id == OutageCause.outage_id)
            .where(Outage.start >= start, Outage.start < end, OutageCause.cause == "product")
        ).all()
        figures["product_minutes"] = sum((e - s).total_seconds() for s, e in product) / 60
    return time.perf_counter() - t0, figures


def run_backend(backend: str, args: argparse.Namespace) -> None:
    home = Path(tempfile.mkdtemp(prefix=f"siteflow-report-bench-{backend}-"))
    with database(backend, home, args.pg_url) as url:
        use_database(home, url)
        took = fill(args.incidents, args.outages)
        print(f"[{backend}] {args.incidents} incidents, {args.outages} outages inserted in {took:.1f} s")
        bare_s, _ = bare_report()
        try:
            computed, json_s, html_s, report = siteflow_report()
        except Exception as exc:  # a limit met at this volume is a result too
            print(f"  siteflow report FAILED: {type(exc).__name__}: {str(exc)[:300]}")
            print(f"  bare SQL aggregation: {bare_s:.2f} s")
            return
        counted = sum(s.incidents for s in report.by_severity)
        print(
            f"  siteflow: read + computed {computed:.2f} s ({counted} incidents counted); "
            f"JSON {json_s:.2f} s; HTML with charts {html_s:.2f} s"
        )
        print(f"  bare SQL aggregation: {bare_s:.2f} s")
        print(f"  ratio siteflow / bare (read + compute): {computed / bare_s:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--outages", type=int, default=20_000)
    parser.add_argument("--pg-url", default=None, help="also on this PostgreSQL server (a fresh database)")
    args = parser.parse_args()
    print(__doc__.split("\n\n")[0])
    run_backend("sqlite", args)
    if args.pg_url:
        run_backend("postgresql", args)


if __name__ == "__main__":
    main()
