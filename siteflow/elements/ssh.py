"""Driving a real network element over SSH.

Why it is built this way:

- Credentials come from settings (``SITEFLOW_SSH_*``) and nowhere else: an upgrade plan is
  filled in by people and stored in the journal, so a password typed into a plan would end
  up in the audit trail (issue #3). For the same reason no ssh-agent, ``~/.ssh`` key or
  ``~/.ssh/config`` of the user running the worker is used: what logs in is what the
  settings say, on every worker.
- Error messages go to the journal and to people: they name the address and what to check,
  never the password (and never the user name either, only the variable holding it).
- An element drops the session when it reboots, so a connection is opened on first use,
  reused while it lives and opened again when it died between commands. A command that was
  already sent is never re-sent: whether it took effect is for the runbook's ``verify``
  step to find out, not for the transport to guess.
- A command that times out closes the connection: the element may still be busy with it
  and the next command must not end up queued behind it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import asyncssh
from pydantic import SecretStr

from models.runbook import Command
from siteflow.elements.driver import CommandResult, ElementUnreachable
from siteflow.settings import get_settings

log = logging.getLogger(__name__)

# asyncssh logs every login with the user name at INFO: keep that out of worker logs unless
# someone configured asyncssh's logger on purpose.
if logging.getLogger("asyncssh").level == logging.NOTSET:
    logging.getLogger("asyncssh").setLevel(logging.WARNING)

DEFAULT_PORT = 22
_LOGIN_VARS = "SITEFLOW_SSH_USERNAME and SITEFLOW_SSH_PASSWORD / SITEFLOW_SSH_KEY_FILE"


class SshNotConfigured(RuntimeError):
    """The settings lack what an SSH login needs; the message names the variable to set."""


def parse_address(address: str) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` → (host, port); a bare IPv6 address
    (more than one colon, no brackets) is taken as a host on the default port."""
    text = address.strip()
    host, has_port, port_text = text, False, ""
    if text.startswith("["):
        host, closed, rest = text[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            raise ValueError(f"element address {address!r}: expected [ipv6] or [ipv6]:port")
        has_port, port_text = bool(rest), rest[1:]
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        has_port = True
    if not host:
        raise ValueError(f"element address {address!r} has no host")
    if not has_port:
        return host, DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"element address {address!r}: port must be a number from 1 to 65535")
    return host, int(port_text)


