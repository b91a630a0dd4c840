"""What the CLI prints for people to read and copy (issue #9 item 8), from the real command in a
subprocess on a real database, in a narrow terminal (COLUMNS=80):

- ids a user copies into the next command (gate ids, window ids) are printed whole, on one line;
- times are on the site's clock with UTC beside them, never with microseconds — a project in
  Asia/Shanghai and an upgrade window in Europe/Berlin.

(`projects start` and `upgrade plan` print their Prefect UI and workspace links from the web
API's answer: tests/test_cli_login.py.)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from models.gate_spec import Party
from models.project_input import Role
from tests.test_mail_content import project
from tests.test_reminders import open_

ROOT = Path(__file__).resolve().parent.parent
MICROSECONDS = re.compile(r"\d\d:\d\d:\d\d\.\d+|\+00:00")


def cli(
    env_of: dict[str, str], *args: str, columns: int = 80, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ) | env_of | {"COLUMNS": str(columns), "LINES": "50"}
    proc = subprocess.run(
        [sys.executable, "-m", "siteflow.cli", *args],
        env=env,
        cwd=ROOT,
        text=True,
        capture_output=True,
        timeout=180,
    )
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def on(database_url: str, home: Path) -> dict[str, str]:
    return {"SITEFLOW_HOME": str(home), "SITEFLOW_DATABASE_URL": database_url}


def lines_with(text: str, needle: str) -> list[str]:
    return [line for line in text.splitlines() if needle in line]


def test_gates_list_in_a_narrow_terminal_shows_whole_ids_and_site_times(
    database_url: str, tmp_path: Path
) -> None:
    code = project().code  # Asia/Shanghai
    deadline = datetime(2027, 1, 5, 20, 0, 0, 654321, tzinfo=UTC)
    customer = [Party(slot="customer", roles=[Role.CUSTOMER])]
    gates = [
        open_(code, key, customer, deadline).id
        for key in ("installation-environment-acceptance-r1", "survey-report-signoff-r1")
    ]
    out = cli(on(database_url, tmp_path), "gates", "list").stdout
    assert max(len(line) for line in out.splitlines()) <= 80
    for gate_id in gates:
        assert len(lines_with(out, gate_id)) == 1, out  # whole, on one line: copy it from there
    assert "decide by 2027-01-06 04:00 CST" in out and "(2027-01-05 20:00 UTC)" in out.replace("\n", " ")
    assert not MICROSECONDS.search(out)

    listed = cli(on(database_url, tmp_path), "projects", "list").stdout
    assert len(lines_with(listed, code)) == 1

    report = tmp_path / "audit.html"  # the audit report a person reads: the site's clock too
    cli(on(database_url, tmp_path), "audit", code, "--format", "html", "--output", str(report))
    html = report.read_text(encoding="utf-8")
    assert re.search(r"<td>\d{4}-\d\d-\d\d \d\d:\d\d CST \([^)]*UTC\)</td><td>gate.opened</td>", html)
    assert not MICROSECONDS.search(html)


def test_upgrade_list_and_status_show_whole_ids_and_the_window_clock(
    database_url: str, tmp_path: Path
) -> None:
    from tasks.upgrade_records import register_window
    from tests.test_mail_content import upgrade_plan
    from tests.test_upgrade_rules import booking_day

    window = "UPG-2026-1203-GZ-CORE-ROUTERS-NIGHT-1"  # long on purpose: it must not be cut
    plan = upgrade_plan(timezone="Europe/Berlin").model_copy(update={"id": window})
    register_window(plan, clock=booking_day)

    listed = cli(on(database_url, tmp_path), "upgrade", "list").stdout
    assert len(lines_with(listed, window)) == 1, listed
    status = cli(on(database_url, tmp_path), "upgrade", "status", window).stdout
    assert len(lines_with(status, window)) == 1, status
    assert "deadline 2026-12-03 04:00 CET (03:00 UTC)" in " ".join(status.split()), status
    assert not MICROSECONDS.search(listed + status)
