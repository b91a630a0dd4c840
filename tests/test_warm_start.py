"""Served runs are forked from a warm forkserver, not started as a new interpreter (issue #4:
"the paused flow continues within about a second").

The warm start hooks into Prefect internals and falls back to Prefect's cold start when they
move, which stays correct but silently costs about two seconds per answered gate. This test is
what notices: it watches the real serve process start a real project run.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.test_engineering_e2e import sample_form, wait_for_open_gate

pytestmark = pytest.mark.e2e


def processes() -> dict[int, tuple[int, str]]:
    """pid → (parent pid, command line) of every process, read from /proc."""
    found: dict[int, tuple[int, str]] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        found[int(proc.name)] = (ppid, cmdline)
    return found


def test_a_served_run_is_forked_from_the_warm_forkserver(stack_factory: Any) -> None:
    from siteflow.launch import start_project

    handle = stack_factory("sqlite")
    serve_pid = handle.stack.processes["deployments"].pid
    forkservers = [
        pid
        for pid, (ppid, cmd) in processes().items()
        if ppid == serve_pid and "multiprocessing.forkserver" in cmd
    ]
    assert len(forkservers) == 1, "the serve process runs no forkserver: runs start cold"
    forkserver = forkservers[0]
    assert "flows.engineering_project" in processes()[forkserver][1]  # preloaded

    form = sample_form(f"WARM-{int(time.time()) % 100000}")
    with handle.active():
        start_project(form)
        forked: set[int] = set()
        deadline = time.monotonic() + 60
        while not forked and time.monotonic() < deadline:
            forked = {pid for pid, (ppid, _) in processes().items() if ppid == forkserver}
            time.sleep(0.02)
        assert forked, "no run was forked from the forkserver within 60 s"
        # The forked run validated its parameters and reached the first gate: the flow went
        # by reference, with its module's globals, not as a half copy of the function.
        wait_for_open_gate(form.code, "survey-readiness-r1")
    log = (handle.settings.home / "logs" / "deployments.log").read_text(encoding="utf-8")
    assert "start cold" not in log