class SshDriver:
    """One element reached over SSH; implements :class:`~siteflow.elements.driver.ElementDriver`.

    The settings are read (and checked) when the driver is created; the connection is opened
    by the first :meth:`run`.
    """

    def __init__(self, address: str) -> None:
        self.host, self.port = parse_address(address)
        self.address = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        settings = get_settings()
        if not settings.ssh_username:
            raise SshNotConfigured(
                f"no SSH user name for element {self.address}: set SITEFLOW_SSH_USERNAME "
                "(with SITEFLOW_SSH_PASSWORD or SITEFLOW_SSH_KEY_FILE) in the worker's environment"
            )
        if not settings.ssh_password and settings.ssh_key_file is None:
            raise SshNotConfigured(
                f"no SSH credential for element {self.address}: set SITEFLOW_SSH_PASSWORD or "
                "SITEFLOW_SSH_KEY_FILE in the worker's environment"
            )
        for variable, path in (
            ("SITEFLOW_SSH_KEY_FILE", settings.ssh_key_file),
            ("SITEFLOW_SSH_KNOWN_HOSTS", settings.ssh_known_hosts),
        ):
            if path is not None and not path.is_file():
                raise SshNotConfigured(f"{variable} names {path}, which is not a readable file")
        self._username: str = settings.ssh_username
        self._password: SecretStr | None = settings.ssh_password
        self._key_file: Path | None = settings.ssh_key_file
        self._known_hosts: Path | None = settings.ssh_known_hosts
        self._connect_timeout: float = settings.ssh_connect_timeout
        self._conn: asyncssh.SSHClientConnection | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"SshDriver({self.address!r})"

    async def run(self, command: Command, timeout: float) -> CommandResult:
        """Run ``command.command``; ``ok`` means the output matched and the exit status is 0
        (or was not reported, as some elements do).

        Raises :class:`ElementUnreachable` when no session can be had or it is lost while the
        command runs, and :class:`TimeoutError` when the command does not finish in time.
        """
        for attempt in (1, 2):
            conn = await self._connection()
            try:
                done = await asyncio.wait_for(
                    conn.run(command.command, check=False, encoding="utf-8", errors="replace"), timeout
                )
            except asyncssh.ChannelOpenError as exc:
                await self._drop(conn)
                if exc.code == asyncssh.OPEN_CONNECT_FAILED and attempt == 1:
                    # No session was opened, so the command was never sent: safe to retry on a
                    # fresh connection (the old one died between commands, e.g. a reboot).
                    log.info("SSH connection to %s was closed; reconnecting", self.address)
                    continue
                if exc.code == asyncssh.OPEN_REQUEST_SESSION_FAILED:
                    # The command was sent; the element refused it or the connection dropped.
                    raise ElementUnreachable(
                        self._scrub(
                            f"element {self.address} did not start {command.command!r} ({command.id}): "
                            f"{exc.reason}; the connection may have dropped, so the command may or may "
                            "not have taken effect"
                        )
                    ) from exc
                raise ElementUnreachable(
                    self._scrub(
                        f"element {self.address} refused a session for {command.id!r}: {exc.reason}; "
                        "check the element's session limits and its SSH/VTY configuration"
                    )
                ) from exc
            except TimeoutError:
                await self._drop(conn)
                raise TimeoutError(
                    f"element {self.address}: {command.command!r} ({command.id}) did not finish within "
                    f"{timeout:g} s; the SSH connection was closed"
                ) from None
            except (asyncssh.Error, OSError) as exc:
                await self._drop(conn)
                raise ElementUnreachable(
                    self._scrub(
                        f"element {self.address}: connection lost while running {command.command!r} "
                        f"({command.id}): {_reason(exc)}; the command may or may not have taken effect"
                    )
                ) from exc
            output = _text(done.stdout) + _text(done.stderr)
            status = done.exit_status
            return CommandResult(
                command=command.command,
                output=output,
                ok=command.matches(output) and status in (0, None),
                exit_status=status,
            )
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    async def close(self) -> None:
        async with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
            await conn.wait_closed()

    async def _connection(self) -> asyncssh.SSHClientConnection:
        async with self._lock:
            if self._conn is not None and not self._conn.is_closed():
                return self._conn
            self._conn = await self._connect()
            return self._conn

    async def _drop(self, conn: asyncssh.SSHClientConnection) -> None:
        async with self._lock:
            if self._conn is conn:
                self._conn = None
        conn.close()

    async def _connect(self) -> asyncssh.SSHClientConnection:
        client_keys = [self._load_key(self._key_file)] if self._key_file else None
        known_hosts = self._load_known_hosts(self._known_hosts) if self._known_hosts else None
        if known_hosts is None:
            log.warning(
                "host key of element %s is not checked (SITEFLOW_SSH_KNOWN_HOSTS is unset)", self.address
            )
        timeout = self._connect_timeout
        try:
            conn = await asyncssh.connect(
                self.host,
                self.port,
                username=self._username,
                password=self._password.get_secret_value() if self._password else None,
                client_keys=client_keys,
                agent_path=None,
                known_hosts=known_hosts,
                config=None,
                connect_timeout=timeout,
            )
        except asyncssh.PermissionDenied:
            raise self._unreachable(
                f"element {self.address} refused the login; check {_LOGIN_VARS}"
            ) from None  # asyncssh's message names the user: keep it out of journals and logs
        except asyncssh.HostKeyNotVerifiable as exc:
            raise self._unreachable(
                f"element {self.address} presented a host key that {self._known_hosts} does not trust; "
                "check SITEFLOW_SSH_KNOWN_HOSTS (or whether the element was replaced)"
            ) from exc
        except TimeoutError as exc:
            raise self._unreachable(
                f"element {self.address} did not complete an SSH login within {timeout:g} s; check that "
                "it is up, that the address and port are right and that no firewall drops SSH "
                "(SITEFLOW_SSH_CONNECT_TIMEOUT)"
            ) from exc
        except ConnectionRefusedError as exc:
            raise self._unreachable(
                f"element {self.address} refused the connection; check the address and port and that "
                "SSH is enabled on the element"
            ) from exc
        except socket.gaierror as exc:
            raise self._unreachable(
                f"element {self.address}: host name not found ({_reason(exc)}); check the address"
            ) from exc
        except (asyncssh.Error, OSError) as exc:
            raise self._unreachable(
                f"element {self.address}: SSH connection failed ({_reason(exc)}); check the network "
                "path to the element and its SSH service"
            ) from exc
        log.info("SSH connection to %s opened", self.address)
        return conn

    def _unreachable(self, message: str) -> ElementUnreachable:
        return ElementUnreachable(self._scrub(message))

    def _scrub(self, message: str) -> str:
        """Belt and braces: whatever a library put in a message, the password does not leave."""
        secret = self._password.get_secret_value() if self._password else ""
        return message.replace(secret, "********") if secret else message

    @staticmethod
    def _load_key(path: Path) -> asyncssh.SSHKey:
        try:
            return asyncssh.read_private_key(str(path))
        except (asyncssh.KeyImportError, OSError, ValueError) as exc:
            raise SshNotConfigured(
                f"SITEFLOW_SSH_KEY_FILE: cannot load the private key in {path} ({_reason(exc)}); "
                "siteflow needs an unencrypted key"
            ) from exc

    @staticmethod
    def _load_known_hosts(path: Path) -> asyncssh.SSHKnownHosts:
        try:
            return asyncssh.read_known_hosts(str(path))
        except (OSError, ValueError) as exc:
            raise SshNotConfigured(f"SITEFLOW_SSH_KNOWN_HOSTS: cannot read {path} ({_reason(exc)})") from exc


def _text(data: object) -> str:
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return str(data)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, asyncssh.DisconnectError | asyncssh.ChannelOpenError):
        return exc.reason or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
