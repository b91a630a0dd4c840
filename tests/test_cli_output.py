"""What the CLI prints for people to read and copy (issue #9 item 8), from the real command in a
subprocess on a real database, in a narrow terminal (COLUMNS=80):

- ids a user copies into the next command (gate ids, window ids) are printed whole, on one line;
- times are on the site's clock with UTC beside them, never with microseconds — a project in
  Asia/Shanghai and an upgrade window in Europe/Berlin;
- `upgrade plan` names the window's workspace page, and `projects start` (on a real stack)
  the run's page in the Prefect UI and the project's workspace page.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from models.gate_spec import Party
from models.project_input import Role
from siteflow.settings import Settings
from tests.conftest import StackHandle
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


def plan_file(tmp_path: Path, night: date, zone: str) -> Path:
    raw: dict[str, Any] = yaml.safe_load((ROOT / "examples" / "upgrade-plan.yaml").read_text())
    raw["id"] = "UPG-2026-CLI-OUTPUT-WINDOW"  # long on purpose: it must not be cut
    raw["window"].update({"date": night.isoformat(), "timezone": zone})
    raw["runbook"] = (
        str(ROOT / "examples" / raw["runbook"]) if isinstance(raw["runbook"], str) else raw["runbook"]
    )
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def test_upgrade_plan_list_and_status_with_whole_ids_links_and_window_times(
    database_url: str, tmp_path: Path
) -> None:
    night = date.today() + timedelta(days=20)  # a night in winter or summer: the zone says which
    env = on(database_url, tmp_path) | {"SITEFLOW_PUBLIC_URL": "https://siteflow.example"}
    booked = cli(env, "upgrade", "plan", str(plan_file(tmp_path, night, "Europe/Berlin"))).stdout
    window = "UPG-2026-CLI-OUTPUT-WINDOW"
    assert "workspace: https://siteflow.example/windows/UPG-2026-CLI-OUTPUT-WINDOW" in booked

    listed = cli(env, "upgrade", "list").stdout
    assert len(lines_with(listed, window)) == 1, listed
    status = cli(env, "upgrade", "status", window).stdout
    assert len(lines_with(status, window)) == 1, status
    deadline = datetime.combine(night, datetime.strptime("04:00", "%H:%M").time())
    zone = "CET" if deadline.month in (1, 2, 3, 11, 12) else "CEST"
    flat = " ".join(status.split())
    assert f"deadline {night.isoformat()} 04:00 {zone} (" in flat, status
    assert not MICROSECONDS.search(status)


def test_projects_start_prints_the_prefect_run_and_workspace_links(
    stack_factory: Any, tmp_path: Path
) -> None:
    handle: StackHandle = stack_factory("sqlite")
    s: Settings = handle.settings
    raw = yaml.safe_load((ROOT / "examples" / "project.yaml").read_text())
    raw["code"] = "GD-CLI-LINKS-01"
    form = tmp_path / "project.yaml"
    form.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    env = {
        "SITEFLOW_HOME": str(s.home),
        "SITEFLOW_DATABASE_URL": s.resolved_database_url,
        "SITEFLOW_PREFECT_PORT": str(s.prefect_port),
        "SITEFLOW_WEB_PORT": str(s.web_port),
        "SITEFLOW_SMTP_PORT": str(s.smtp_port),
    }
    out = cli(env, "projects", "start", str(form)).stdout
    run_id = re.search(r"flow run ([0-9a-f-]{36})", out)
    assert run_id, out
    prefect_ui = f"http://127.0.0.1:{s.prefect_port}/runs/flow-run/{run_id.group(1)}"
    assert f"  Prefect UI: {prefect_ui}" in out.splitlines(), out
    assert f"  workspace: http://127.0.0.1:{s.web_port}/projects/GD-CLI-LINKS-01" in out.splitlines(), out
