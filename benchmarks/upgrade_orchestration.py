"""Orchestration cost of an upgrade window, per element, against bare Prefect in the same run.

    python -m benchmarks.upgrade_orchestration [--sizes 10,100,1000] [--max-parallel 64]

Why: an upgrade window's elements do almost nothing themselves here (simulated, zero-latency
steps), so what is left is siteflow's own cost — the step journal, phases, gates, audit chain,
mails, progress artifacts, the go/no-go suspend and resume — next to what Prefect alone costs
for the same count of units of work.

How: one real siteflow stack (siteflow.stack.Stack: Prefect server, served deployments, gate
keeper, web service, SMTP catcher, outbox relay) under a temp SITEFLOW_HOME on ports 4390 /
8490 / 8390, and beside it, on the same Prefect server, a served bare deployment. For each N:

- siteflow: a window of N simulated elements (examples/upgrade-plan.yaml and its runbook;
  step_seconds = reboot_seconds = 0; start now - 5 s, deadline 6 h later, in the site's zone),
  max_parallel = min(N, --max-parallel), booked with register_window and started with
  start_due_windows. This process answers the go/no-go gate as the plan's PM (data
  {"tools_ready": true}) and every element's decision gate with "commit" as soon as it shows in
  siteflow.queries.list_gates (polled every 0.2 s), through siteflow.decisions.decide with
  Door.CLI, from 8 threads. Measured from start_due_windows until list_windows says
  "completed" (polled every 0.5 s).
- bare: a plain flow, served the same way (one subprocess per flow run, ThreadPoolTaskRunner
  with 64 workers, tasks without cache or persisted results, as siteflow's), running
  N x units trivial tasks, units = the commands one element receives on the commit path
  (pre-checks + steps + tests + the version read at commit; cross-checked against the
  simulator's command counters), submitted max_parallel elements' worth at a time. Measured
  from run_deployment until the run is Completed (polled every 0.5 s).

CPU is read from /proc: utime + stime + cutime + cstime (cutime/cstime: children already
reaped, e.g. finished flow-run subprocesses) of every process in each component's process
tree, before the start and after the end — the end being when the server has recorded all
of the run's task runs (they reach it as events, recorded in the background), so the
server's backlog counts where it belongs; wall time stops at completion. Siteflow's figure
is the whole stack's tree; bare's is the Prefect server's tree plus the bare deployment's
serving process tree. The benchmark process (the PM answering gates, or starting the bare
run) is shown on its own line. Both include what the other side's idle processes cost the
shared server meanwhile; the idle rate is printed.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
PORTS = {"SITEFLOW_PREFECT_PORT": "4390", "SITEFLOW_WEB_PORT": "8490", "SITEFLOW_SMTP_PORT": "8390"}
BARE_DEPLOYMENT = "bare-window/bare-window"
TICK = os.sysconf("SC_CLK_TCK")
POLL_DONE = 0.5
POLL_GATES = 0.2


# --- the baseline flow --------------------------------------------------------------------
# Importing Prefect reads its settings, so this process must point at its stack first: the
# baseline flow is built on first use (`benchmarks.upgrade_orchestration.bare_window` is
# resolved through the module's __getattr__, also by the served flow runs).


@functools.cache
def _bare_window() -> Any:
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE
    from prefect.task_runners import ThreadPoolTaskRunner

    @task(name="bare-unit", cache_policy=NO_CACHE, persist_result=False)
    def bare_unit(i: int) -> int:
        return i

    @flow(name="bare-window", task_runner=ThreadPoolTaskRunner(max_workers=64))  # type: ignore[arg-type]
    def bare_window(elements: int, units: int, max_parallel: int) -> int:
        done = 0
        for first in range(0, elements, max_parallel):
            batch = range(first, min(elements, first + max_parallel))
            futures = [bare_unit.submit(e * units + u) for e in batch for u in range(units)]
            for f in futures:
                f.wait()
            done += len(futures)
        return done

    return bare_window  # served entrypoint: benchmarks.upgrade_orchestration.bare_window


def __getattr__(name: str) -> Any:
    if name == "bare_window":
        return _bare_window()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def serve_bare() -> None:
    from prefect import serve
    from prefect.types.entrypoint import EntrypointType

    from benchmarks.upgrade_orchestration import bare_window  # by module path, never __main__

    serve(
        bare_window.to_deployment(name="bare-window", entrypoint_type=EntrypointType.MODULE_PATH),
        print_starting_message=False,
    )


# --- CPU of process trees, from /proc ----------------------------------------------------


def _proc_table() -> dict[int, tuple[int, float]]:
    """pid -> (ppid, CPU seconds of the process and of its children already reaped)."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rfind(")") + 2 :].split()  # after "pid (comm) "; comm may hold spaces
        ppid = int(fields[1])
        utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
        table[int(entry)] = (ppid, (utime + stime + cutime + cstime) / TICK)
    return table


