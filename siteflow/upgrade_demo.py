"""`siteflow demo upgrade`: one sample window on simulated elements, time compressed.

The deadline is a few minutes away and the runbook's durations are scaled down to match, so
all three outcomes of docs/process.md §2 show in one sitting: committed by the PM, rolled back by
the PM after a failed test (a commit is refused first: the success criteria failed), and
rolled back by `system:deadline` because nobody answered (UPG-10).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from models.upgrade_evidence import gate_key_for
from models.upgrade_plan import DeadlineDay, UpgradePlanIn, resolve_runbook
from siteflow.decisions import DecisionRefused, Signer, decide
from siteflow.queries import list_gates, list_windows
from siteflow.stand_in_signers import proven

COMPRESSION = 0.02  # a 120 s reboot in the runbook takes 2.4 s here


def starting_now(
    raw: dict[str, Any], window_id: str, deadline_in: timedelta, elements: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """A plan (raw, runbook resolved) whose window opened a moment ago in the site's zone, on
    simulated elements copied from the plan's first one with the given fields (demo, tests).
    A deadline past local midnight says so (deadline_day next): it is never guessed."""
    zone = ZoneInfo(raw["window"]["timezone"])
    start = datetime.now(zone).replace(microsecond=0) - timedelta(seconds=5)
    deadline = start + deadline_in
    template = raw["elements"][0]
    return {
        **raw,
        "id": window_id,
        "window": {
            **raw["window"],
            "date": start.date().isoformat(),
            "start": start.time().isoformat(),
            "deadline": deadline.time().isoformat(),
            "deadline_day": DeadlineDay.NEXT.value if deadline.date() > start.date() else None,
        },
        "elements": [
            {**template, "name": name, "address": f"sim-{name.lower()}", **fields}
            for name, fields in elements.items()
        ],
        "max_parallel": len(elements),
    }


def demo_plan(raw: dict[str, Any], base: Path, minutes: float) -> UpgradePlanIn:
    raw = resolve_runbook(dict(raw), base)

    def compress(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: v * COMPRESSION if k == "est_seconds" else compress(v) for k, v in node.items()}
        if isinstance(node, list):
            return [compress(v) for v in node]
        return node

    raw["runbook"] = compress(raw["runbook"])
    fast = {"step_seconds": 0.3, "reboot_seconds": 2.0}
    window_id = f"{raw['id']}-{datetime.now(ZoneInfo(raw['window']['timezone'])):%H%M%S}"
    elements = {
        "DEMO-A": {"site": "Tianhe", "simulation": fast},
        "DEMO-B": {"site": "Panyu", "simulation": {**fast, "fail_tests": ["ospf"]}},
        "DEMO-C": {"site": "Huangpu", "simulation": fast},
    }
    return UpgradePlanIn.model_validate(starting_now(raw, window_id, timedelta(minutes=minutes), elements))


def _pm(plan: UpgradePlanIn) -> Signer:
    pm = next(c for c in plan.contacts if c.role.value == "pm")
    return Signer(pm.name, pm.email)


def _answer(
    plan: UpgradePlanIn, key: str, decision: str, data: dict[str, Any] | None, say: Callable[[str], None]
) -> bool:
    gate = next((g for g in list_gates(plan.id) if g.key == key), None)
    if gate is None:
        return False
    try:
        result = decide(proven(gate.id, decision, _pm(plan), data=data))  # the PM's own account
    except DecisionRefused as refused:
        say(f"  refused, as it should be: {refused.reason}")
        return False
    say(f"  {result.message}")
    return True


def drive(plan: UpgradePlanIn, say: Callable[[str], None]) -> dict[str, Any]:
    """Answer as a PM would; leave DEMO-C to the deadline."""
    script = [
        ("go-no-go", "go", {"tools_ready": True}, "the PM reviews the pre-check evidence and says go"),
        (gate_key_for("DEMO-A"), "commit", None, "DEMO-A passed every test: the PM commits it"),
        (
            gate_key_for("DEMO-B"),
            "commit",
            None,
            "DEMO-B failed its OSPF test: the PM tries to commit anyway …",
        ),
        (gate_key_for("DEMO-B"), "rollback", None, "… and rolls DEMO-B back (UPG-9)"),
    ]
    done = 0
    limit = time.monotonic() + (plan.window.deadline_at - plan.window.starts_at).total_seconds() + 300
    last = ""
    while time.monotonic() < limit:
        window = list_windows(plan.id)[0]
        status = ", ".join(f"{e['element']} {e.get('outcome') or e['phase']}" for e in window.elements)
        if status != last:
            say(f"[{datetime.now():%H:%M:%S}] {status}")
            last = status
        if window.state == "completed":
            return window.model_dump()
        if done < len(script):
            key, decision, data, story = script[done]
            if any(g.key == key for g in list_gates(plan.id)):
                say(story)
                _answer(plan, key, decision, data, say)
                done += 1
                continue
        elif done == len(script):
            say(
                f"nobody answers for DEMO-C: at {plan.window.deadline:%H:%M:%S} ({plan.window.timezone}) "
                "system:deadline rolls it back (UPG-10)"
            )
            done += 1
        time.sleep(1)
    raise RuntimeError(f"window {plan.id} did not complete; see its flow run in the Prefect UI")


def run_upgrade_demo(
    raw: dict[str, Any], base: Path, minutes: float, say: Callable[[str], None]
) -> dict[str, Any]:
    from siteflow.db import migrate
    from siteflow.launch import start_due_windows
    from siteflow.settings import get_settings
    from siteflow.stack import Stack, prefect_healthy
    from tasks.upgrade_records import register_window

    plan = demo_plan(raw, base, minutes)
    settings = get_settings()
    migrate()
    stack: Stack | None = None
    if not prefect_healthy(settings.resolved_prefect_api_url):
        say("siteflow is not running: starting it for the demo …")
        stack = Stack(settings, say=say)
        stack.start()
    try:
        say(register_window(plan).summary())
        start_due_windows(until=None, only=plan.id)
        say(
            f"window {plan.id} started: 3 simulated elements, deadline {plan.window.deadline:%H:%M:%S} "
            f"{plan.window.timezone} ({minutes:g} min from now)"
        )
        return drive(plan, say)
    finally:
        if stack is not None:
            stack.stop()
