"""The embedded default refuses to start on a taken port, before starting anything: a
leftover catcher from an earlier run would otherwise silently receive this run's mail. It
starts again a service that exits on its own, and says so (issue #10). It stops every service
it started, whichever way it is stopped, and leaves no secret readable in any file (issue #10).

The last three tests share one real `siteflow up` (one stack, in file order: a service killed
and restarted, secrets issued while it runs, then SIGTERM and a scan of every file)."""

from __future__ import annotations

import base64
import email
import email.policy
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
import yaml

from siteflow.settings import Settings
from siteflow.stack import RESTARTED, Stack, StackError
from tests.test_warm_start import processes

OFFSET = int(os.environ.get("SITEFLOW_TEST_PORT_OFFSET", "0"))
PREFECT_PORT, WEB_PORT, SMTP_PORT = 4357 + OFFSET, 8457 + OFFSET, 8357 + OFFSET


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


WRITER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
for pragma in ("journal_mode=WAL", "wal_autocheckpoint=0", "secure_delete=ON"):
    conn.execute("PRAGMA " + pragma)
conn.execute("CREATE TABLE kept (value TEXT)")
conn.execute("INSERT INTO kept VALUES (?)", (sys.argv[2],))
conn.execute("UPDATE kept SET value = NULL")  # erased, but its frames are still in the WAL
open(sys.argv[1] + ".ready", "w").close()
time.sleep(600)  # killed by the stop, its connection never closed
"""


def test_a_stop_empties_the_wal_that_a_killed_service_left_holding_an_erased_value(tmp_path: Path) -> None:
    """Issue #10 item 3: a service killed by the stop never closes its database connection, so
    SQLite's WAL keeps every frame it wrote — an erased value too — until someone empties it.
    The stop does, once nobody holds the database any more."""
    settings = Settings(home=tmp_path)
    db = Path(settings.resolved_database_url.split("///", 1)[1])
    erased = f"erased-{os.urandom(12).hex()}"
    stack = Stack(settings, say=print)
    stack._spawn("relay", [sys.executable, "-c", WRITER, str(db), erased])
    deadline = time.monotonic() + 30
    while not Path(f"{db}.ready").exists():
        assert time.monotonic() < deadline and stack.processes["relay"].poll() is None, (
            "the writer did not start"
        )
        time.sleep(0.05)
    wal = Path(f"{db}-wal")
    assert erased.encode() in wal.read_bytes()  # what the stop must remove
    stack.stop()
    held = [
        p.name for p in tmp_path.glob("siteflow.db*") if p.is_file() and erased.encode() in p.read_bytes()
    ]
    assert held == [], f"the erased value is still readable in {held}"
    assert not wal.exists() or wal.stat().st_size == 0


def test_a_service_that_keeps_exiting_is_restarted_with_back_off_then_given_up(tmp_path: Path) -> None:
    """A service that cannot start must not spin on 2 shared cores: each restart waits twice as
    long (1, 2, 4 … s), and after 5 within 10 minutes the stack stops, naming it and its code."""
    exits = [sys.executable, "-c", "import sys; sys.exit(3)"]
    said: list[str] = []
    stack = Stack(Settings(home=tmp_path), say=said.append)
    stack._spawn("relay", exits)
    stack.processes["relay"].wait()
    now, delays = 1000.0, []
    with pytest.raises(StackError, match=r"relay exited with code 3 6 times within 600s.*relay\.log"):
        for _ in range(10):
            stack.watch(now)  # notices the exit and schedules the restart
            due = stack.restart_due["relay"]
            delays.append(due - now)
            now = due
            stack.watch(now)  # starts it again
            stack.processes["relay"].wait()
    assert delays == [1, 2, 4, 8, 16]
    assert sum(f"relay {RESTARTED}" in line for line in said) == 5
    assert "relay exited with code 3; it is restarted in 1s" in (tmp_path / "logs" / "stack.log").read_text()


class Up:
    """A real `siteflow up` in a home of its own; its output is read as it comes."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.settings = Settings(home=home, prefect_port=PREFECT_PORT, web_port=WEB_PORT, smtp_port=SMTP_PORT)
        env = dict(os.environ) | {
            "SITEFLOW_HOME": str(home),
            "SITEFLOW_PREFECT_PORT": str(PREFECT_PORT),
            "SITEFLOW_WEB_PORT": str(WEB_PORT),
            "SITEFLOW_SMTP_PORT": str(SMTP_PORT),
            "COLUMNS": "200",
        }
        env = {k: v for k, v in env.items() if not k.startswith("PREFECT_")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "siteflow.cli", "up"], env=env, stdout=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_line("siteflow is up", 180)
        self.services = _children(self.proc.pid)
        self.returncode: int | None = None

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait_line(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if text in line:
                    return line
            if self.proc.poll() is not None and not any(text in line for line in self.lines):
                break
            time.sleep(0.2)
        raise AssertionError(f"no line with {text!r} from siteflow up:\n" + "".join(self.lines))

    def stop(self) -> int:
        """SIGTERM, as a service manager stops it (once; later calls return the same code)."""
        if self.returncode is None:
            self.services = sorted(set(self.services) | set(_children(self.proc.pid)))
            self.proc.send_signal(signal.SIGTERM)
            self.returncode = self.proc.wait(timeout=60)
        return self.returncode

    def kill_all(self) -> None:
        self.proc.kill()
        for pid in set(self.services) | set(_children(self.proc.pid)):
            if _alive(pid):
                os.killpg(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    stack = Up(tmp_path_factory.mktemp("up"))
    try:
        yield stack
    finally:  # never leave a failed run's services on their ports for the next tests
        stack.kill_all()


def service_pid(name: str, pids: list[int]) -> int:
    """The pid among `pids` whose command line names this module."""
    for pid in pids:
        try:
            cmd = (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if name in cmd:
            return pid
    raise AssertionError(f"no service running {name} among {pids}")


def test_a_service_that_exits_is_restarted_and_the_stack_keeps_serving(up: Up) -> None:
    """Killing the web service or the deployments process (as the OOM killer would) no longer
    stops siteflow: the stack says which service exited with which code, starts it again, and
    it serves again."""
    web = service_pid("uvicorn", up.services)
    os.kill(web, signal.SIGKILL)
    said = up.wait_line(f"web {RESTARTED}")
    assert "web exited with code -9" in "".join(up.lines)
    assert up.proc.poll() is None, "siteflow up stopped"
    again = service_pid("uvicorn", _children(up.proc.pid))
    assert again != web and f"pid {again}" in said
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{WEB_PORT}/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        raise AssertionError("the restarted web service does not answer")
    assert "web exited with code -9" in (up.home / "logs" / "stack.log").read_text(encoding="utf-8")

    # The process that serves every deployment: its runs go with it and are restarted by the
    # keeper; the next test's project runs to its first gate on the new one.
    deployments = service_pid("deployments.serve", _children(up.proc.pid))
    os.kill(deployments, signal.SIGKILL)
    up.wait_line(f"deployments {RESTARTED}")
    assert service_pid("deployments.serve", _children(up.proc.pid)) != deployments
    up.services = _children(up.proc.pid)


def test_prefect_api_needs_the_credential(up: Up) -> None:
    """Issue #10 item 2: without the stack's credential Prefect's API answers 401, for reads
    and for deleting a run; with it, it works. The credential was made on first start, 0600."""
    api = up.settings.resolved_prefect_api_url
    kept = up.home / "prefect-api-auth"
    assert kept.stat().st_mode & 0o777 == 0o600
    auth = tuple(kept.read_text(encoding="ascii").strip().split(":", 1))
    assert len(auth) == 2 and len(auth[1]) >= 32
    with httpx.Client(timeout=10) as anyone, httpx.Client(timeout=10, auth=auth) as siteflow:
        flow = siteflow.post(f"{api}/flows/", json={"name": "credential-probe"})
        assert flow.status_code in (200, 201), flow.text
        run = siteflow.post(f"{api}/flow_runs/", json={"flow_id": flow.json()["id"]})
        assert run.status_code in (200, 201), run.text
        run_id = run.json()["id"]
        assert anyone.post(f"{api}/flow_runs/filter", json={}).status_code == 401
        assert anyone.get(f"{api}/flow_runs/{run_id}").status_code == 401
        assert (
            anyone.get(f"{api}/deployments/name/engineering-project/engineering-project").status_code == 401
        )
        assert anyone.delete(f"{api}/flow_runs/{run_id}").status_code == 401
        wrong = httpx.BasicAuth("siteflow", "guess")
        assert anyone.delete(f"{api}/flow_runs/{run_id}", auth=wrong).status_code == 401
        assert siteflow.get(f"{api}/flow_runs/{run_id}").status_code == 200  # still there
        assert siteflow.post(f"{api}/flow_runs/filter", json={}).status_code == 200
        assert siteflow.delete(f"{api}/flow_runs/{run_id}").status_code == 204
        assert siteflow.get(f"{api}/flow_runs/{run_id}").status_code == 404


def issue_secrets(up: Up) -> tuple[list[str], list[str]]:
    """Every kind of secret siteflow hands out, issued for real: approval-link tokens (a
    project's first gate mails its customers), a password link, a password, a session id, an
    API token. Returns (the link tokens, the others), read from the mails and answers that
    carried them."""
    from sqlalchemy import select

    from models.outbox import OutboxMessage
    from models.project_input import ProjectIn
    from siteflow.db import session_scope
    from siteflow.identity.roles import StaffRole
    from siteflow.identity.users import NewUser, add_user
    from siteflow.launch import start_project
    from tests.cli_user import PASSWORD
    from tests.conftest import using
    from tests.test_engineering_e2e import ROOT, wait_for_open_gate
    from tests.test_signin_web import sign_in
    from tests.test_upgrade_e2e import wait_for

    web = f"http://127.0.0.1:{WEB_PORT}"
    raw = yaml.safe_load((ROOT / "examples" / "project.yaml").read_text(encoding="utf-8"))
    raw["code"] = f"SECRET-{int(time.time()) % 1_000_000}"
    form = ProjectIn.model_validate(raw)
    PROJECT.append(form.code)
    secrets = [PASSWORD]
    with using(up.settings):
        start_project(form)  # through Prefect's API, with the credential (issue #10 item 2)
        wait_for_open_gate(form.code, "survey-readiness-r1", timeout=120)
        pm = NewUser(name="李娜 Li Na", email="li.na@siteflow.example", roles=[StaffRole.PM])
        add_user(pm, PASSWORD, "host-admin:test")
        invited = NewUser(
            name="王强 Wang Qiang", email="wang.qiang@siteflow.example", roles=[StaffRole.SUPERVISOR]
        )
        add_user(invited, None, "host-admin:test")  # a set-password link is mailed
        with httpx.Client(follow_redirects=False, timeout=30) as browser:
            assert sign_in(browser, web, pm.email, PASSWORD).status_code in (302, 303)
            assert browser.get(f"{web}/me").status_code == 200
            secrets += [v for v in browser.cookies.values() if len(v) >= 20]  # session id, CSRF
        token = httpx.post(f"{web}/api/tokens", json={"email": pm.email, "password": PASSWORD}, timeout=30)
        assert token.status_code == 201, token.text
        secrets.append(token.json()["token"])

        def all_sent() -> bool:
            with session_scope() as session:
                rows = list(session.execute(select(OutboxMessage)).scalars())
            return bool(rows) and all(r.status == "sent" for r in rows)

        wait_for("every queued mail sent", all_sent, timeout=120)
    links = []
    for path in (up.home / "mail").glob("*.eml"):
        mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        body = mail.get_body(preferencelist=("plain",))
        assert isinstance(body, EmailMessage)
        links += re.findall(r"/(?:a|reset)/([A-Za-z0-9_\-]{20,})", body.get_content())
    assert len(set(links)) >= 3, "expected approval links for the customers and a password link"
    return sorted(set(links)), secrets


SECRETS: list[str] = []
PROJECT: list[str] = []


def files_holding(home: Path, secret: str, skip: set[Path]) -> list[str]:
    """Every file under home whose bytes hold the secret, as itself or base64-encoded (a Basic
    authorization header)."""
    needles = [secret.encode(), base64.b64encode(secret.encode())]
    found = []
    for path in home.rglob("*"):
        if path.is_file() and path not in skip and not path.is_relative_to(home / "mail"):
            data = path.read_bytes()
            if any(n in data for n in needles):
                found.append(str(path.relative_to(home)))
    return found


def test_erased_tokens_leave_the_running_database(up: Up) -> None:
    """Issue #10 item 3, while running: once the relay has sent the mails, siteflow.db and its
    WAL do not hold their tokens (derived under the link key when the mail is rendered, never
    stored: siteflow/link_keys.py)."""
    from tests.test_upgrade_e2e import wait_for

    links, others = issue_secrets(up)
    SECRETS.extend(links + others)

    def still_readable() -> list[str]:
        files = [p.read_bytes() for p in up.home.glob("siteflow.db*") if p.is_file()]
        return [t for t in links if any(t.encode() in data for data in files)]

    wait_for("no erased token in siteflow.db*", lambda: not still_readable(), timeout=60)


def test_the_cli_reads_prefect_with_the_credential(up: Up) -> None:
    """`siteflow audit` reads the run's state from Prefect itself: given only the home, the CLI
    finds the credential there (an unauthorized read would show as an error in the report)."""
    import json

    assert PROJECT, "the project was not started (see the test before)"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SITEFLOW_", "PREFECT_"))}
    env |= {"SITEFLOW_HOME": str(up.home), "SITEFLOW_PREFECT_PORT": str(PREFECT_PORT), "COLUMNS": "200"}
    out = subprocess.run(
        [sys.executable, "-m", "siteflow.cli", "audit", PROJECT[0], "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    run = json.loads(out.stdout)["prefect_run"]
    assert "error" not in run and run["state"] in {"PAUSED", "RUNNING", "SCHEDULED"}, run


def test_sigterm_stops_every_service(up: Up) -> None:
    """`siteflow up` stopped as a service manager stops it (SIGTERM) takes its services along;
    by default the signal would end only the parent and leave them running on their ports."""
    assert len(up.services) >= 6  # Prefect server, deployments, keeper, catcher, relay, web
    service_pid("siteflow.prefect_server", up.services)  # its writes queue (tests/test_prefect_server.py)
    assert up.stop() == 0
    assert "siteflow stopped." in "".join(up.lines)
    still = [pid for pid in up.services if _alive(pid)]
    assert still == [], f"services left running after SIGTERM: {still}"
    for port in (PREFECT_PORT, WEB_PORT, SMTP_PORT):
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still answers"


def test_no_secret_is_readable_in_any_file_after_a_stop(up: Up) -> None:
    """Issue #10 item 3: after mails were sent and siteflow stopped, no token, password,
    session id or API token issued above is in any file under SITEFLOW_HOME — databases (ours
    and Prefect's, with their WALs), logs, results. The mail catcher's `mail/` is the
    recipients' mailboxes, where the links belong; the Prefect credential is in its own file
    only."""
    assert SECRETS, "the secrets were not issued (see the test before)"
    up.stop()
    leaks = {s[:6] + "…": files_holding(up.home, s, set()) for s in SECRETS}
    assert not any(leaks.values()), leaks
    credential = up.home / "prefect-api-auth"
    auth = credential.read_text(encoding="ascii").strip()
    assert files_holding(up.home, auth, {credential}) == []


def _children(pid: int) -> list[int]:
    return [child for child, (parent, _) in processes().items() if parent == pid]


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