def tree_cpu(roots: dict[str, int]) -> dict[str, float]:
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    out = {}
    for name, root in roots.items():
        total, todo = 0.0, [root]
        while todo:
            pid = todo.pop()
            if pid in table:
                total += table[pid][1]
                todo.extend(children.get(pid, []))
        out[name] = total
    return out


def self_cpu() -> float:
    t = os.times()
    return t.user + t.system


@dataclass
class Meter:
    roots: dict[str, int]
    before: dict[str, float] = field(default_factory=dict)
    self_before: float = 0.0

    def start(self) -> None:
        self.before, self.self_before = tree_cpu(self.roots), self_cpu()

    def stop(self) -> tuple[dict[str, float], float]:
        after = tree_cpu(self.roots)
        return {k: after[k] - self.before.get(k, 0.0) for k in self.roots}, self_cpu() - self.self_before


# --- the siteflow window --------------------------------------------------------------------


def units_per_element(runbook: Any) -> int:
    """Commands one element receives on the commit path (see the simulator's counters)."""
    prechecks = (
        2 + (1 if runbook.backup.verify is not None else 0) + len(runbook.tests + runbook.rollback_tests)
    )
    steps = sum(len(p.steps) for p in runbook.phases)
    return prechecks + steps + len(runbook.tests) + 1  # + the version read when committing


def build_plan(window_id: str, n: int, max_parallel: int) -> Any:
    from models.upgrade_plan import DeadlineDay, UpgradePlanIn, resolve_runbook

    raw = resolve_runbook(
        yaml.safe_load((ROOT / "examples" / "upgrade-plan.yaml").read_text(encoding="utf-8")),
        ROOT / "examples",
    )
    zone = ZoneInfo(raw["window"]["timezone"])
    start = datetime.now(zone).replace(microsecond=0) - timedelta(seconds=5)
    deadline = start + timedelta(hours=6)
    raw["id"] = window_id
    raw["window"].update(
        date=start.date().isoformat(),
        start=start.time().isoformat(),
        deadline=deadline.time().isoformat(),
        deadline_day=DeadlineDay.NEXT.value if deadline.date() > start.date() else None,
    )
    template = raw["elements"][0]
    raw["elements"] = [
        {
            **template,
            "name": f"{window_id}-NE-{i:04d}",
            "address": f"sim-{i}",
            "simulation": {"step_seconds": 0, "reboot_seconds": 0},
        }
        for i in range(n)
    ]
    raw["max_parallel"] = max_parallel
    return UpgradePlanIn.model_validate(raw)


@dataclass
class Result:
    wall: float
    cpu: dict[str, float]
    bench_cpu: float
    notes: dict[str, Any]

    @property
    def stack_cpu(self) -> float:
        return sum(self.cpu.values())


