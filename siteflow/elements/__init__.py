"""Network elements behind one driver interface: a simulator and an SSH driver."""

from __future__ import annotations

from models.runbook import Runbook
from models.upgrade_plan import DriverKind, ElementIn
from siteflow.elements.driver import CommandResult, ElementDriver, ElementUnreachable, Unreachable
from siteflow.settings import get_settings

__all__ = ["CommandResult", "ElementDriver", "ElementUnreachable", "connect"]


def connect(window_id: str, element: ElementIn, runbook: Runbook) -> ElementDriver:
    """The driver the plan names for this element."""
    settings = get_settings()
    if element.driver is DriverKind.SSH:
        from siteflow.elements.ssh import SshDriver, SshNotConfigured

        try:
            return SshDriver(element.address)
        except SshNotConfigured as exc:  # recorded as a failed pre-check, not a crashed run
            return Unreachable(f"{element.name} ({element.address}): {exc}")
    from siteflow.elements.simulator import SimulatedElement, state_path

    return SimulatedElement(
        element,
        state_path(settings.home, window_id, element.name),
        time_scale=settings.simulator_time_scale,
        rollback_ids=frozenset(s.id for s in runbook.rollback_steps),
    )
