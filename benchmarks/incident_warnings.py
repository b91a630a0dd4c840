"""Incident warnings on time with thousands of open incidents (issue #11 benchmark; INC-4).

    python -m benchmarks.incident_warnings [--incidents 10000] [--window 300] [--poll 1.0]
                                           [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Why: the gate keeper mails owner and PM when an incident's clock reaches 50 % of its target.
With 10,000 open incidents whose clocks all run, how late is a warning, is any early, and what
does siteflow's pass (clocks computed from the events, business hours, the notice row, its mails
and its audit record in one transaction) cost over the least a keeper could do?

How: a fresh migrated database (SQLite under a temp dir; with ``--pg-url`` also a fresh
PostgreSQL database, dropped at the end). One contract with an SLA (critical: response 30 min).
N critical incidents are taken in through the real intake (``intake.take_intake``), received so
that their 50 % warnings fall due spread evenly over the next ``--window`` seconds (received =
due − 15 min). Then the real keeper pass, ``notices.send_due_notices()``, runs in a loop with the
keeper's wake-up (``--poll`` seconds between passes) until every warning is out. Lateness = the
warning's outbox row written (``outbox.created_at``) − its due time; early = written before due.

Baseline, same run, same database, same poll: a bare loop over a table of precomputed due times
(``bench_due``) that SELECTs what is due and not sent and, per incident in its own transaction,
writes one outbox row and marks it sent — no clocks, no notice row, no audit chain.
Prints per backend: warnings, early, lateness p50 / p95 / max, warnings per second, and the
ratios siteflow / bare. Not part of the test suite; no thresholds (the issue's goal: none early,
none more than 2 s late).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.fresh_database import database, example_contract, use_database

CONTRACT = "C-BENCH-1"
WARNING = "response:warning-50"
PM = "Li Wei <li.wei@contractor.example>"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


@dataclass(frozen=True)
class Outcome:
    label: str
    lateness: list[float]
    early: int
    seconds: float  # from the first due time until the last warning was written

    def line(self) -> str:
        if not self.lateness:
            return f"  {self.label:<9} no warnings"
        rate = len(self.lateness) / self.seconds if self.seconds > 0 else float("inf")
        return (
            f"  {self.label:<9} {len(self.lateness):>6} warnings, {self.early} early; lateness "
            f"p50 {statistics.median(self.lateness):6.2f} s  p95 {pct(self.lateness, 0.95):6.2f} s  "
            f"max {max(self.lateness):6.2f} s; {rate:7.1f} warnings/s"
        )


def contract() -> object:
    return example_contract(code=CONTRACT)


def take_in(prefix: str, count: int) -> list[str]:
    """N critical incidents through the real intake (received a minute ago); their keys."""
    from models.incident_run import IncidentReportIn
    from siteflow.db import session_scope
    from siteflow.incidents import intake, records

    with session_scope() as session:
        records.save_contract(session, contract=contract())  # type: ignore[arg-type]
    now = datetime.now(UTC)
    keys = []
    for i in range(count):
        key = f"{prefix}-{i:06d}"
        report = IncidentReportIn.model_validate(
            {
                "key": key,
                "received_at": now - timedelta(minutes=1),
                "channel": "phone",
                "contract": CONTRACT,
                "customer": "Nordnetz AG",
                "caller_name": "Jana Vogel",
                "caller_contact": "+49 30 1234 5678",
                "caller_email": "jana.vogel@nordnetz.example",
                "elements": [],
                "reported": "Voice service down.",
                "questionnaire": {"service_down_totally": "yes"},
                "owner_name": "Max Bauer",
                "owner_email": "max.bauer@contractor.example",
            }
        )
        with session_scope() as session:
            intake.take_intake(session, report=report, now=now)
        keys.append(key)
    return keys


def due_over(keys: list[str], first_due: datetime, window: float) -> list[tuple[str, datetime]]:
    """Move each incident's receipt so that its 50 % warning falls due over the window (a direct
    UPDATE of the fixture rows: taking 10,000 in takes longer than the window)."""
    from sqlalchemy import update

    from models.incident import Incident
    from siteflow.db import session_scope

    due = []
    for i, key in enumerate(keys):
        at = first_due + timedelta(seconds=window * i / max(len(keys) - 1, 1))
        due.append((key, at.replace(microsecond=(at.microsecond // 1000) * 1000)))
    with session_scope() as session:
        for key, at in due:
            session.execute(
                update(Incident).where(Incident.key == key).values(received_at=at - timedelta(minutes=15))
            )
    return due


def warm_up() -> None:
    """One keeper pass before anything is due: in service an incident is first looked at on the
    pass after its intake; after that a pass looks only at incidents due a look."""
    from siteflow.incidents.notices import send_due_notices

    assert send_due_notices() == [], "a warning fell due during the first look: raise --lead"


def siteflow_outcome(due: list[tuple[str, datetime]], poll: float, deadline: float) -> Outcome:
    from sqlalchemy import select

    from models.incident_run import IncidentNotice
    from models.outbox import OutboxMessage
    from siteflow.db import read_scope
    from siteflow.incidents.notices import send_due_notices

    keys = {k for k, _ in due}
    while time.monotonic() < deadline:
        sent = send_due_notices()
        with read_scope() as session:
            done = session.scalar(
                select(IncidentNotice.id)
                .where(IncidentNotice.notice_key == WARNING)
                .limit(1)
                .offset(len(keys) - 1)
            )
        if done is not None:
            break
        if not sent:
            time.sleep(poll)
    with read_scope() as session:
        written: dict[str, datetime] = {
            str(m.subject_ref): m.created_at
            for m in session.scalars(
                select(OutboxMessage).where(OutboxMessage.dedup_key.like(f"incident-notice:%:{WARNING}:%"))
            )
            if m.subject_ref in keys
        }
    return outcome("siteflow", due, written)


def bare_outcome(url: str, due: list[tuple[str, datetime]], poll: float, deadline: float) -> Outcome:
    """SELECT what is due, write one outbox row each and mark it sent: the least a keeper does."""
    from sqlalchemy import text

    from siteflow.db import engine_for

    engine = engine_for(url)
    with engine.begin() as conn:
        conn.execute(
            text("CREATE TABLE bench_due (key VARCHAR(64) PRIMARY KEY, due_at VARCHAR(40), sent INTEGER)")
        )
        conn.execute(
            text("INSERT INTO bench_due (key, due_at, sent) VALUES (:k, :d, 0)"),
            [{"k": k, "d": d.isoformat()} for k, d in due],
        )
    written: dict[str, datetime] = {}
    while time.monotonic() < deadline and len(written) < len(due):
        now = datetime.now(UTC).isoformat()
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT key FROM bench_due WHERE sent = 0 AND due_at <= :now ORDER BY due_at"),
                {"now": now},
            ).all()
        for (key,) in rows:
            with engine.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO outbox (id, dedup_key, subject_ref, recipient, title, body_text, "
                        "created_at, attempts, status) "
                        "VALUES (:id, :dedup, :key, :to, :title, :body, :at, 0, 'bench')"
                    ),
                    {
                        "id": str(uuid.uuid4()),
                        "dedup": f"bare:{key}",
                        "key": key,
                        "to": PM,
                        "title": f"[{key}] response clock: 50 %",
                        "body": "warning",
                        "at": datetime.now(UTC),
                    },
                )
                conn.execute(text("UPDATE bench_due SET sent = 1 WHERE key = :k"), {"k": key})
            written[str(key)] = datetime.now(UTC)
        if not rows:
            time.sleep(poll)
    return outcome("bare loop", due, written)


def outcome(label: str, due: list[tuple[str, datetime]], written: dict[str, datetime]) -> Outcome:
    lateness = [(written[k] - d).total_seconds() for k, d in due if k in written]
    first = min(d for _, d in due)
    last = max(written.values()) if written else first
    missing = len(due) - len(lateness)
    if missing:
        print(f"  {label}: {missing} warning(s) not written before the time limit")
    return Outcome(label, lateness, sum(1 for x in lateness if x < 0), (last - first).total_seconds())


def run_backend(backend: str, args: argparse.Namespace) -> None:
    home = Path(tempfile.mkdtemp(prefix=f"siteflow-incident-bench-{backend}-"))
    with database(backend, home, args.pg_url) as url:
        use_database(home, url)
        t0 = time.perf_counter()
        keys = take_in("BENCH-2026", args.incidents)
        took = time.perf_counter() - t0
        print(f"[{backend}] {args.incidents} incidents taken in through the intake in {took:.1f} s")
        lead = args.lead if args.lead is not None else 5.0 + 0.006 * args.incidents
        first_due = datetime.now(UTC) + timedelta(seconds=lead)
        due = due_over(keys, first_due, args.window)
        t0 = time.perf_counter()
        warm_up()
        took = time.perf_counter() - t0
        print(f"  the keeper's first look at every new incident: {took:.1f} s (lead {lead:.0f} s)")
        if datetime.now(UTC) > first_due:
            print("  note: the first look took longer than the lead; the first warnings were already due")
        limit = (
            time.monotonic() + max(0.0, (first_due - datetime.now(UTC)).total_seconds()) + args.window + 600
        )
        ours = siteflow_outcome(due, args.poll, limit)
        print(ours.line())
        bare_first = datetime.now(UTC) + timedelta(seconds=5)
        bare_due = [(k, bare_first + (d - first_due)) for k, d in due]
        bare = bare_outcome(url, bare_due, args.poll, time.monotonic() + 5 + args.window + 600)
        print(bare.line())
        if ours.lateness and bare.lateness:
            p50 = ratio(statistics.median(ours.lateness), statistics.median(bare.lateness))
            print(f"  ratio siteflow / bare: p50 {p50}, max {ratio(max(ours.lateness), max(bare.lateness))}")


def ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}x" if b > 0 else "n/a (bare 0)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--incidents", type=int, default=10_000)
    parser.add_argument(
        "--window", type=float, default=300.0, help="seconds over which the warnings fall due"
    )
    parser.add_argument(
        "--lead", type=float, default=None, help="seconds before the first warning is due (default: by N)"
    )
    parser.add_argument(
        "--poll", type=float, default=1.0, help="keeper wake-up, as SITEFLOW_KEEPER_POLL_SECONDS"
    )
    parser.add_argument("--pg-url", default=None, help="also on this PostgreSQL server (a fresh database)")
    args = parser.parse_args()
    print(__doc__.split("\n\n")[0])
    run_backend("sqlite", args)
    if args.pg_url:
        run_backend("postgresql", args)


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
