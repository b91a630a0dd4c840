"""`siteflow up`: the embedded default in one command.

Starts, in order: our database migrations, a local Prefect server (UI included) on SQLite
under SITEFLOW_HOME, the process that serves every deployment, the gate keeper,
the approval web service, the SMTP catcher, the outbox relay and — when
``SITEFLOW_SUPPORT_IMAP_URL`` names a support mailbox — its IMAP reader. Ctrl-C stops all of them;
a service that exits on its own is started again (:meth:`Stack.watch`). State lives under
SITEFLOW_HOME, so starting again resumes where it was.

Prefect's API is behind siteflow's credential (:mod:`siteflow.prefect_credential`): the server
requires it and every process started here sends it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from siteflow.prefect_credential import basic_auth_header, credential_file, prefect_auth_string
from siteflow.prefect_env import prefect_environment
from siteflow.service_restarts import RestartPolicy
from siteflow.settings import Settings


class StackError(RuntimeError):
    """The stack could not start; the message says which part and where its log is."""


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


def prefect_healthy(api_url: str) -> bool:
    """Prefect's health check answers without the credential (so this works before we have it)."""
    try:
        return httpx.get(f"{api_url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def prefect_open_to_anyone(api_url: str) -> bool:
    """Does this Prefect API serve data to a request without a credential?"""
    try:
        return httpx.post(f"{api_url}/flow_runs/filter", json={"limit": 1}, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


RESTARTED = "restarted"
"""The word of the line the stack writes when it starts an exited service again."""


@dataclass
class Stack:
    settings: Settings
    say: Callable[[str], None] = print
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    commands: dict[str, list[str]] = field(default_factory=dict)
    restarts: dict[str, RestartPolicy] = field(default_factory=dict)
    restart_due: dict[str, float] = field(default_factory=dict)

    @property
    def logs(self) -> Path:
        return self.settings.home / "logs"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("PREFECT_API_KEY", None)  # it would take precedence over the auth string (401)
        env.update(prefect_environment(self.settings))
        return env

    def _spawn(self, name: str, args: list[str]) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.logs / f"{name}.log", "ab") as log:  # the child keeps its own descriptor
            self.processes[name] = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env(),
                start_new_session=True,
            )
        self.commands[name] = args

    def _wait(self, name: str, ready: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            proc = self.processes.get(name)
            if proc is not None and proc.poll() is not None:
                raise StackError(f"{name} exited with code {proc.returncode}; see {self.logs / name}.log")
            time.sleep(0.2)
        raise StackError(f"{name} was not ready after {timeout:.0f}s; see {self.logs / name}.log")

    def start(self) -> None:
        from siteflow.db import migrate

        s = self.settings
        s.home.mkdir(parents=True, exist_ok=True)
        migrate(s.resolved_database_url)
        for what, host, port, setting in (
            ("SMTP catcher", s.smtp_host, s.smtp_port, "SITEFLOW_SMTP_PORT"),
            ("web service", s.web_host, s.web_port, "SITEFLOW_WEB_PORT"),
        ):
            if port_open(host, port):  # else mail and pages would go to whoever holds the port
                raise StackError(
                    f"port {port} for the {what} is taken (is another siteflow still running?); "
                    f"stop it or set {setting} to a free port"
                )
        if s.support_imap_url:
            self._check_mailbox()
        api = s.resolved_prefect_api_url
        if s.prefect_api_url is not None and prefect_open_to_anyone(api):
            raise StackError(
                f"the Prefect API at {api} answers without a credential: start it with "
                "PREFECT_SERVER_API_AUTH_STRING=user:password and give siteflow the same in "
                "SITEFLOW_PREFECT_AUTH_STRING"
            )
        if s.prefect_api_url is None:
            prefect_auth_string(s)  # made now, on first start, if there is none yet
            if port_open(s.prefect_host, s.prefect_port):
                if not prefect_healthy(api):
                    raise StackError(
                        f"port {s.prefect_port} is taken by something that is not a Prefect server; "
                        "set SITEFLOW_PREFECT_PORT to a free port"
                    )
                raise StackError(
                    f"a Prefect server already answers on {api}: siteflow seems to be running already "
                    "(stop it first, or use that one with SITEFLOW_PREFECT_API_URL)"
                )
            self._spawn(
                "prefect-server",
                [
                    sys.executable,
                    "-m",
                    "siteflow.prefect_server",  # `prefect server start`, its SQLite writes queued
                    "--host",
                    s.prefect_host,
                    "--port",
                    str(s.prefect_port),
                ],
            )
        self._wait("prefect-server", lambda: prefect_healthy(api), 90)
        if s.prefect_api_url is None:  # our own server: no runner of ours is alive yet
            self._crash_orphans()
        self._spawn("deployments", [sys.executable, "-m", "deployments.serve"])
        self._spawn("gate-keeper", [sys.executable, "-m", "siteflow.resumer"])
        self._spawn("mail-catcher", [sys.executable, "-m", "siteflow.mail_catcher"])
        self._wait("mail-catcher", lambda: port_open(s.smtp_host, s.smtp_port), 20)
        self._spawn("mail-relay", [sys.executable, "-m", "siteflow.outbox_relay"])
        if s.support_imap_url:  # issue #11: a real support mailbox, read by IMAP
            self._spawn("mail-reader", [sys.executable, "-m", "siteflow.incidents.mailbox_reader"])
        self._spawn(
            "web",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "siteflow.web:app",
                "--host",
                s.web_host,
                "--port",
                str(s.web_port),
                "--log-level",
                "warning",
            ],
        )
        self._wait("web", lambda: port_open(s.web_host, s.web_port), 20)
        self._wait("deployments", self._deployments_registered, 60)

    def _check_mailbox(self) -> None:
        """A support mailbox that could never be read stops `siteflow up` with what to change
        (the server being down does not: the reader waits for it)."""
        from siteflow.incidents.mailbox_address import (
            MailboxSettingRefused,
            mailbox_address,
            mailbox_password,
        )

        try:
            mailbox_address(self.settings.support_imap_url or "")
            mailbox_password(self.settings)
        except MailboxSettingRefused as exc:
            raise StackError(str(exc)) from None

    def _crash_orphans(self) -> None:
        from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

        from deployments import ALL
        from siteflow.resumer import crash_orphaned_runs

        with temporary_settings(
            {
                PREFECT_API_URL: self.settings.resolved_prefect_api_url,
                PREFECT_API_AUTH_STRING: prefect_auth_string(self.settings),
            }
        ):
            orphans = crash_orphaned_runs(ALL)
        if orphans:
            self.say(
                f"{len(orphans)} run(s) were left running by the last stop; the gate keeper restarts them"
            )

    def _deployments_registered(self) -> bool:
        from deployments import ALL

        auth = basic_auth_header(prefect_auth_string(self.settings))
        try:
            return all(
                httpx.get(
                    f"{self.settings.resolved_prefect_api_url}/deployments/name/{name}",
                    timeout=2,
                    headers=auth,
                ).status_code
                == 200
                for name in ALL
            )
        except httpx.HTTPError:
            return False

    def urls(self) -> dict[str, str]:
        s = self.settings
        ui = s.resolved_prefect_api_url.removesuffix("/api")
        return {
            "Prefect UI": ui,
            "Prefect UI sign-in": f"paste the line in {credential_file(s)}"
            if s.prefect_auth_string is None
            else "the value of SITEFLOW_PREFECT_AUTH_STRING",
            "Approval web service": f"http://{s.web_host}:{s.web_port}",
            "Staff workspace (sign in)": f"{s.resolved_public_url}/signin",
            "SMTP catcher": f"smtp://{s.smtp_host}:{s.smtp_port} → {s.mail_dir}",
            **({"Support mailbox (IMAP)": _mailbox_shown(s)} if s.support_imap_url else {}),
            "Database": s.resolved_database_url,
            "Logs": str(self.logs),
        }

    def watch(self, now: float | None = None) -> None:
        """Start again any service that exited on its own, after its back-off, and say so.

        Raises :class:`StackError` when one keeps exiting (see :mod:`siteflow.service_restarts`).
        """
        now = time.monotonic() if now is None else now
        for name, proc in list(self.processes.items()):
            if name in self.restart_due or proc.poll() is None:
                continue
            policy = self.restarts.setdefault(name, RestartPolicy())
            if not policy.allows(now):
                raise StackError(
                    f"{name} exited with code {proc.returncode} {policy.limit + 1} times within "
                    f"{policy.window_seconds:.0f}s; see {self.logs / name}.log"
                )
            delay = policy.delay(now)
            self.restart_due[name] = now + delay
            if name == "deployments":  # its runs were forked from it: they go with it
                _kill_group(proc)
            self._note(f"{name} exited with code {proc.returncode}; it is restarted in {delay:.0f}s")
        for name, due in list(self.restart_due.items()):
            if now < due:
                continue
            del self.restart_due[name]
            if name == "deployments" and self.settings.prefect_api_url is None:
                try:  # no runner of ours is alive: runs it held go to the keeper, as at start
                    self._crash_orphans()
                except Exception as exc:  # the server may be restarting too; the keeper retries
                    self._note(f"could not mark the stopped runs crashed yet ({exc})")
            self._spawn(name, self.commands[name])
            count = self.restarts[name].record(now)
            self._note(
                f"{name} {RESTARTED} (pid {self.processes[name].pid}; restart {count} of at most "
                f"{self.restarts[name].limit} within {self.restarts[name].window_seconds:.0f}s)"
            )

    def check(self) -> None:
        """Raise if a service is not running now (whether or not a restart is on its way)."""
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                raise StackError(f"{name} stopped with code {proc.returncode}; see {self.logs / name}.log")

    def _note(self, message: str) -> None:
        """Say it on the console and keep it in logs/stack.log (and in the service's own log)."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        self.say(message)
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.logs / "stack.log", "a", encoding="utf-8") as log:
            log.write(f"{stamp} {message}\n")
        name = message.split(" ", 1)[0]
        if name in self.commands:
            with open(self.logs / f"{name}.log", "a", encoding="utf-8") as log:
                log.write(f"--- siteflow {stamp}: {message}\n")

    def kill(self) -> None:
        """SIGKILL every service and the runs they run, as a power cut would (tests)."""
        for proc in self.processes.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in self.processes.values():
            proc.wait()
        self.processes.clear()

    def stop(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.processes.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        stopped_any = bool(self.processes)
        self.processes.clear()
        self.restart_due.clear()
        if stopped_any:
            self._erase_wal()

    def _erase_wal(self) -> None:
        """Nobody holds siteflow.db now: empty its WAL, the last place erased tokens could be
        read from after a stop (services killed mid-way never close their connections)."""
        from siteflow.db import engine_for
        from siteflow.sqlite_erasure import truncate_wal

        url = self.settings.resolved_database_url
        if url.startswith("sqlite") and not truncate_wal(engine_for(url)):
            self.say("siteflow.db's write-ahead log is still held by another process; not emptied")


def _mailbox_shown(settings: Settings) -> str:
    from siteflow.incidents.mailbox_address import mailbox_address

    return mailbox_address(settings.support_imap_url or "").shown()


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def supervise(stack: Stack) -> None:
    """Block until Ctrl-C, starting again any service that exits (:meth:`Stack.watch`)."""
    while True:
        stack.watch()
        time.sleep(1)