class Pm:
    """The PM at the CLI: answers each gate as soon as it opens, from a few threads."""

    def __init__(self, window_id: str, plan: Any) -> None:
        from models.project_input import Role
        from siteflow.decisions import Signer

        pm = plan.contacts_with(Role.PM)[0]
        self.window_id = window_id
        self.signer = Signer(pm.name, pm.email)
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="pm")
        self.seen: set[str] = set()
        self.futures: list[Future[tuple[str, float, str]]] = []

    def _decide(
        self, gate_id: str, key: str, decision: str, data: dict[str, Any] | None
    ) -> tuple[str, float, str]:
        from siteflow.decisions import DecisionRefused, decide
        from siteflow.stand_in_signers import as_staff

        request = as_staff(gate_id, decision, self.signer, data=data)  # the PM's token, checked by decide
        t0 = time.perf_counter()
        try:
            result = decide(request)
            said = "complete" if result.complete else result.message
        except DecisionRefused as refused:
            said = f"refused: {refused.reason}"
        return key, time.perf_counter() - t0, said

    def answer_open_gates(self) -> None:
        from siteflow.queries import list_gates

        for gate in list_gates(self.window_id):
            if gate.id in self.seen:
                continue
            self.seen.add(gate.id)
            if gate.key == "go-no-go":
                self.futures.append(
                    self.pool.submit(self._decide, gate.id, gate.key, "go", {"tools_ready": True})
                )
            elif gate.key.startswith("decision-"):
                self.futures.append(self.pool.submit(self._decide, gate.id, gate.key, "commit", None))

    def results(self) -> list[tuple[str, float, str]]:
        self.pool.shutdown(wait=True)
        return [f.result() for f in self.futures]


def window_state(window_id: str) -> str:
    from siteflow.queries import list_windows

    rows = list_windows(window_id)
    return rows[0].state if rows else ""


def run_state(client: Any, run_id: str) -> str:
    run = client.read_flow_run(UUID(run_id))
    return run.state.type.value if run.state else ""


def count_task_runs(api: str, run_id: str) -> int:
    from siteflow.prefect_credential import basic_auth_header, prefect_auth_string
    from siteflow.settings import get_settings

    r = httpx.post(
        f"{api}/task_runs/count",
        json={"flow_runs": {"id": {"any_": [run_id]}}},
        headers=basic_auth_header(prefect_auth_string(get_settings())),  # Prefect's API wants it (#10)
        timeout=30,
    )
    r.raise_for_status()
    return int(r.json())


def server_drops() -> tuple[int, int]:
    """Events the Prefect server dropped so far: (in-memory queue full, too large to publish)."""
    from siteflow.settings import get_settings

    try:
        log = (get_settings().home / "logs" / "prefect-server.log").read_text(errors="replace")
    except OSError:
        return 0, 0
    return log.count("Subscription queue is full, dropping message"), log.count("Refusing to publish event")


def settled_task_runs(api: str, run_id: str, timeout: float = 120) -> tuple[int, bool]:
    """The run's task-run count once the server has recorded them all (task runs reach it as
    events, recorded in the background): unchanged over 3 reads a second apart."""
    limit = time.monotonic() + timeout
    seen = [-1]
    while time.monotonic() < limit:
        seen.append(count_task_runs(api, run_id))
        if len(seen) >= 3 and seen[-1] == seen[-2] == seen[-3]:
            return seen[-1], True
        time.sleep(1)
    return seen[-1], False


