"""Disputed outage attribution (INC-7): "Disputed attribution is agreed with the customer; the
customer decides." No I/O.

An outage's cause segments are recorded by us (:class:`models.incident_input.OutageIn`). When
their attribution is disputed — said so when the outage is recorded, or later by the incident's
owner or the office, on the customer's word or our own — the incident's run opens a customer
gate showing the segments and asking which attribution holds: the segments as recorded, or the
whole outage the product's, the customer's or external. The customer's answer is final: a
second dispute of the same outage is refused, and so is one after the incident is closed (its
run, which would open the gate, has ended). While the gate waits, the month's report counts
the recorded segments and marks the outage disputed; once answered it counts the final ones.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict

from models.incident import Attribution
from models.incident_input import AttributionAnswer, Cause, CauseSegmentIn
from siteflow.incidents.refusals import IncidentRefused

GATE_PREFIX = "outage-attribution-"
WAKE_KEY = "outage-disputed"
"""Not a gate: the bell on the incident run's open-gates form (`flows.gate_wait.any_form`) that
wakes the run when an outage is disputed, so it opens that outage's customer gate."""


def gate_key(outage_id: str) -> str:
    """The customer gate of one outage's disputed attribution, e.g. ``outage-attribution-1f0c9a2b``."""
    return GATE_PREFIX + outage_id.replace("-", "")[:8].lower()


class DisputeRead(BaseModel):
    """A disputed outage as the flow sees it: what the customer's gate shows and asks."""

    model_config = ConfigDict(frozen=True)

    outage_id: str
    element: str
    start: datetime
    end: datetime
    segments: list[CauseSegmentIn]
    reason: str
    disputed_by: str
    disputed_at: datetime
    attribution: Attribution
    decided_by: str | None = None

    @property
    def gate_key(self) -> str:
        return gate_key(self.outage_id)

    @property
    def pending(self) -> bool:
        return self.attribution is Attribution.DISPUTED


def check_dispute(
    *,
    key: str,
    outage_id: str,
    attribution: Attribution,
    incident_closed: bool,
    decided_by: str | None = None,
    decided_at: datetime | None = None,
) -> None:
    """Refuse a dispute that cannot be: the customer already decided (final), one already
    waits for their answer, or the incident is closed."""
    if attribution is Attribution.DECIDED:
        when = f" on {decided_at:%Y-%m-%d %H:%M} UTC" if decided_at else ""
        raise IncidentRefused(
            "INC-7",
            f"the customer ({decided_by or 'the customer'}) decided the attribution of outage {outage_id}"
            f"{when}; the customer's answer is final — it cannot be disputed again",
        )
    if attribution is Attribution.DISPUTED:
        raise IncidentRefused(
            "INC-7",
            f"outage {outage_id} is already disputed and waits for the customer's answer at its gate "
            f"{gate_key(outage_id)}",
        )
    if incident_closed:
        raise IncidentRefused(
            "INC-7", f"{key} is closed: its outages' attribution can no longer go to the customer"
        )


def final_segments(
    start: datetime, end: datetime, recorded: list[CauseSegmentIn], answer: AttributionAnswer
) -> list[CauseSegmentIn]:
    """The segments that count after the customer's answer, each marked agreed by the customer:
    the recorded ones as they are, or one segment over the whole outage for the cause they name."""
    if answer is AttributionAnswer.RECORDED:
        return [s.model_copy(update={"agreed_by_customer": True}) for s in recorded]
    return [CauseSegmentIn(cause=Cause(answer.value), start=start, end=end, agreed_by_customer=True)]


def segments_text(segments: list[CauseSegmentIn]) -> str:
    """The recorded segments in words, for the customer's gate: "product 40 min (…–…), external 15 min"."""

    def minutes(value: timedelta) -> str:
        return f"{value.total_seconds() / 60:g} min"

    return ", ".join(
        f"{s.cause.value} {minutes(s.duration)} ({s.start:%Y-%m-%d %H:%M}–{s.end:%H:%M} UTC)"
        for s in segments
    )
