"""How fast `siteflow gates decide` gets a decision recorded, against bare Python in the same run.

    python -m benchmarks.cli_decide [--runs 20] [--with-run]

Why: a decision typed just before an upgrade window's deadline races the deadline. What counts
is how long the command takes from being started to having the decision recorded, and how
far its stamp (the decision's recorded time) lies behind the moment it was started.

How: a temporary SITEFLOW_HOME with a migrated SQLite database, the sample project
(examples/project.yaml), N open gates its PM decides (opened with `open_gate.fn` as the tests
do, no document) and siteflow's real web service on a free port (uvicorn, in this process).
The PM's staff account is made and `siteflow login` run once; each `gates decide` then acts
through the web API with that token (issue #9). No Prefect server: the gates have no flow run,
or with --with-run a flow run on a port where nothing listens, so the web service goes on to
try to resume it after answering (that shows in neither number). Each run spawns the real
`siteflow` console script next to this Python and measures:

- recorded: spawn → the "recorded: …" line on its stdout (printed after the web's commit);
- exit: spawn → the process has exited;
- stamp lag: the decision's recorded time (gate_decisions.decided_at) minus the wall-clock
  time just before the spawn.

Baselines, interleaved with the runs so they see the same machine load: `python -c pass`
and `python -c "import typer, httpx, pydantic"` (the least a thin client on this stack pays).
Prints medians, 95th percentiles and ratios. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SITEFLOW = Path(sys.executable).parent / "siteflow"
BARE = "pass"
IMPORTS = "import typer, httpx, pydantic"
PASSWORD = "benchmark password 12345"


@dataclass(frozen=True)
class Run:
    recorded: float
    exited: float
    stamp_lag: float


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(home: Path, n: int, with_run: bool) -> tuple[list[str], str]:
    """A migrated database with the sample project and N open gates; returns them and the PM."""
    os.environ["SITEFLOW_HOME"] = str(home)
    from flows.signoffs import CONTRACTOR
    from models.gate_spec import Decision, GateKind, GateSpec
    from models.project import Project
    from models.project_input import ProjectIn, Role
    from siteflow.db import migrate, session_scope
    from tasks.gates import open_gate

    home.mkdir(parents=True, exist_ok=True)
    migrate()
    form = ProjectIn.model_validate(yaml.safe_load((ROOT / "examples" / "project.yaml").read_text("utf-8")))
    with session_scope() as session:
        session.add(Project.from_form(form, None))
    gates = []
    for i in range(n):
        spec = GateSpec(
            key=f"bench-signoff-{i}",
            kind=GateKind.PM_DECISION,
            rule="ENG-8",
            title=f"Benchmark sign-off {i}",
            parties=[CONTRACTOR],
            decisions=[Decision.APPROVE, Decision.REJECT],
        )
        run_id = str(uuid.uuid4()) if with_run else ""  # "": no run, nothing to resume
        gates.append(open_gate.fn(form.code, run_id, spec).id)
    pm = form.contacts_with(Role.PM)[0]
    return gates, f"{pm.name} <{pm.email}>"


def serve_and_login(signer: str, env: dict[str, str]) -> None:
    """The real web service in a thread, the PM's account, and `siteflow login` as the PM."""
    import threading

    import uvicorn

    from siteflow.decisions import Signer
    from siteflow.identity.roles import StaffRole
    from siteflow.identity.users import NewUser, add_user
    from siteflow.web import app

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=int(env["SITEFLOW_WEB_PORT"]), log_level="warning")
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    pm = Signer.parse(signer)
    add_user(NewUser(name=pm.name, email=pm.email, roles=[StaffRole.PM]), PASSWORD, "host-admin:benchmark")
    subprocess.run(
        [str(SITEFLOW), "login", "--email", pm.email, "--password-stdin"],
        env=env,
        input=PASSWORD + "\n",
        text=True,
        check=True,
        capture_output=True,
    )


def decide_once(gate_id: str, env: dict[str, str]) -> Run:
    """Spawn the real command; time the "recorded" line and the exit; read back its stamp."""
    from sqlalchemy import select

    from models.gate import GateDecision
    from siteflow.db import session_scope

    args = [str(SITEFLOW), "gates", "decide", gate_id, "--decision", "approve"]
    spawned_at = datetime.now(UTC)
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    recorded = None
    for line in proc.stdout:
        if recorded is None and line.startswith("recorded:"):
            recorded = time.perf_counter() - t0
    _, stderr = proc.communicate()
    exited = time.perf_counter() - t0
    if proc.returncode != 0 or recorded is None:
        raise RuntimeError(f"siteflow gates decide {gate_id} failed ({proc.returncode}): {stderr}")
    with session_scope() as session:
        stamp = session.execute(
            select(GateDecision.decided_at).where(GateDecision.gate_id == gate_id)
        ).scalar_one()
    return Run(recorded, exited, (stamp - spawned_at).total_seconds())


def baseline_once(code: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - t0


def line(label: str, values: list[float], against: list[float] | None = None) -> str:
    text = f"  {label:<48} median {statistics.median(values):6.3f}s  p95 {pct(values, 0.95):6.3f}s"
    if against:
        text += (
            f"  ({statistics.median(values) / statistics.median(against):.2f}x median, "
            f"{pct(values, 0.95) / pct(against, 0.95):.2f}x p95)"
        )
    return text


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument(
        "--with-run",
        action="store_true",
        help="gates with a flow run (on no server): the command then loads Prefect after recording",
    )
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="siteflow-bench-cli-"))
    gates, signer = prepare(home, args.runs, args.with_run)
    port = str(free_port())
    os.environ |= {"SITEFLOW_PREFECT_PORT": str(free_port()), "SITEFLOW_WEB_PORT": port}
    from siteflow.settings import reset_settings

    reset_settings()
    env = dict(os.environ) | {"SITEFLOW_CONFIG_DIR": str(home / "config"), "SITEFLOW_WEB_PORT": port}
    env.pop("PREFECT_API_URL", None)
    serve_and_login(signer, env)
    runs: list[Run] = []
    bare: list[float] = []
    imports: list[float] = []
    for gate_id in gates:  # interleaved: all three see the same machine load
        runs.append(decide_once(gate_id, env))
        bare.append(baseline_once(BARE))
        imports.append(baseline_once(IMPORTS))

    recorded = [r.recorded for r in runs]
    print(f"\nsiteflow gates decide over {args.runs} runs ({'with' if args.with_run else 'no'} flow run)")
    print(line("recorded (spawn → 'recorded' line)", recorded, imports))
    print(line("exit (spawn → process exited)", [r.exited for r in runs], imports))
    print(line("stamp lag (decided_at − spawn)", [r.stamp_lag for r in runs]))
    print("baselines, same run (ratios above are against the second)")
    print(line(f"python -c {BARE!r}", bare))
    print(line(f"python -c {IMPORTS!r}", imports))
    print(
        f"  'recorded' over bare python: {statistics.median(recorded) / statistics.median(bare):.1f}x median"
    )


if __name__ == "__main__":
    main()
