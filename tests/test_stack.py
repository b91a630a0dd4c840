"""The embedded default refuses to start on a taken port, before starting anything: a
leftover catcher from an earlier run would otherwise silently receive this run's mail. And it
stops every service it started, whichever way it is stopped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from siteflow.settings import Settings
from siteflow.stack import Stack, StackError
from tests.test_warm_start import processes


def test_a_taken_smtp_port_is_refused_with_the_setting_to_change(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        stack = Stack(Settings(home=tmp_path, smtp_port=port, prefect_port=4398, web_port=8498), say=print)
        with pytest.raises(
            StackError, match=f"port {port} for the SMTP catcher is taken.*SITEFLOW_SMTP_PORT"
        ):
            stack.start()
    assert stack.processes == {}  # nothing was started


def test_sigterm_stops_every_service(tmp_path: Path) -> None:
    """`siteflow up` stopped as a service manager stops it (SIGTERM) takes its services along;
    by default the signal would end only the parent and leave them running on their ports."""
    env = dict(os.environ) | {
        "SITEFLOW_HOME": str(tmp_path),
        "SITEFLOW_PREFECT_PORT": "4397",
        "SITEFLOW_WEB_PORT": "8497",
        "SITEFLOW_SMTP_PORT": "8397",
        "COLUMNS": "200",
    }
    env.pop("PREFECT_API_URL", None)
    up = subprocess.Popen(
        [sys.executable, "-m", "siteflow.cli", "up"], env=env, stdout=subprocess.PIPE, text=True
    )
    assert up.stdout is not None
    lines = []
    for line in up.stdout:
        lines.append(line)
        if "siteflow is up" in line:
            break
    else:
        raise AssertionError("siteflow up ended before it was up:\n" + "".join(lines))
    services = _children(up.pid)
    try:
        assert len(services) >= 6  # Prefect server, deployments, keeper, catcher, relay, web
        up.send_signal(signal.SIGTERM)
        rest, _ = up.communicate(timeout=60)
        assert "siteflow stopped." in rest
        assert up.returncode == 0
        still = [pid for pid in services if _alive(pid)]
        assert still == [], f"services left running after SIGTERM: {still}"
    finally:  # never leave a failed run's services on their ports for the next tests
        up.kill()
        for pid in services:
            if _alive(pid):
                os.killpg(pid, signal.SIGKILL)
    for port in (4397, 8497, 8397):
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still answers"


def _children(pid: int) -> list[int]:
    return [child for child, (parent, _) in processes().items() if parent == pid]


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
