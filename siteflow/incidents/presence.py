"""Who is on site for an incident, and whether they may leave (COM-8, INC-10). No I/O.

COM-8: a fault that affects normal operation keeps maintenance staff on site until it is fully
resolved (在故障未得到彻底解决之前,维护人员必须在现场值班,不得随意离开). An engineer is on
site from their "on site" event until their departure. Before restoration, the last engineer
on site of an incident that affects normal operation may not leave; one of several may (a
handover on site keeps staff there).
"""

from __future__ import annotations

from collections.abc import Sequence

from models.incident_input import DepartureIn, EventKind, IncidentEvent
from siteflow.incidents.refusals import IncidentRefused


def on_site(history: Sequence[IncidentEvent]) -> list[str]:
    """The engineers on site now, in order of arrival."""
    present: list[str] = []
    for event in history:
        if event.kind is EventKind.ON_SITE and event.by not in present:
            present.append(event.by)
        elif event.kind is EventKind.DEPARTURE and event.by in present:
            present.remove(event.by)
    return present


def check_departure(
    *, incident_key: str, affects_operation: bool, history: Sequence[IncidentEvent], event: DepartureIn
) -> None:
    """Refuse a departure of someone not on site, and (COM-8) the last engineer's departure
    before restoration of an incident that affects normal operation."""
    present = on_site(history)
    if event.by not in present:
        raise IncidentRefused("INC-10", f"{event.by} is not recorded on site for {incident_key}")
    restored = any(e.kind is EventKind.RESTORED for e in history)
    if affects_operation and not restored and present == [event.by]:
        raise IncidentRefused(
            "COM-8",
            f"{incident_key} affects normal operation and is not restored yet: {event.by} stays on "
            "site until it is fully resolved (or until another engineer is on site)",
        )
