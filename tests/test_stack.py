"""The embedded default refuses to start on a taken port, before starting anything: a
leftover catcher from an earlier run would otherwise silently receive this run's mail."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from siteflow.settings import Settings
from siteflow.stack import Stack, StackError


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
