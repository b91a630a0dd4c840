"""Deadline precision (UPG-10) with 1,000 elements waiting at their decision, against a bare loop.

    python -m benchmarks.deadline_precision [--gates 1000] [--keepers 1,3] [--lead 3]
                                            [--poll 1.0] [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Why: at 04:00 every element nobody decided must be rolled back by `system:deadline` — late
rather than early, exactly once. With a whole night's elements waiting at the same deadline,
how late does the last one get, and what does the decision path (validation, signature,
attempt row, two audit-chain records per gate) cost over the least a keeper could do?

How: on a real database (SQLite under a temp dir, migrated with siteflow.db.migrate; and, with
`--pg-url`, PostgreSQL — a fresh database is created on that server and dropped at the end), an
upgrade window with N elements is booked and N decision gates are opened with `open_gate.fn`
(as tests/test_upgrade_rules.py's `open_decision_gate`; flow_run_id "" so nothing is resumed).
Opening N gates takes longer than "a few seconds", so they are opened with a placeholder
deadline a day away and then all set to one deadline `--lead` seconds ahead (a direct UPDATE
of the fixture rows). The real enforcer, `siteflow.deadlines.run_forever(stop, poll_seconds)`,
runs in K threads (K keepers racing, in one process: they share the GIL) until every gate is
decided. Lateness = gate_decisions.decided_at - gates.deadline per gate: median, p95, max;
early decisions (decided_at < deadline) and duplicates (more than one decision row per gate)
are counted. "All decided" is the wall time from the deadline until a separate reader sees
no open gate left (polled every 0.05 s).

Baseline, same run, same database, same K and poll interval and the same wake-up rule
(sleep until the next deadline or the poll interval, whichever is first): a bare loop that
SELECTs the due gates and UPDATEs each one closed in its own transaction — no decision path,
no gate_decisions / gate_attempts rows, no audit chain. Its lateness comes from
gates.decided_at. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from benchmarks.fresh_database import database, use_database

ROOT = Path(__file__).resolve().parent.parent
KeeperLoop = Callable[[threading.Event, float], None]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


@dataclass(frozen=True)
class Outcome:
    label: str
    lateness: list[float]  # seconds, one per gate (first decision)
    all_decided: float  # seconds from the deadline until no gate of the set was open
    early: int
    duplicates: int
    undecided: int
    attempts: int  # gate_attempts rows (siteflow only)

    @property
    def median(self) -> float:
        return statistics.median(self.lateness) if self.lateness else float("nan")


def plan_for(window_id: str, elements: int, night: date) -> Any:
    from models.upgrade_plan import UpgradePlanIn, resolve_runbook

    raw = resolve_runbook(
        yaml.safe_load((ROOT / "examples" / "upgrade-plan.yaml").read_text(encoding="utf-8")),
        ROOT / "examples",
    )
    template = raw["elements"][0]
    raw["id"] = window_id
    raw["window"] = {**raw["window"], "date": night.isoformat()}
    raw["elements"] = [
        {
            **template,
            "name": f"{window_id}-NE-{i:04d}",
            "address": f"sim-{window_id}-{i}",
            "simulation": {"step_seconds": 0, "reboot_seconds": 0},
        }
        for i in range(elements)
    ]
    raw["max_parallel"] = min(elements, 1000)
    return UpgradePlanIn.model_validate(raw)


def open_gates(window_id: str, elements: int, night: date) -> tuple[list[str], float]:
    """Book the window and open one decision gate per element; returns the ids and the time."""
    from models.gate_spec import Decision, GateKind, GateSpec, Party
    from models.project_input import Role
    from models.upgrade_evidence import gate_key_for
    from tasks.gates import open_gate
    from tasks.upgrade_records import register_window

    plan = plan_for(window_id, elements, night)
    t0 = time.perf_counter()
    register_window(plan)
    placeholder = datetime.now(UTC) + timedelta(days=1)
    ids = []
    for element in plan.elements:
        spec = GateSpec(
            key=gate_key_for(element.name),
            kind=GateKind.ROLLBACK_DECISION,
            rule="UPG-10",
            title=f"Commit or roll back {element.name}",
            parties=[Party(slot="pm", roles=[Role.PM])],
            decisions=[Decision.COMMIT, Decision.ROLLBACK],
            deadline=placeholder,
            default_decision=Decision.ROLLBACK,
        )
        ids.append(open_gate.fn(window_id, "", spec).id)  # no run to resume
    return ids, time.perf_counter() - t0


def set_deadline(window_id: str, deadline: datetime) -> None:
    from sqlalchemy import update

    from models.gate import Gate
    from siteflow.db import session_scope

    with session_scope() as session:
        session.execute(update(Gate).where(Gate.subject == window_id).values(deadline=deadline))


def bare_keeper(stop: threading.Event, poll_seconds: float) -> None:
    """The least a keeper can do: SELECT due gates, UPDATE each closed; run_forever's wake rule."""
    from sqlalchemy import func, select, update

    from models.gate import Gate, GateStatus
    from siteflow.db import session_scope

    open_ = GateStatus.OPEN.value
    while not stop.is_set():
        try:
            now = datetime.now(UTC)
            with session_scope() as session:
                due = session.execute(
                    select(Gate.id, Gate.default_decision)
                    .where(
                        Gate.status == open_,
                        Gate.default_decision.is_not(None),
                        Gate.deadline.is_not(None),
                        Gate.deadline <= now,
                    )
                    .order_by(Gate.deadline)
                ).all()
            for gate_id, default in due:
                with session_scope() as session:
                    session.execute(
                        update(Gate)
                        .where(Gate.id == gate_id, Gate.status == open_)
                        .values(
                            status=GateStatus.DECIDED.value, outcome=default, decided_at=datetime.now(UTC)
                        )
                    )
            with session_scope() as session:
                nearest = session.execute(
                    select(func.min(Gate.deadline)).where(
                        Gate.status == open_, Gate.default_decision.is_not(None)
                    )
                ).scalar_one_or_none()
            wait = None if nearest is None else (nearest - datetime.now(UTC)).total_seconds()
        except Exception as exc:  # as run_forever: a passing outage must not stop the loop
            logging.getLogger(__name__).warning("bare pass failed: %s", exc)
            wait = None
        stop.wait(poll_seconds if wait is None else min(poll_seconds, max(0.0, wait) + 0.001))


