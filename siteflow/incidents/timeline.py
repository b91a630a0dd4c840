"""Whether a field event may be added to an incident's record (INC-4, INC-8, INC-10, COM-8). No I/O.

The clocks are computed from the events, so a wrong event is a wrong SLA figure: each new
event is checked against the incident and its history before anything is written, and refused
with what to do.

- Never in the future (``now`` is the caller's clock), never before the report.
- Milestones (contact, on-site decision, on my way, on site, restored, pause, resume,
  reclassification, departure) in order: not before the last one. Remote sessions and visits
  are written after the fact and need only lie between the report and now.
- A pause only for a reason code the contract allows, never twice, never after restoration; a
  resume only of an open pause (INC-4).
- "On my way" and "on site" only after the decision that on-site support is needed (the
  travel clock starts there, INC-4); restored once.
- A reclassification changes something, and a critical incident is an emergency (INC-2).
- A departure only of an engineer on site, and COM-8 (:mod:`siteflow.incidents.presence`).
- Nothing after closure (INC-8).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from models.incident_contract import ContractIn, Severity
from models.incident_input import (
    MILESTONES,
    DepartureIn,
    EventKind,
    IncidentEvent,
    OnSiteIn,
    PauseIn,
    ReclassifiedIn,
    RemoteSessionIn,
    VisitIn,
)
from siteflow.incidents.clocks import current_severity, open_pause
from siteflow.incidents.presence import check_departure
from siteflow.incidents.refusals import IncidentRefused


class IncidentFacts(BaseModel):
    """What the rules need to know of an incident, whatever it was loaded from."""

    model_config = ConfigDict(frozen=True)

    key: str
    received_at: datetime
    reported_severity: Severity
    emergency: bool
    affects_operation: bool
    closed: bool = False


def _when(instant: datetime) -> str:
    return instant.isoformat(timespec="seconds")


def check_event(
    incident: IncidentFacts,
    history: Sequence[IncidentEvent],
    event: IncidentEvent,
    contract: ContractIn,
    now: datetime,
) -> None:
    """Raise :class:`IncidentRefused` when ``event`` may not follow ``history``; return when it may."""
    key = incident.key
    if incident.closed:
        raise IncidentRefused("INC-8", f"{key} is closed: nothing more is recorded on it")
    starts = [event.at]
    if isinstance(event, RemoteSessionIn | VisitIn):
        starts.append(event.start)
    if event.at > now:
        raise IncidentRefused(
            "INC-4", f"the {event.kind.value} time {_when(event.at)} is in the future (now {_when(now)})"
        )
    if min(starts) < incident.received_at:
        raise IncidentRefused(
            "INC-4",
            f"the {event.kind.value} time {_when(min(starts))} is before {key} was reported "
            f"({_when(incident.received_at)})",
        )
    if event.kind in MILESTONES:
        last = next((e for e in reversed(history) if e.kind in MILESTONES), None)
        if last is not None and event.at < last.at:
            raise IncidentRefused(
                "INC-4",
                f"events are recorded in order: {event.kind.value} at {_when(event.at)} is before the "
                f"last one ({last.kind.value} at {_when(last.at)})",
            )
    kinds = {e.kind for e in history}
    restored = EventKind.RESTORED in kinds
    paused = open_pause(history) is not None
    if isinstance(event, PauseIn):
        if event.reason not in contract.pause_reasons:
            allowed = ", ".join(contract.pause_reasons) or "none"
            raise IncidentRefused(
                "INC-4",
                f"contract {contract.code} does not allow pausing for '{event.reason}' (allowed: {allowed})",
            )
        if paused:
            raise IncidentRefused("INC-4", f"the clocks of {key} are already paused: resume them first")
        if restored:
            raise IncidentRefused("INC-4", f"{key} is restored: its clocks have stopped, nothing to pause")
    elif event.kind is EventKind.RESUME and not paused:
        raise IncidentRefused("INC-4", f"the clocks of {key} are not paused: nothing to resume")
    elif event.kind in (EventKind.ON_MY_WAY, EventKind.ON_SITE) and EventKind.ON_SITE_NEEDED not in kinds:
        raise IncidentRefused(
            "INC-4",
            f"record the decision that on-site support is needed before '{event.kind.value}': "
            "the travel clock starts there",
        )
    elif isinstance(event, OnSiteIn) and event.site_access is None:
        raise IncidentRefused(
            "COM-7",
            "work on site starts only after the site-access checklist is recorded: the duty staff's "
            "consent (who agreed), badges worn, and the room supervisor's consent if removable media "
            "is used — give them with the on-site event (`siteflow incidents event KEY on-site "
            "--duty-staff NAME --badge`)",
        )
    elif event.kind is EventKind.RESTORED and restored:
        raise IncidentRefused("INC-4", f"{key} is already recorded as restored")
    elif isinstance(event, ReclassifiedIn):
        before = current_severity(incident.reported_severity, history)
        before_emergency = next(
            (e.emergency for e in reversed(history) if isinstance(e, ReclassifiedIn)), incident.emergency
        )
        if event.severity is before and event.emergency is before_emergency:
            raise IncidentRefused("INC-1", f"{key} is already {before.value}: nothing to reclassify")
        if event.severity is Severity.CRITICAL and not event.emergency:
            raise IncidentRefused("INC-2", "every critical incident is an emergency")
    elif isinstance(event, DepartureIn):
        check_departure(
            incident_key=key, affects_operation=incident.affects_operation, history=history, event=event
        )
