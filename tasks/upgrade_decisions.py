"""What an upgrade window's run knows about its elements' decisions, read through tasks.

The window flow acts on each element's decision the moment it is recorded (UPG-9, UPG-10),
whichever door it came through, while other elements are still being upgraded. Two reads
make that possible without I/O in the flow:

- :func:`read_window_state` — every element's phase and its decision gate, in one read, at
  the start of each (re-)run;
- :func:`watch_decisions` — runs beside the element work and returns as soon as a decision
  gate of the window is decided that the flow has not taken up yet; or, once no element has
  work left for ``linger`` seconds, returns nothing, so the flow can suspend and free its
  process until the next decision resumes it.
"""

from __future__ import annotations

import logging
import time

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from models.gate import Gate, GateStatus
from models.upgrade import ElementPhase, UpgradeElement
from models.upgrade_evidence import gate_key_for
from siteflow.db import read_scope
from tasks import side_effect
from tasks.gates import GateRead, read_gates

WATCH_POLL_SECONDS = 0.2
GATHER_SECONDS = 0.3
log = logging.getLogger(__name__)


class ElementState(BaseModel):
    """One element as the flow sees it when it (re-)starts."""

    name: str
    phase: ElementPhase
    gate: GateRead | None = None  # its decision gate, once opened

    @property
    def done(self) -> bool:
        return self.phase is ElementPhase.DONE

    @property
    def awaiting(self) -> bool:
        """Upgraded and tested, its gate open: nothing to do until somebody (or 04:00) decides."""
        return not self.done and self.gate is not None and not self.gate.closed

    @property
    def decided(self) -> bool:
        """Its decision is recorded and still to be carried out."""
        return not self.done and self.gate is not None and self.gate.closed


@side_effect(name="read-window-state")
def read_window_state(window_id: str, names: list[str]) -> list[ElementState]:
    """Every element's phase and decision gate, in the plan's order."""
    keys = {gate_key_for(n): n for n in names}
    with read_scope() as session:
        phases = {
            r.name: ElementPhase(r.phase)
            for r in session.execute(select(UpgradeElement).where(UpgradeElement.window_id == window_id))
            .scalars()
            .all()
        }
        gates = session.execute(
            select(Gate).where(Gate.subject == window_id, Gate.key.in_(list(keys)))
        ).scalars()
        by_element = {keys[g.key]: g for g in read_gates(session, list(gates))}
    return [
        ElementState(name=n, phase=phases.get(n, ElementPhase.WAITING), gate=by_element.get(n)) for n in names
    ]


def _busy(phases: dict[str, str], open_gates: set[str]) -> bool:
    """Whether any element still has work: not done, and not merely waiting at an open gate."""
    return any(
        phase != ElementPhase.DONE.value and not (phase == ElementPhase.DECIDING.value and name in open_gates)
        for name, phase in phases.items()
    )


@side_effect(name="watch-decisions")
def watch_decisions(window_id: str, names: list[str], taken: list[str], linger: float) -> list[ElementState]:
    """Block until an element's decision is recorded that is not in `taken`; return those elements.

    Returns an empty list once no element has had work left for `linger` seconds (all done,
    or waiting at open gates): then the flow may suspend. Polls siteflow's own database, a
    read of two small tables, every WATCH_POLL_SECONDS.
    """
    keys = {gate_key_for(n): n for n in names}
    skip = set(taken)
    idle_since: float | None = None
    while True:
        try:
            found, busy, waiting = _look(window_id, keys, skip)
        except OperationalError as exc:  # the database briefly gone: keep watching
            log.warning("watching %s: %s; trying again", window_id, exc)
            time.sleep(1.0)
            continue
        if found:  # a moment more: decisions come in bursts, and each return costs a task run
            time.sleep(GATHER_SECONDS)
            more, _, _ = _look(window_id, keys, skip)
            return more or found
        if busy:
            idle_since = None
        elif idle_since is None:
            idle_since = time.monotonic()
        if idle_since is not None and (time.monotonic() - idle_since >= linger or not waiting):
            return []  # idle long enough to suspend, or all done: nothing to wait for
        time.sleep(WATCH_POLL_SECONDS)


def _look(window_id: str, keys: dict[str, str], skip: set[str]) -> tuple[list[ElementState], bool, bool]:
    """One look: decided gates not taken up yet; whether any element has work; whether any waits."""
    with read_scope() as session:
        phases = {
            name: phase
            for name, phase in session.execute(
                select(UpgradeElement.name, UpgradeElement.phase).where(UpgradeElement.window_id == window_id)
            )
        }
        gates = list(
            session.execute(select(Gate).where(Gate.subject == window_id, Gate.key.in_(list(keys)))).scalars()
        )
        fresh = [
            g
            for g in gates
            if g.status == GateStatus.DECIDED.value
            and keys[g.key] not in skip
            and phases.get(keys[g.key]) != ElementPhase.DONE.value
        ]
        found = [
            ElementState(name=keys[g.key], phase=ElementPhase(phases[keys[g.key]]), gate=read)
            for g, read in zip(fresh, read_gates(session, fresh), strict=True)
        ]
    open_gates = {keys[g.key] for g in gates if g.status == GateStatus.OPEN.value}
    return found, _busy(phases, open_gates), bool(open_gates)
