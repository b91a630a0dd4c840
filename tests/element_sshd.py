"""A real SSH server on 127.0.0.1 that answers like a network element's command line.

It exists so the SSH driver is tested against the SSH protocol itself (handshake, host key,
password and key login, exec channels, exit statuses, a dropped session) rather than against
a mock of our own code. It runs its own asyncio loop in a background thread so that plain
synchronous tests can start it, drive the driver with ``asyncio.run`` and look at its state.

Usage::

    with ElementSshd(tmp_path, password="s3cret") as element:
        SshDriver(element.address)  # ... user "netops"
        element.command_count

Commands understood (exec channel, one command per session):

- ``display version`` → ``VRP (R) software, Version {sw}`` / ``Hardware version: {hw}``
- ``startup system-software X.cc`` → the next startup software is ``X.cc``
- ``display startup`` → ``Next startup system software: X.cc``
- ``reboot fast`` → the software becomes ``X`` (the next startup file without ``.cc``) and,
  like a real element, the SSH connection is dropped once the command has answered
- ``display alarm active`` → ``No active alarm``
- anything else → ``Error: Unrecognized command found at '^' position.`` on stderr, exit 1
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Self

import asyncssh

USERNAME = "netops"
UNRECOGNIZED = "Error: Unrecognized command found at '^' position."


class _Session(asyncssh.SSHServer):
    """One client connection; refuses new sessions once the element started rebooting."""

    def __init__(self, element: ElementSshd) -> None:
        self.element = element
        self.conn: asyncssh.SSHServerConnection | None = None
        self.rebooting = False

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        self.element._opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.element._closed(self)

    def begin_auth(self, username: str) -> bool:
        if username == self.element.username and self.element.authorized_keys and self.conn:
            self.conn.set_authorized_keys(self.element.authorized_keys)
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return username == self.element.username and password == self.element.password

    def public_key_auth_supported(self) -> bool:
        return self.element.authorized_keys is not None

    def session_requested(self) -> asyncssh.SSHServerSessionFactory:
        if self.rebooting:
            raise asyncssh.ChannelOpenError(asyncssh.OPEN_CONNECT_FAILED, "system is rebooting")
        return self._handle

    async def _handle(
        self, stdin: asyncssh.SSHReader[str], stdout: asyncssh.SSHWriter[str], stderr: asyncssh.SSHWriter[str]
    ) -> None:
        channel = stdout.channel
        command = " ".join((channel.get_command() or "").split())
        status, out, err = await self.element.execute(command)
        try:
            if out:
                stdout.write(out + "\n")
            if err:
                stderr.write(err + "\n")
            channel.exit(status)  # type: ignore[attr-defined]
        except OSError:  # the client went away first (closed the channel, timed out)
            return
        if command == "reboot fast":  # like a real element: no new session, then the line drops
            self.rebooting = True
            await channel.wait_closed()
            if self.conn is not None:
                self.conn.close()


class ElementSshd:
    """The element and its SSH server. State may be read (and set) from any thread."""

    def __init__(
        self,
        directory: Path,
        password: str,
        *,
        username: str = USERNAME,
        software_version: str = "V800R021C10SPC600",
        hardware_version: str = "CR5B0BKP0",
        authorized_keys: Iterable[asyncssh.SSHKey] = (),
    ) -> None:
        self.directory = directory
        self.username = username
        self.password = password
        keys = list(authorized_keys)
        self.authorized_keys: asyncssh.SSHAuthorizedKeys | None = (
            asyncssh.import_authorized_keys("".join(k.export_public_key().decode() for k in keys))
            if keys
            else None
        )
        self.software_version = software_version
        self.hardware_version = hardware_version
        self.next_startup = f"{software_version}.cc"
        self.delays: dict[str, float] = {}  # command → seconds it takes to answer
        self.host_key_path = directory / "ssh_host_ed25519_key"
        self.port = 0
        self._state = threading.Lock()
        self._commands: list[str] = []
        self._connections = 0
        self._sessions: set[_Session] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._acceptor: asyncssh.SSHAcceptor | None = None

    # -- what a test looks at -------------------------------------------------------------

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def commands(self) -> list[str]:
        with self._state:
            return list(self._commands)

    @property
    def command_count(self) -> int:
        with self._state:
            return len(self._commands)

    @property
    def connection_count(self) -> int:
        """SSH connections accepted so far (logged in or not)."""
        with self._state:
            return self._connections

    def known_hosts_line(self) -> str:
        key = asyncssh.read_private_key(str(self.host_key_path))
        return f"[127.0.0.1]:{self.port} {key.export_public_key().decode().strip()}\n"

    # -- start / stop ---------------------------------------------------------------------

    def start(self) -> Self:
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self.host_key_path.exists():
            asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(self.host_key_path))
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="element-sshd", daemon=True)
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._listen(), loop).result(timeout=10)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if loop.is_running():
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def _listen(self) -> None:
        self._acceptor = await asyncssh.listen(
            "127.0.0.1",
            0,
            server_factory=lambda: _Session(self),
            server_host_keys=[str(self.host_key_path)],
            encoding="utf-8",
        )
        self.port = self._acceptor.get_port()

    async def _shutdown(self) -> None:
        if self._acceptor is not None:
            self._acceptor.close()
            await self._acceptor.wait_closed()
        with self._state:
            sessions = list(self._sessions)
        for session in sessions:
            if session.conn is not None:
                session.conn.close()
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _opened(self, session: _Session) -> None:
        with self._state:
            self._connections += 1
            self._sessions.add(session)

    def _closed(self, session: _Session) -> None:
        with self._state:
            self._sessions.discard(session)

    # -- the element's command line -------------------------------------------------------

    async def execute(self, command: str) -> tuple[int, str, str]:
        with self._state:
            self._commands.append(command)
        delay = self.delays.get(command, 0.0)
        if delay:
            await asyncio.sleep(delay)
        return self.answer(command)

    def answer(self, command: str) -> tuple[int, str, str]:
        """(exit status, stdout, stderr) for one command, changing the state as it says."""
        with self._state:
            if command == "display version":
                return (
                    0,
                    f"VRP (R) software, Version {self.software_version}\n"
                    f"Hardware version: {self.hardware_version}",
                    "",
                )
            if match := re.fullmatch(r"startup system-software (\S+\.cc)", command):
                self.next_startup = match.group(1)
                return 0, "Info: Succeeded in setting the software for booting system.", ""
            if command == "display startup":
                return 0, f"Next startup system software: {self.next_startup}", ""
            if command == "reboot fast":
                self.software_version = self.next_startup.removesuffix(".cc")
                return 0, "Info: system is rebooting", ""
            if command == "display alarm active":
                return 0, "No active alarm", ""
        return 1, "", UNRECOGNIZED