def count_open(reader: Any, window_id: str) -> int:
    from sqlalchemy import text

    with reader.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM gates WHERE subject = :s AND status = 'open'"), {"s": window_id}
            ).scalar_one()
        )


def race(
    label: str, loop: KeeperLoop, keepers: int, window_id: str, lead: float, poll: float, reader: Any
) -> float:
    """Start the keepers, set the deadline `lead` s ahead, wait until every gate is decided."""
    stop = threading.Event()
    threads = [
        threading.Thread(target=loop, args=(stop, poll), name=f"{label}-keeper-{i}", daemon=True)
        for i in range(keepers)
    ]
    for t in threads:
        t.start()
    try:
        time.sleep(poll * 1.5)  # the keepers are in their steady state: polling, nothing due
        deadline = datetime.now(UTC) + timedelta(seconds=lead)
        set_deadline(window_id, deadline)
        limit = time.monotonic() + lead + 600
        while count_open(reader, window_id) and time.monotonic() < limit:
            time.sleep(0.05)
        done_at = datetime.now(UTC)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=120)
    return (done_at - deadline).total_seconds()


def siteflow_outcome(window_id: str, all_decided: float) -> Outcome:
    from sqlalchemy import func, select

    from models.gate import Gate, GateAttempt, GateDecision
    from siteflow.db import session_scope

    with session_scope() as session:
        gates = {g.id: g for g in session.execute(select(Gate).where(Gate.subject == window_id)).scalars()}
        rows = session.execute(
            select(GateDecision.gate_id, GateDecision.decided_at).where(GateDecision.gate_id.in_(gates))
        ).all()
        attempts = session.execute(
            select(func.count()).select_from(GateAttempt).where(GateAttempt.gate_id.in_(gates))
        ).scalar_one()
    first: dict[str, datetime] = {}
    per_gate: dict[str, int] = {}
    early = 0
    for gate_id, decided_at in rows:
        per_gate[gate_id] = per_gate.get(gate_id, 0) + 1
        deadline = gates[gate_id].deadline
        assert deadline is not None
        if decided_at < deadline:
            early += 1
        if gate_id not in first or decided_at < first[gate_id]:
            first[gate_id] = decided_at
    lateness = [(at - d).total_seconds() for g, at in first.items() if (d := gates[g].deadline) is not None]
    return Outcome(
        label="siteflow enforcer",
        lateness=lateness,
        all_decided=all_decided,
        early=early,
        duplicates=sum(n - 1 for n in per_gate.values() if n > 1),
        undecided=len(gates) - len(first),
        attempts=int(attempts),
    )


def bare_outcome(window_id: str, all_decided: float) -> Outcome:
    from sqlalchemy import select

    from models.gate import Gate
    from siteflow.db import session_scope

    with session_scope() as session:
        rows = session.execute(select(Gate.deadline, Gate.decided_at).where(Gate.subject == window_id)).all()
    lateness = [(at - d).total_seconds() for d, at in rows if at is not None and d is not None]
    return Outcome(
        label="bare UPDATE loop",
        lateness=lateness,
        all_decided=all_decided,
        early=sum(1 for x in lateness if x < 0),
        duplicates=0,  # no decision rows: one UPDATE guarded by status = 'open'
        undecided=sum(1 for _, at in rows if at is None),
        attempts=0,
    )


