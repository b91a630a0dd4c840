"""A simulated network element: the default driver for the demo and the tests.

It plays a VRP-style command line over a state kept in a JSON file under SITEFLOW_HOME, so
the element outlives the process that drives it — as a real element does when siteflow is
killed in the middle of a step. A command's effect is written when the command is accepted,
before its duration elapses: a kill half-way leaves the effect on the element, and the
flow must find it by reading the element (UPG-5). Every command received is counted, which
is how the tests prove that no step ran twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from models.runbook import Command
from models.upgrade_plan import ElementIn
from siteflow.elements.driver import CommandResult, ElementUnreachable


def state_path(home: Path, window_id: str, element: str) -> Path:
    return home / "simulator" / window_id / f"{element}.json"


class SimulatedElement:
    def __init__(
        self,
        element: ElementIn,
        path: Path,
        time_scale: float = 1.0,
        rollback_ids: frozenset[str] = frozenset(),
    ) -> None:
        self.element = element
        self.sim = element.simulation
        self.path = path
        self.time_scale = time_scale
        self.rollback_ids = rollback_ids

    def load(self) -> dict[str, Any]:
        if self.path.exists():
            state: dict[str, Any] = json.loads(self.path.read_text())
            return state
        return {
            "software": self.element.software_version,
            "hardware": self.element.hardware_version,
            "next_startup": self.element.software_version,
            "staged": [self.element.software_version],
            "config": f"sysname {self.element.name}\nsite {self.element.site}\n",
            "executions": {},
        }

    def save(self, state: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
        os.replace(tmp, self.path)

    def executions(self) -> dict[str, int]:
        counts: dict[str, int] = self.load()["executions"]
        return counts

    async def run(self, command: Command, timeout: float) -> CommandResult:
        if self.sim.unreachable:
            raise ElementUnreachable(f"{self.element.name} ({self.element.address}) does not answer")
        state = self.load()
        state["executions"][command.id] = state["executions"].get(command.id, 0) + 1
        upgraded = state["software"] != self.element.software_version  # test faults come with the new version
        failing = command.id in self.sim.fail_steps or (upgraded and command.id in self.sim.fail_tests)
        failing = failing or (self.sim.rollback_fails and command.id in self.rollback_ids)
        output, seconds = (
            ("Error: the operation failed.", self.sim.step_seconds)
            if failing
            else self._apply(state, command.command)
        )
        self.save(state)  # the element accepted the command: its effect is there from now on
        delay = seconds * self.time_scale
        if command.id in self.sim.hang_steps:
            delay = timeout + 3600  # never answers, whatever the time scale
        try:
            await asyncio.wait_for(asyncio.sleep(delay), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"{command.title!r} on {self.element.name} did not finish in {timeout:.0f}s"
            ) from None
        return CommandResult(
            command=command.command, output=output, ok=not failing and command.matches(output)
        )

    def _apply(self, state: dict[str, Any], line: str) -> tuple[str, float]:
        """The element's answer to one command line, and how long it takes."""
        words = line.split()
        step = self.sim.step_seconds
        if line.startswith("display version"):
            return (
                f"VRP (R) software, Version {state['software']}\nHardware version: {state['hardware']}",
                step,
            )
        if line.startswith("save backup"):
            digest = hashlib.sha256(state["config"].encode()).hexdigest()
            state["backup_sha256"] = digest if not self.sim.corrupt_backup else "0" * 64
            return f"Info: backup saved to flash:/backup.cfg sha256={digest}", step
        if line.startswith("display backup"):
            return f"flash:/backup.cfg sha256={state.get('backup_sha256', 'none')}", step
        if words[:1] == ["download"] and len(words) > 1:
            state["staged"] = sorted(set(state["staged"]) | {words[1].removesuffix(".cc")})
            return f"Info: {words[1]} downloaded to flash:", step
        if line.startswith("dir flash"):
            return "\n".join(f"flash:/{v}.cc" for v in state["staged"]), step
        if words[:2] == ["startup", "system-software"] and len(words) > 2:
            version = words[2].removesuffix(".cc")
            if version not in state["staged"]:
                return f"Error: flash:/{words[2]} does not exist.", step
            state["next_startup"] = version
            return "Info: Succeeded in setting the software for booting system.", step
        if line.startswith("display startup"):
            return f"Next startup system software: {state['next_startup']}.cc", step
        if words[:1] == ["reboot"]:
            state["software"] = state["next_startup"]
            return "Info: system is rebooting ... done", self.sim.reboot_seconds
        if line.startswith("display alarm"):
            return "No active alarm", step
        if line.startswith("display interface"):
            return "Interfaces up: 48/48", step
        if line.startswith("display ospf"):
            return "OSPF neighbours in state Full: 4", step
        if re.match(r"^ping\s", line):
            return "5 packet(s) transmitted, 5 received, 0.00% packet loss", step
        return "Info: OK", step

    async def close(self) -> None:
        return None
