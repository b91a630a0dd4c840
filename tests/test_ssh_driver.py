"""The SSH driver against a real SSH server that plays an element (tests/element_sshd.py)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from models.runbook import Command
from siteflow.elements.driver import CommandResult, ElementUnreachable
from siteflow.elements.ssh import SshDriver, SshNotConfigured, parse_address
from siteflow.settings import reset_settings
from tests.element_sshd import UNRECOGNIZED, USERNAME, ElementSshd

PASSWORD = "Huawei@123-test"
SSH_VARS = [
    "SITEFLOW_SSH_USERNAME",
    "SITEFLOW_SSH_PASSWORD",
    "SITEFLOW_SSH_KEY_FILE",
    "SITEFLOW_SSH_KNOWN_HOSTS",
    "SITEFLOW_SSH_CONNECT_TIMEOUT",
]

READ_VERSION = Command(
    id="read-version",
    title="Read versions",
    command="display version",
    expect=r"Version V800R021C10SPC600",
)


def cmd(command: str, expect: str = "", id: str = "step") -> Command:
    return Command(id=id, title=command, command=command, expect=expect)


@pytest.fixture
def ssh_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The SSH settings of this test only: none inherited from the machine's environment."""
    for name in SSH_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SITEFLOW_SSH_USERNAME", USERNAME)
    monkeypatch.setenv("SITEFLOW_SSH_PASSWORD", PASSWORD)
    monkeypatch.setenv("SITEFLOW_SSH_CONNECT_TIMEOUT", "5")
    reset_settings()
    yield monkeypatch
    monkeypatch.undo()
    reset_settings()


@pytest.fixture
def element(tmp_path: Path) -> Iterator[ElementSshd]:
    with ElementSshd(tmp_path / "element", password=PASSWORD) as server:
        yield server


def run_all(address: str, commands: list[Command], timeout: float = 5) -> list[CommandResult]:
    """Run commands in order on one driver, as a flow step would."""

    async def go() -> list[CommandResult]:
        driver = SshDriver(address)
        try:
            return [await driver.run(c, timeout) for c in commands]
        finally:
            await driver.close()

    return asyncio.run(go())


def unreachable(address: str) -> ElementUnreachable:
    with pytest.raises(ElementUnreachable) as caught:
        run_all(address, [READ_VERSION])
    return caught.value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_version_read_matches_expected_pattern(ssh_env: pytest.MonkeyPatch, element: ElementSshd) -> None:
    (result,) = run_all(element.address, [READ_VERSION])
    assert result.ok
    assert result.exit_status == 0
    assert result.command == "display version"
    assert "Hardware version: CR5B0BKP0" in result.output
    assert element.commands == ["display version"]


def test_one_connection_is_reused(ssh_env: pytest.MonkeyPatch, element: ElementSshd) -> None:
    results = run_all(element.address, [READ_VERSION, cmd("display alarm active"), cmd("display startup")])
    assert all(r.ok for r in results)
    assert element.command_count == 3
    assert element.connection_count == 1


def test_startup_and_reboot_change_the_version(ssh_env: pytest.MonkeyPatch, element: ElementSshd) -> None:
    target = "V800R022C00SPC100"
    results = run_all(
        element.address,
        [
            cmd(f"startup system-software {target}.cc", expect=r"Succeeded in setting"),
            cmd("display startup", expect=rf"Next startup system software: {target}\.cc"),
            cmd("reboot fast", expect=r"rebooting"),
            # the element dropped the session when it rebooted: the driver must log in again
            cmd("display version", expect=rf"Version {target}\b"),
            cmd("display alarm active", expect=r"No active alarm"),
        ],
    )
    assert [r.ok for r in results] == [True] * 5, [r.output for r in results]
    assert element.software_version == target
    assert element.connection_count == 2
    assert element.command_count == 5


def test_output_not_matching_is_not_ok_and_kept(ssh_env: pytest.MonkeyPatch, element: ElementSshd) -> None:
    (result,) = run_all(element.address, [cmd("display version", expect=r"Version V999R001")])
    assert not result.ok
    assert result.exit_status == 0
    assert "VRP (R) software, Version V800R021C10SPC600" in result.output


def test_unknown_command_is_not_ok_with_exit_status_1(
    ssh_env: pytest.MonkeyPatch, element: ElementSshd
) -> None:
    (result,) = run_all(element.address, [cmd("display nonsense")])  # '' expects any output
    assert not result.ok
    assert result.exit_status == 1
    assert UNRECOGNIZED in result.output  # stderr is part of the output


