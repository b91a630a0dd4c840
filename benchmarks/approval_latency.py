"""Approval latency and mail throughput (issue #4), measured against bare Prefect in the same run.

    python -m benchmarks.approval_latency [--approvals 50] [--mails 200]

Approval latency: from the POST on an approval link to the flow run being Running again,
over N approvals of a real project's readiness gate (answered "not-ready", so each round opens
the next gate), against bare Prefect's `resume_flow_run` → Running for a flow that only
suspends, served on the same server. Both answer --think seconds after the pause (default 2):
a paused run's process takes about a second to exit, and the runner starts the run again only
after that, which no person answering a mail would notice. Mail throughput: messages per
second from the outbox through the relay to a local SMTP server, against bare aiosmtplib
sending the same messages.
Prints medians, 95th percentiles and ratios. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import UUID

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def wait_state(run_id: str, wanted: str, since: float, timeout: float = 60) -> float:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        while time.perf_counter() - since < timeout:
            run = client.read_flow_run(UUID(run_id))
            if run.state and run.state.type.value == wanted:
                return time.perf_counter() - since
            time.sleep(0.02)
    raise TimeoutError(f"run {run_id} not {wanted}")


def link_for(mail_dir: Path, seen: set[Path], recipient: str) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for path in sorted(mail_dir.glob("*.eml")):
            if path in seen:
                continue
            msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if "待您决定" not in str(msg["Subject"]):  # invites and notices: never read again
                seen.add(path)
                continue
            if recipient in str(msg["To"]):
                seen.add(path)
                m = re.search(r"(http://\S+/a/\S+)", msg.get_body(("plain",)).get_content())  # type: ignore[union-attr]
                assert m, f"{path} carries no approval link"
                return m.group(1)
        time.sleep(0.05)
    raise TimeoutError("no approval mail")


def siteflow_latencies(n: int, think: float, phases: list[dict[str, float]]) -> list[float]:
    from siteflow.launch import start_project
    from siteflow.queries import list_gates

    raw = yaml.safe_load((ROOT / "examples" / "project.yaml").read_text(encoding="utf-8"))
    raw["code"] = f"BENCH-{int(time.time()) % 1000000}"
    from models.project_input import ProjectIn

    form = ProjectIn.model_validate(raw)
    customer = form.contacts[0]
    run_id = start_project(form)
    from siteflow.settings import get_settings

    mail_dir = get_settings().mail_dir
    seen: set[Path] = set()
    out = []
    with httpx.Client(timeout=60) as http:
        for i in range(n):
            key = f"survey-readiness-r{i + 1}"
            while not any(g.key == key for g in list_gates(form.code)):
                time.sleep(0.05)
            wait_state(run_id, "PAUSED", time.perf_counter())
            time.sleep(think)
            link = link_for(mail_dir, seen, customer.email)
            page = http.get(link).text
            token = re.search(r'name="form_token" value="([0-9a-f]+)"', page).group(1)  # type: ignore[union-attr]
            agreed = (date.today() + timedelta(days=i + 1)).isoformat()
            posted = datetime.now(UTC)
            r = http.post(link, data={"decision": "not-ready", "form_token": token, "agreed_date": agreed})
            if r.status_code != 200:
                error = re.search(r'class="error"[^>]*>(.*?)<', r.text, re.S)
                raise RuntimeError(f"approval {i + 1} refused ({r.status_code}): {error and error.group(1)}")
            out.append(running_again(run_id, posted))
            phases.append(phases_of(run_id, posted))
    return out


def running_again(run_id: str, since: datetime, timeout: float = 60) -> float:
    """Seconds from `since` to the run's next Running state, read from its state history: a
    resumed run may be Running only briefly before its next gate, too briefly to poll for."""
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            states = client.read_flow_run_states(UUID(run_id))
            running = [s.timestamp for s in states if s.type.value == "RUNNING" and s.timestamp >= since]
            if running:
                return (min(running) - since).total_seconds()
            time.sleep(0.02)
    raise TimeoutError(f"run {run_id} was not Running again within {timeout:.0f}s")


# Where an approval's time goes, from the run's own state history.
PHASES = {
    "SCHEDULED": "decision recorded and run resumed",
    "PENDING": "runner noticed the resumed run",
    "RUNNING": "run process started",
}


def phases_of(run_id: str, since: datetime) -> dict[str, float]:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        states = client.read_flow_run_states(UUID(run_id))
    out: dict[str, float] = {}
    last = since
    for kind in PHASES:
        at = min(
            (s.timestamp for s in states if s.type.value == kind and s.timestamp >= last),
            default=None,
        )
        if at is None:
            break
        out[kind] = (at - last).total_seconds()
        last = at
    return out


def bare_latencies(n: int, think: float) -> list[float]:
    from prefect.deployments import run_deployment
    from prefect.flow_runs import resume_flow_run

    run = run_deployment("bare-suspend/bare-suspend", parameters={"rounds": n}, timeout=0)
    out = []
    for _ in range(n):
        wait_state(str(run.id), "PAUSED", time.perf_counter())
        time.sleep(think)
        asked = datetime.now(UTC)
        resume_flow_run(run.id)
        out.append(running_again(str(run.id), asked))
    return out


def mail_throughput(m: int) -> tuple[float, float]:
    import aiosmtplib
    from aiosmtpd.controller import Controller

    from models.outbox import OutboxMessage
    from siteflow.db import session_scope
    from siteflow.outbox_relay import build_message, relay_once
    from siteflow.settings import get_settings
    from tests.test_outbox_relay import Inbox, free_port

    port = free_port()
    controller = Controller(Inbox(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings = get_settings().model_copy(update={"smtp_port": port})
        with session_scope() as session:
            rows = [
                OutboxMessage(
                    dedup_key=f"bench-{time.time()}-{i}",
                    subject_ref="BENCH",
                    recipient=f"客户 <c{i}@example.com>",
                    title=f"[BENCH] 通知 {i}",
                    body_text="正文 " * 50,
                )
                for i in range(m)
            ]
            session.add_all(rows)
        t0 = time.perf_counter()
        sent = 0
        while sent < m:
            batch = asyncio.run(relay_once(settings, limit=500)).sent
            if batch == 0:
                raise RuntimeError(f"the relay stopped after {sent} of {m} messages")
            sent += batch
        relay_rate = m / (time.perf_counter() - t0)
        messages = [build_message(r, settings) for r in rows]

        async def bare() -> None:
            for msg in messages:
                await aiosmtplib.send(msg, hostname="127.0.0.1", port=port)

        t1 = time.perf_counter()
        asyncio.run(bare())
        bare_rate = m / (time.perf_counter() - t1)
    finally:
        controller.stop()
    return relay_rate, bare_rate


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--approvals", type=int, default=50)
    parser.add_argument("--mails", type=int, default=200)
    parser.add_argument(
        "--think",
        type=float,
        default=2.0,
        help="seconds between a gate pausing and its answer (a person reading the page); "
        "under ~1 s the answer lands while the paused run's process is still exiting",
    )
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="siteflow-bench-"))
    os.environ.update(
        {
            "SITEFLOW_HOME": str(home),
            "SITEFLOW_PREFECT_PORT": "4330",
            "SITEFLOW_WEB_PORT": "8430",
            "SITEFLOW_SMTP_PORT": "8330",
        }
    )
    from siteflow.prefect_env import apply_prefect_environment, prefect_environment
    from siteflow.settings import get_settings

    apply_prefect_environment()
    from siteflow.stack import Stack

    stack = Stack(get_settings(), say=print)
    stack.start()
    bare = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bare_suspend"],
        cwd=ROOT,
        env=dict(os.environ) | prefect_environment(),
        stdout=(home / "bare-suspend.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        time.sleep(8)  # let the bare deployment register
        phases: list[dict[str, float]] = []
        ours = siteflow_latencies(args.approvals, args.think, phases)
        base = bare_latencies(args.approvals, args.think)
        # The stack's own relay would take some of the benchmark's messages.
        relay = stack.processes.pop("mail-relay")
        relay.terminate()
        relay.wait()
        relay_rate, bare_rate = mail_throughput(args.mails)
    finally:
        bare.terminate()
        stack.stop()
    print(f"\napproval latency over {args.approvals} approvals (POST → run Running again)")
    print(f"  siteflow  median {statistics.median(ours):.2f}s  p95 {pct(ours, 0.95):.2f}s")
    print(f"  bare      median {statistics.median(base):.2f}s  p95 {pct(base, 0.95):.2f}s  (resume_flow_run)")
    print(
        f"  ratio     median {statistics.median(ours) / statistics.median(base):.2f}x  "
        f"p95 {pct(ours, 0.95) / pct(base, 0.95):.2f}x"
    )
    for kind, what in PHASES.items():
        spent = [p[kind] for p in phases if kind in p]
        if spent:
            print(f"    siteflow: {what:<34} median {statistics.median(spent):.2f}s")
    print(f"\nmail throughput over {args.mails} messages")
    print(
        f"  outbox relay {relay_rate:.0f} msg/s, bare aiosmtplib {bare_rate:.0f} msg/s, "
        f"ratio {relay_rate / bare_rate:.2f}x"
    )


if __name__ == "__main__":
    main()