def run_siteflow(n: int, max_parallel: int, meter: Meter, api: str, timeout: float) -> Result:
    from prefect.client.orchestration import get_client
    from sqlalchemy import func, select

    from models.upgrade import JournalEntry
    from siteflow.db import session_scope
    from siteflow.elements.simulator import state_path
    from siteflow.launch import start_due_windows
    from siteflow.queries import list_windows
    from siteflow.settings import get_settings
    from tasks.upgrade_records import register_window

    window_id = f"BENCH-N{n}-{int(time.time()) % 100000}"
    plan = build_plan(window_id, n, max_parallel)
    t_plan = time.perf_counter()
    register_window(plan)
    plan_s = time.perf_counter() - t_plan
    pm = Pm(window_id, plan)

    drops = server_drops()
    meter.start()
    t0 = time.perf_counter()
    assert start_due_windows(until=None, only=window_id) == [window_id]
    wall = None
    next_state = t0
    while wall is None:
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError(f"window {window_id} did not complete in {timeout:.0f}s")
        pm.answer_open_gates()
        if time.perf_counter() >= next_state:
            next_state += POLL_DONE
            if window_state(window_id) == "completed":
                wall = time.perf_counter() - t0
                break
        time.sleep(POLL_GATES)
    row = list_windows(window_id)[0]
    assert row.flow_run_id is not None
    with get_client(sync_client=True) as client:
        while run_state(client, row.flow_run_id) != "COMPLETED":
            if time.perf_counter() - t0 > timeout:
                raise TimeoutError(f"flow run of {window_id} not Completed")
            time.sleep(POLL_DONE)
        run_wall = time.perf_counter() - t0
        task_runs, settled = settled_task_runs(api, row.flow_run_id)  # the server's backlog, too
        cpu, bench_cpu = meter.stop()
        states = client.read_flow_run_states(UUID(row.flow_run_id))
    answers = pm.results()
    times = [t for _, t, _ in answers]
    refused = [f"{k}: {s}" for k, _, s in answers if s.startswith("refused")]
    home = get_settings().home
    commands = sum(sum(json_counts(state_path(home, window_id, e.name)).values()) for e in plan.elements)
    with session_scope() as session:
        journal = session.execute(
            select(func.count()).select_from(JournalEntry).where(JournalEntry.window_id == window_id)
        ).scalar_one()
    return Result(
        wall=wall,
        cpu=cpu,
        bench_cpu=bench_cpu,
        notes={
            "window": window_id,
            "plan_s": plan_s,
            "run_wall": run_wall,
            "committed": sum(1 for e in row.elements if e["outcome"] == "committed"),
            "suspends": sum(1 for s in states if s.type.value == "PAUSED"),
            "task_runs": task_runs if settled else f"{task_runs} (still rising)",
            "journal_rows": int(journal),
            "commands": commands,
            "decide_calls": len(answers),
            "decide_median": statistics.median(times) if times else 0.0,
            "decide_max": max(times) if times else 0.0,
            "decide_slow": sum(1 for t in times if t > 4.0),
            "refused": refused,
            "drops": tuple(b - a for a, b in zip(drops, server_drops(), strict=True)),
        },
    )


def json_counts(path: Path) -> dict[str, int]:
    import json

    counts: dict[str, int] = json.loads(path.read_text())["executions"]
    return counts


def run_bare(n: int, units: int, max_parallel: int, meter: Meter, api: str, timeout: float) -> Result:
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    drops = server_drops()
    meter.start()
    t0 = time.perf_counter()
    run = run_deployment(
        BARE_DEPLOYMENT, parameters={"elements": n, "units": units, "max_parallel": max_parallel}, timeout=0
    )
    run_id = str(run.id)  # type: ignore[union-attr]
    with get_client(sync_client=True) as client:
        while (state := run_state(client, run_id)) != "COMPLETED":
            if state in ("FAILED", "CRASHED", "CANCELLED") or time.perf_counter() - t0 > timeout:
                raise RuntimeError(f"bare run {run_id} is {state}")
            time.sleep(POLL_DONE)
        wall = time.perf_counter() - t0
    task_runs, settled = settled_task_runs(api, run_id)  # the server's backlog, too
    cpu, bench_cpu = meter.stop()
    return Result(
        wall=wall,
        cpu=cpu,
        bench_cpu=bench_cpu,
        notes={
            "task_runs": task_runs if settled else f"{task_runs} (still rising)",
            "drops": tuple(b - a for a, b in zip(drops, server_drops(), strict=True)),
        },
    )


# --- the run --------------------------------------------------------------------------------


def wait_until(what: str, check: Callable[[], bool], timeout: float) -> None:
    limit = time.monotonic() + timeout
    while time.monotonic() < limit:
        if check():
            return
        time.sleep(0.5)
    raise TimeoutError(f"timed out waiting for {what}")


def fmt_cpu(cpu: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.1f}" for k, v in cpu.items() if v >= 0.05)