def test_command_timeout_raises_and_next_command_works(
    ssh_env: pytest.MonkeyPatch, element: ElementSshd
) -> None:
    element.delays["display alarm active"] = 5

    async def go() -> tuple[str, CommandResult]:
        driver = SshDriver(element.address)
        try:
            with pytest.raises(TimeoutError) as caught:
                await driver.run(cmd("display alarm active", id="alarms"), timeout=0.3)
            return str(caught.value), await driver.run(READ_VERSION, timeout=5)
        finally:
            await driver.close()

    message, after = asyncio.run(go())
    assert element.address in message and "display alarm active" in message and "0.3 s" in message
    assert after.ok


def test_wrong_password_is_unreachable_without_the_password(
    ssh_env: pytest.MonkeyPatch, element: ElementSshd
) -> None:
    wrong = "Wr0ng-Passw0rd!"
    ssh_env.setenv("SITEFLOW_SSH_PASSWORD", wrong)
    reset_settings()
    error = unreachable(element.address)
    message = str(error)
    assert element.address in message
    assert "SITEFLOW_SSH_PASSWORD" in message
    assert wrong not in message and PASSWORD not in message
    assert wrong not in repr(error.__cause__) and wrong not in str(error.__context__)
    assert element.command_count == 0


def test_nothing_listening_is_unreachable(ssh_env: pytest.MonkeyPatch) -> None:
    address = f"127.0.0.1:{free_port()}"
    message = str(unreachable(address))
    assert address in message and "refused" in message
    assert PASSWORD not in message


def test_silent_port_is_unreachable_after_connect_timeout(ssh_env: pytest.MonkeyPatch) -> None:
    ssh_env.setenv("SITEFLOW_SSH_CONNECT_TIMEOUT", "0.5")
    reset_settings()
    with socket.socket() as silent:  # accepts TCP (backlog) but never speaks SSH
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        message = str(unreachable(address))
    assert address in message and "0.5 s" in message and "SITEFLOW_SSH_CONNECT_TIMEOUT" in message


def test_missing_username_is_a_clear_error(ssh_env: pytest.MonkeyPatch, element: ElementSshd) -> None:
    ssh_env.delenv("SITEFLOW_SSH_USERNAME")
    reset_settings()
    with pytest.raises(SshNotConfigured, match="SITEFLOW_SSH_USERNAME"):
        SshDriver(element.address)
    assert element.connection_count == 0


def test_missing_password_and_key_is_a_clear_error(ssh_env: pytest.MonkeyPatch) -> None:
    ssh_env.delenv("SITEFLOW_SSH_PASSWORD")
    reset_settings()
    with pytest.raises(SshNotConfigured, match="SITEFLOW_SSH_PASSWORD or SITEFLOW_SSH_KEY_FILE"):
        SshDriver("192.0.2.1")


def test_key_file_login(ssh_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    key_file = tmp_path / "id_ed25519"
    key.write_private_key(str(key_file))
    ssh_env.delenv("SITEFLOW_SSH_PASSWORD")
    ssh_env.setenv("SITEFLOW_SSH_KEY_FILE", str(key_file))
    reset_settings()
    with ElementSshd(tmp_path / "element", password="not-used-here", authorized_keys=[key]) as element:
        (result,) = run_all(element.address, [READ_VERSION])
    assert result.ok


def test_known_hosts_is_checked(ssh_env: pytest.MonkeyPatch, element: ElementSshd, tmp_path: Path) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(element.known_hosts_line())
    ssh_env.setenv("SITEFLOW_SSH_KNOWN_HOSTS", str(known_hosts))
    reset_settings()
    (result,) = run_all(element.address, [READ_VERSION])
    assert result.ok

    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    known_hosts.write_text(f"[127.0.0.1]:{element.port} {other}")
    message = str(unreachable(element.address))
    assert element.address in message and "SITEFLOW_SSH_KNOWN_HOSTS" in message


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("10.0.0.1", ("10.0.0.1", 22)),
        ("ne40e-1.site.example", ("ne40e-1.site.example", 22)),
        ("10.0.0.1:2222", ("10.0.0.1", 2222)),
        ("[2001:db8::1]", ("2001:db8::1", 22)),
        ("[2001:db8::1]:830", ("2001:db8::1", 830)),
        ("2001:db8::1", ("2001:db8::1", 22)),
    ],
)
def test_parse_address(address: str, expected: tuple[str, int]) -> None:
    assert parse_address(address) == expected


@pytest.mark.parametrize("address", ["", "host:", "host:ssh", "host:70000", "[2001:db8::1", "[::1]x"])
def test_parse_address_rejects(address: str) -> None:
    with pytest.raises(ValueError):
        parse_address(address)
