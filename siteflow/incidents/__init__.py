"""Incidents under SLA (docs/process.md §3, INC-1 … INC-10, COM-2, COM-8): the domain core.

Pure building blocks (no I/O) for the incident flow, intake, keeper and pages to come:

- :mod:`~siteflow.incidents.severity` — questionnaire → critical/major/minor or ambiguous
  (INC-1, INC-3); emergency (INC-2).
- :mod:`~siteflow.incidents.business_hours` — 24×7 or the contract's hours and holidays, DST-correct.
- :mod:`~siteflow.incidents.clocks` — response, travel and restoration clocks with due times and
  50 %/75 %/breach marks (INC-4); notices that are due, never twice.
- :mod:`~siteflow.incidents.timeline` — whether an event may be recorded (INC-4, INC-8);
  :mod:`~siteflow.incidents.presence` — COM-8.
- :mod:`~siteflow.incidents.outages` — what counts (INC-5 … INC-7);
  :mod:`~siteflow.incidents.closure` (INC-8).
- :mod:`~siteflow.incidents.report` and :mod:`~siteflow.incidents.report_output` — the month's figures.

:mod:`~siteflow.incidents.records` stores and loads them (the caller's session and clock).
"""

from siteflow.incidents.clocks import (
    ClockKind,
    ClockReading,
    IncidentClocks,
    MarkKind,
    compute_clocks,
    due_notices,
)
from siteflow.incidents.refusals import IncidentRefused
from siteflow.incidents.severity import SeverityQuestionnaire, is_emergency, propose_severity, settle_severity
from siteflow.incidents.timeline import IncidentFacts, check_event

__all__ = [
    "ClockKind",
    "ClockReading",
    "IncidentClocks",
    "IncidentFacts",
    "IncidentRefused",
    "MarkKind",
    "SeverityQuestionnaire",
    "check_event",
    "compute_clocks",
    "due_notices",
    "is_emergency",
    "propose_severity",
    "settle_severity",
]
