"""How siteflow talks to a network element: one Protocol, two implementations.

The flow never knows whether it drives the simulator (demo, tests) or a real element over
SSH. Credentials never pass through here from the plan form: each driver reads them from
settings or the environment (issue #3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from models.runbook import Command


class ElementUnreachable(Exception):
    """The element did not answer; the message says which address and why."""


@dataclass(frozen=True)
class CommandResult:
    command: str
    output: str
    ok: bool  # the output matched the command's expected pattern
    exit_status: int | None = None


class ElementDriver(Protocol):
    """One element. Every method may raise :class:`ElementUnreachable`."""

    async def run(self, command: Command, timeout: float) -> CommandResult:
        """Run one runbook command and check its output against ``command.expect``."""
        ...

    async def close(self) -> None: ...


class Unreachable:
    """A driver for an element that cannot be reached at all (e.g. SSH not configured):
    every command fails with the reason, so pre-checks record it and go is refused."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def run(self, command: Command, timeout: float) -> CommandResult:
        raise ElementUnreachable(self.reason)

    async def close(self) -> None:
        return None