def report(n: int, max_parallel: int, units: int, ours: Result, bare: Result) -> None:
    o, b = ours.notes, bare.notes
    per = 1000.0 / n  # ms per element
    print(f"\nN = {n} elements, max_parallel = {max_parallel} (window {o['window']})")
    print(
        f"  siteflow  wall {ours.wall:7.1f}s ({ours.wall * per:7.1f} ms/element; flow run Completed at "
        f"{o['run_wall']:.1f}s)  CPU stack {ours.stack_cpu:7.1f}s ({ours.stack_cpu * per:7.1f} ms/element)"
        f"  + PM process {ours.bench_cpu:.1f}s"
    )
    print(f"            CPU by part: {fmt_cpu(ours.cpu)}")
    print(
        f"  bare      wall {bare.wall:7.1f}s ({bare.wall * per:7.1f} ms/element)"
        f"{'':>35}CPU server+bare {bare.stack_cpu:7.1f}s ({bare.stack_cpu * per:7.1f} ms/element)"
        f"  + starter process {bare.bench_cpu:.1f}s"
    )
    print(f"            CPU by part: {fmt_cpu(bare.cpu)}")
    ours_total, bare_total = ours.stack_cpu + ours.bench_cpu, bare.stack_cpu + bare.bench_cpu
    print(
        f"  ratio     wall {ours.wall / bare.wall:.2f}x   CPU {ours.stack_cpu / bare.stack_cpu:.2f}x "
        f"(stack vs server+bare), {ours_total / bare_total:.2f}x including the benchmark process"
    )
    print(
        f"  units of work: {units}/element x {n} = {units * n}; the simulator counted "
        f"{o['commands']} commands ({o['commands'] / n:.1f}/element). "
        f"Prefect task runs: siteflow {o['task_runs']}, bare {b['task_runs']}"
    )
    print(
        f"  siteflow did: {o['journal_rows']} journal rows, {o['suspends']} suspend(s) of the run, "
        f"{o['decide_calls']} decisions (decide(): median {o['decide_median']:.2f}s, max "
        f"{o['decide_max']:.2f}s, {o['decide_slow']} over 4 s), {o['committed']}/{n} committed; "
        f"planning (register_window, not measured above) {o['plan_s']:.2f}s"
    )
    for line in o["refused"][:5]:
        print(f"  REFUSED {line}")
    for who, (full, large) in (("siteflow", o["drops"]), ("bare", b["drops"])):
        if full or large:
            print(
                f"  WARNING during the {who} run the Prefect server dropped {full} event message(s) (its "
                f"in-memory queue of 10,000 was full) and refused {large} oversized event(s): task runs "
                "and states carried by them were not recorded, so the server did less work than the run "
                "asked of it and its CPU here is understated"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[10, 100, 1000],
        help="window sizes N, comma-separated (default 10,100,1000)",
    )
    parser.add_argument(
        "--max-parallel", type=int, default=64, help="cap of max_parallel (the flow runs 64 task threads)"
    )
    parser.add_argument("--timeout", type=float, default=1800, help="seconds allowed per run")
    parser.add_argument("--serve-bare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:  # the baseline deployment's process (started by the benchmark)
        serve_bare()
        return

    home = Path(tempfile.mkdtemp(prefix="siteflow-bench-upgrade-"))
    os.environ.update({"SITEFLOW_HOME": str(home), **PORTS})
    os.environ.pop("SITEFLOW_DATABASE_URL", None)
    os.environ.pop("SITEFLOW_PREFECT_API_URL", None)
    os.environ.pop("SITEFLOW_BLACKOUT_CALENDAR", None)
    from siteflow.prefect_credential import basic_auth_header, prefect_auth_string
    from siteflow.prefect_env import apply_prefect_environment, prefect_environment
    from siteflow.settings import get_settings

    apply_prefect_environment()
    from siteflow.stack import Stack

    settings = get_settings()
    api = settings.resolved_prefect_api_url
    print(f"siteflow home {home}; Prefect {api}; load average {os.getloadavg()[0]:.2f} (2 cores?)")
    stack = Stack(settings, say=print)
    bare: subprocess.Popen[bytes] | None = None
    results = []
    try:
        stack.start()
        bare = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.upgrade_orchestration", "--serve-bare"],
            cwd=ROOT,
            env=dict(os.environ) | prefect_environment() | {"PYTHONPATH": str(ROOT)},
            stdout=(home / "logs" / "bare-serve.log").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(
            "the bare deployment",
            lambda: (
                httpx.get(
                    f"{api}/deployments/name/{BARE_DEPLOYMENT}",
                    timeout=2,
                    headers=basic_auth_header(prefect_auth_string(settings)),  # Prefect wants it (#10)
                ).status_code
                == 200
            ),
            90,
        )
        roots = {name: proc.pid for name, proc in stack.processes.items()}
        ours_meter = Meter(roots)
        bare_meter = Meter({"prefect-server": roots["prefect-server"], "bare-serve": bare.pid})
        time.sleep(3)
        idle_meter = Meter(roots | {"bare-serve": bare.pid})
        idle_meter.start()
        time.sleep(10)
        idle, _ = idle_meter.stop()
        print("idle CPU over 10 s (s/s): " + ", ".join(f"{k} {v / 10:.3f}" for k, v in idle.items()))

        units = units_per_element(build_plan("BENCH-UNITS", 1, 1).runbook)
        for n in args.sizes:
            max_parallel = min(n, args.max_parallel)
            print(f"\n-- N = {n}: siteflow window ...", flush=True)
            ours = run_siteflow(n, max_parallel, ours_meter, api, args.timeout)
            print(f"   siteflow {ours.wall:.1f}s; bare flow of {n * units} tasks ...", flush=True)
            base = run_bare(n, units, max_parallel, bare_meter, api, args.timeout)
            print(f"   bare {base.wall:.1f}s", flush=True)
            results.append((n, max_parallel, units, ours, base))
    finally:
        if bare is not None and bare.poll() is None:
            os.killpg(bare.pid, signal.SIGTERM)
            try:
                bare.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(bare.pid, signal.SIGKILL)
                bare.wait()
        stack.stop()

    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")
    for n, max_parallel, units, ours, base in results:
        report(n, max_parallel, units, ours, base)
    for (n1, _, _, o1, b1), (n2, _, _, o2, b2) in zip(results, results[1:], strict=False):
        if n2 <= n1:
            continue
        per = 1000.0 / (n2 - n1)  # ms per added element: the fixed costs (process starts) cancel out
        ow, bw = (o2.wall - o1.wall) * per, (b2.wall - b1.wall) * per
        oc, bc = (o2.stack_cpu - o1.stack_cpu) * per, (b2.stack_cpu - b1.stack_cpu) * per
        print(
            f"\nmarginal cost per added element, N {n1} -> {n2}: siteflow wall {ow:.1f} ms, CPU {oc:.1f} ms; "
            f"bare wall {bw:.1f} ms, CPU {bc:.1f} ms; ratio wall {ow / bw:.2f}x, CPU {oc / bc:.2f}x"
        )
    print(
        """
What is and is not comparable:
- Units: the bare flow runs one Prefect task per unit of work (a command). siteflow runs one
  task per element and stage (pre-checks, upgrade + tests, decision gate, conclusion), and
  inside it journals every command as a database row written before and completed after
  (UPG-5), plus phase rows, gates, approval links, mails (outbox -> relay -> SMTP catcher),
  audit-chain records, progress artifacts and an upgrade report. Its Prefect task-run count
  is therefore far lower than bare's; its database work far higher.
- Gates: the go/no-go gate suspends the run (its process exits); the PM's decision resumes it,
  the runner starts a new process and the flow re-runs from the top, the journal turning every
  finished step into a no-op. A decision gate still open when the flow reaches it suspends it
  again the same way. That suspend/resume, and the time a process takes to start, are part of
  siteflow's wall and CPU here; bare has no gate at all.
- decide() resumes the run after a complete decision; when no gate of the run is left open and
  the run is not paused (yet), it waits up to 5 s for a pause (siteflow/resumer.py resume_run),
  polling Prefect every 0.1 s - that is in the PM process's CPU and in the slow decide() calls.
- CPU includes the idle polling of every process measured (runners, gate keeper, relay), at
  the idle rates printed above; the machine is shared, so run-to-run noise is real.
"""
    )


if __name__ == "__main__":
    main()