def run_backend(backend: str, args: argparse.Namespace) -> list[tuple[int, Outcome, Outcome, float]]:
    from sqlalchemy import create_engine

    from siteflow.deadlines import run_forever

    home = Path(tempfile.mkdtemp(prefix=f"siteflow-deadline-{backend}-"))
    logging.basicConfig(  # as the gate keeper: one line per deadline decision, here to a file
        filename=str(home / "keeper.log"),
        level=logging.INFO,
        format="%(asctime)s %(threadName)s %(levelname)s %(message)s",
        force=True,
    )
    results = []
    with database(backend, home, args.pg_url) as url:
        use_database(home, url)
        reader = create_engine(url)  # a plain reader (no BEGIN IMMEDIATE), off the keepers' way
        try:
            for round_no, keepers in enumerate(args.keepers):
                night = date.today() + timedelta(days=30 + round_no)
                ours_id, bare_id = f"DLP-S{round_no + 1}", f"DLP-B{round_no + 1}"
                _, open_s = open_gates(ours_id, args.gates, night)
                print(f"  [{backend}] opened {args.gates} gates in {open_s:.1f}s; {keepers} keeper(s) racing")
                done = race("siteflow", run_forever, keepers, ours_id, args.lead, args.poll, reader)
                ours = siteflow_outcome(ours_id, done)
                open_gates(bare_id, args.gates, night)
                done = race("bare", bare_keeper, keepers, bare_id, args.lead, args.poll, reader)
                results.append((keepers, ours, bare_outcome(bare_id, done), open_s))
        finally:
            reader.dispose()
    return results


def report(backend: str, gates: int, poll: float, rows: list[tuple[int, Outcome, Outcome, float]]) -> None:
    print(f"\ndeadline precision on {backend}: {gates} decision gates, one deadline, poll {poll:.1f}s")
    print(
        f"  {'':<26}{'median':>9}{'p95':>9}{'max':>9}{'all decided':>13}{'early':>7}{'dupl.':>7}{'undec.':>8}"
    )
    for keepers, ours, bare, open_s in rows:
        print(f"  keepers: {keepers} (threads of one process)   [setup: {open_s:.1f}s to open the gates]")
        for o in (ours, bare):
            print(
                f"    {o.label:<24}{o.median:>8.3f}s{pct(o.lateness, 0.95):>8.3f}s{max(o.lateness):>8.3f}s"
                f"{o.all_decided:>12.3f}s{o.early:>7}{o.duplicates:>7}{o.undecided:>8}"
            )
        print(
            f"    {'ratio siteflow/bare':<24}{ours.median / bare.median:>8.1f}x{'':>9}{'':>9}"
            f"{ours.all_decided / bare.all_decided:>12.1f}x"
        )
        print(
            f"    siteflow: {gates / max(ours.all_decided, 1e-9):.0f} decisions/s, "
            f"{ours.attempts} gate_attempts rows; bare: {gates / max(bare.all_decided, 1e-9):.0f} updates/s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gates", type=int, default=1000, help="decision gates sharing one deadline")
    parser.add_argument(
        "--keepers",
        type=lambda s: [int(k) for k in s.split(",")],
        default=[1],
        help="comma-separated keeper counts, one round each (e.g. 1,3)",
    )
    parser.add_argument("--lead", type=float, default=3.0, help="seconds from setting the deadline to it")
    parser.add_argument("--poll", type=float, default=1.0, help="the enforcer's poll_seconds")
    parser.add_argument(
        "--pg-url",
        default=None,
        help="also on PostgreSQL: a URL of that server (a fresh database is created there and dropped)",
    )
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument(
        "--grace",
        type=float,
        default=1.0,
        help="SITEFLOW_DEADLINE_GRACE_SECONDS: the product's wait past the deadline (default 1 s)",
    )
    args = parser.parse_args()
    os.environ["SITEFLOW_DEADLINE_GRACE_SECONDS"] = str(args.grace)

    home = Path(tempfile.mkdtemp(prefix="siteflow-deadline-"))
    os.environ["SITEFLOW_HOME"] = str(home)
    from siteflow.prefect_env import apply_prefect_environment

    apply_prefect_environment()  # Prefect (imported with the tasks) keeps its files in the temp dir
    backends = ([] if args.no_sqlite else ["sqlite"]) + (["postgresql"] if args.pg_url else [])
    all_rows = {}
    for backend in backends:
        all_rows[backend] = run_backend(backend, args)
    for backend, rows in all_rows.items():
        report(backend, args.gates, args.poll, rows)
        for keepers, ours, _, _ in rows:
            beyond = [late - args.grace for late in ours.lateness]
            print(
                f"  {backend}, {keepers} keeper(s): siteflow waits {args.grace:.1f}s of grace on purpose "
                f"(a decision stamped before the deadline still wins); beyond it: median "
                f"{statistics.median(beyond):.3f}s, max {max(beyond):.3f}s"
            )
    print(
        "\nlateness = gate_decisions.decided_at (siteflow; the request time the enforcer stamps before its "
        "transaction, SITEFLOW_DEADLINE_GRACE_SECONDS after the deadline at the earliest) "
        "or gates.decided_at (bare) minus the deadline. Both loops wake at the deadline, so "
        "lateness is mostly queueing: gates are decided one transaction after another."
    )


if __name__ == "__main__":
    main()
