"""`siteflow gates decide` records its decision before it loads Prefect, stamped on arrival.

A decision typed just before an upgrade window's deadline must not lose to the deadline
because the command spent seconds loading Prefect (and Alembic) first. These tests run the
real command in a subprocess against a real SQLite database and a real open gate that has a
flow run behind it (so the command does go on to resume it, on a Prefect that is not
running). A `sitecustomize` on the subprocess's path watches imports and prints a marker
the moment Prefect starts loading, and the time `siteflow.decisions` starts loading; the
command's own stdout then says whether "recorded" came first. No timing thresholds: only
the order of events.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from flows.signoffs import customer_signoff
from models.gate import GateDecision
from siteflow.db import alembic_config, database_revisions, migrate, script_heads, session_scope
from siteflow.settings import Settings
from tasks.gates import open_gate
from tests.conftest import new_database, using
from tests.test_decisions import CHEN, CODE, add_document, add_project, project_form

WATCHER = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime

    class _Watch:
        seen = set()

        def find_spec(self, name, path=None, target=None):
            top = name.split(".")[0]
            if name == "siteflow.decisions" and name not in self.seen:
                self.seen.add(name)
                print("WATCH decisions-import-at", datetime.now(UTC).isoformat(), flush=True)
            if top == "prefect" and top not in self.seen:
                self.seen.add(top)
                print("WATCH prefect-import", flush=True)
            return None

    sys.meta_path.insert(0, _Watch())
    """
)


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Settings]:
    """A SQLite home with a project and nothing else; Prefect's port points at nothing."""
    url = new_database("sqlite", tmp_path)
    settings = Settings(home=tmp_path, database_url=url, prefect_port=_free_port())
    with using(settings):
        add_project(project_form())
        yield settings


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _open_gate_with_run() -> str:
    spec = customer_signoff("survey-report-signoff", "ENG-8", "Survey report sign-off", add_document())
    return open_gate.fn(CODE, str(uuid.uuid4()), spec).id


def _decide(settings: Settings, gate_id: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The real `siteflow gates decide`, with the import watcher on its path."""
    watch_dir = tmp_path / "watch"
    watch_dir.mkdir()
    (watch_dir / "sitecustomize.py").write_text(WATCHER, encoding="utf-8")
    env = dict(os.environ) | {
        "SITEFLOW_HOME": str(settings.home),
        "SITEFLOW_DATABASE_URL": settings.resolved_database_url,
        "SITEFLOW_PREFECT_PORT": str(settings.prefect_port),
        "PYTHONPATH": os.pathsep.join(p for p in [str(watch_dir), os.environ.get("PYTHONPATH")] if p),
        "COLUMNS": "200",
    }
    env.pop("PREFECT_API_URL", None)
    by = f"{CHEN.name} <{CHEN.email}>"
    args = ["gates", "decide", gate_id, "--decision", "approve", "--by", by]
    return subprocess.run(
        [sys.executable, "-m", "siteflow.cli", *args], env=env, text=True, capture_output=True, timeout=120
    )


def test_decide_records_before_prefect_is_loaded(home: Settings, tmp_path: Path) -> None:
    gate_id = _open_gate_with_run()
    proc = _decide(home, gate_id, tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    recorded = next(i for i, line in enumerate(lines) if line.startswith("recorded: approve"))
    assert "WATCH prefect-import" in lines, "the run behind the gate was never resumed"
    assert recorded < lines.index("WATCH prefect-import"), proc.stdout
    assert "could not reach Prefect to resume flow run" in proc.stdout  # and says what happens next


def test_decide_is_stamped_before_the_decision_path_loads(home: Settings, tmp_path: Path) -> None:
    gate_id = _open_gate_with_run()
    proc = _decide(home, gate_id, tmp_path)
    assert proc.returncode == 0, proc.stderr
    marker = next(line for line in proc.stdout.splitlines() if line.startswith("WATCH decisions-import-at"))
    loading = datetime.fromisoformat(marker.split()[-1])
    with session_scope() as session:
        stamped = session.execute(select(GateDecision.decided_at)).scalar_one()
    assert stamped < loading, f"stamped {stamped}, after siteflow.decisions began loading at {loading}"


def test_migrate_at_head_does_not_load_alembic(database_url: str) -> None:
    code = "import sys; from siteflow.db import migrate; migrate(); print('alembic' in sys.modules)"
    env = dict(os.environ) | {"SITEFLOW_DATABASE_URL": database_url}
    proc = subprocess.run([sys.executable, "-c", code], env=env, text=True, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_migrate_still_upgrades_an_older_database(database_url: str) -> None:
    from alembic import command
    from alembic.script import ScriptDirectory

    heads = set(ScriptDirectory.from_config(alembic_config(database_url)).get_heads())
    assert script_heads() == heads  # the files are read as Alembic reads them
    command.downgrade(alembic_config(database_url), "-1")
    assert database_revisions(database_url) != heads
    migrate(database_url)
    assert database_revisions(database_url) == heads
