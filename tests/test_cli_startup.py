"""The CLI starts fast: `siteflow gates decide` is a thin client, and the database check at
start loads Alembic only when a migration is due.

A decision typed just before an upgrade window's deadline must not lose to the deadline
because the command spent seconds loading Prefect first: the web service stamps it when it
arrives. A `sitecustomize` on the subprocess's path watches imports; no timing thresholds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from siteflow.db import alembic_config, database_revisions, migrate, script_heads

WATCHER = textwrap.dedent(
    """
    import sys

    class _Watch:
        seen = set()

        def find_spec(self, name, path=None, target=None):
            top = name.split(".")[0]
            for watched in ("prefect", "sqlalchemy", "siteflow.decisions"):
                if (name == watched or top == watched) and watched not in self.seen:
                    self.seen.add(watched)
                    print("WATCH import", watched, flush=True)
            return None

    sys.meta_path.insert(0, _Watch())
    """
)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_decide_is_a_thin_client_and_says_when_siteflow_is_down(tmp_path: Path) -> None:
    """`gates decide` loads neither Prefect, the database layer nor the decision path: the web
    service records and stamps the decision. With the service down it says so and what to do."""
    watch_dir = tmp_path / "watch"
    watch_dir.mkdir()
    (watch_dir / "sitecustomize.py").write_text(WATCHER, encoding="utf-8")
    config = tmp_path / "config"
    config.mkdir(mode=0o700)
    url = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    (config / "credentials.json").write_text(
        json.dumps(
            {"url": url, "token": "sft_x", "email": "a@b.example", "expires_at": "2030-01-01T00:00:00+00:00"}
        )
    )
    os.chmod(config / "credentials.json", 0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SITEFLOW_", "PREFECT_"))}
    env |= {
        "SITEFLOW_HOME": str(tmp_path / "home"),
        "SITEFLOW_CONFIG_DIR": str(config),
        "PYTHONPATH": os.pathsep.join(p for p in [str(watch_dir), os.environ.get("PYTHONPATH")] if p),
        "COLUMNS": "200",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "siteflow.cli", "gates", "decide", "some-gate", "--decision", "approve"],
        env=env,
        text=True,
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert f"could not reach siteflow's web service at {url}" in proc.stderr
    assert "nothing was changed" in proc.stderr
    assert "WATCH import" not in proc.stdout, proc.stdout


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


def test_every_command_group_is_there_when_run_as_a_module() -> None:
    """`python -m siteflow.cli` (what the tests and `siteflow.sh` run) lists every command and
    group the `siteflow` entry point has: one registered below the module's main guard would be
    missing from the one and present in the other."""
    from siteflow.cli import app

    commands = {c.name or getattr(c.callback, "__name__", "") for c in app.registered_commands}
    groups = {g.name for g in app.registered_groups} | commands
    listed = subprocess.run(
        [sys.executable, "-m", "siteflow.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    ).stdout
    assert groups >= {"documents", "handover", "incidents", "upgrade", "audit"}
    shown = {line.split()[1] for line in listed.splitlines() if line.startswith("│ ") and line[2:3] != " "}
    missing = sorted(str(g) for g in groups if g not in shown)
    assert not missing, f"not listed by python -m siteflow.cli: {missing}"
