"""Which outages count (INC-5 … INC-7). No I/O.

INC-5: every outage *longer than* 15 seconds in which all or part of the system loses a main
function is recorded and counted — exactly 15 s does not count, 16 s does. Shorter ones are
kept (an outage record is evidence) but left out of every figure. The threshold is a setting
(``SITEFLOW_OUTAGE_THRESHOLD_SECONDS``). The checks of one outage's own figures — end after
start, cause segments that neither overlap nor leave a second unattributed — are the model's
(:class:`models.incident_input.OutageIn`); :func:`parse_outage` turns them into a refusal.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from models.incident_input import Cause, OutageIn
from models.text_kinds import problems
from siteflow.incidents.refusals import IncidentRefused

OUTAGE_THRESHOLD = timedelta(seconds=15)
"""INC-5's default: an outage counts when it lasts longer than this."""


def counts(outage: OutageIn, threshold: timedelta = OUTAGE_THRESHOLD) -> bool:
    """INC-5: longer than the threshold (strictly)."""
    return outage.duration > threshold


def product_attributable(outage: OutageIn) -> bool:
    """Some of the outage is attributed to the product (INC-7)."""
    return outage.attributed(Cause.PRODUCT) > timedelta()


def parse_outage(raw: OutageIn | dict[str, Any]) -> OutageIn:
    """An outage from a form or file, or the refusal (INC-7) naming what is wrong."""
    if isinstance(raw, OutageIn):
        return raw
    try:
        return OutageIn.model_validate(raw)
    except ValidationError as exc:
        raise IncidentRefused("INC-7", "; ".join(problems(exc))) from exc
