"""The month's incident figures, TL 9000 style (INC-1 … INC-7). Pure: records in, figures out.

Which month: incidents *received* and outages *started* between the first instant of the month
and the first of the next, on the report's clock (``zone``, default UTC). Clocks are read as
of ``as_of`` (the end of the month for a past month), so the report of a closed month does
not change when it is printed again.

- **Incidents** by severity (the latest classification) and how many were emergencies (INC-2).
- **Times** per clock and severity, over the clocks that stopped: median, 90th percentile
  (nearest rank: the ⌈0.9·n⌉-th smallest) and maximum, in minutes of each incident's own SLA
  clock (business hours for major and minor, pauses excluded — what the target is measured
  against); the targets met and the share on time, over the clocks that had a target.
- **Breaches**: every clock past its target, stopped or still running, with the incident key.
- **Outages** counted by INC-5 (longer than the threshold), per element and per customer, all
  causes and product-attributable only: count, minutes, and the annualised outage minutes per
  unit in service, ``SO = 12 × Σ(affected units × minutes) ÷ units in service`` (TL 9000's
  SO measurement annualised from one month). Product minutes are the product segments' (INC-7);
  an outage is product-attributable when any of it is. Units in service come from the
  contract's covered elements, else the largest number recorded on the element's outages.
- **Our own work**: counted outages flagged as caused by our work, with the project or window.
- **Disputed attribution** (INC-7): an outage whose attribution waits for the customer counts
  by its recorded segments and is marked disputed (per element and customer, and listed); once
  the customer decided, it counts by the final segments.
- **Problem reports** still open after their due date, as of ``as_of``.
"""

from __future__ import annotations

import enum
import math
import statistics
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from models.incident import Attribution
from models.incident_contract import ContractIn, Severity
from models.incident_input import Cause
from siteflow.incidents.clocks import ClockKind, ClockState, compute_clocks
from siteflow.incidents.outages import OUTAGE_THRESHOLD, counts, product_attributable
from siteflow.incidents.records import IncidentRecord, OutageRecord, ProblemRecord

SO_FORMULA = "SO = 12 × Σ(affected units × outage minutes) ÷ units in service"


class _Figures(BaseModel):
    model_config = ConfigDict(frozen=True)


class SeverityCount(_Figures):
    severity: Severity
    incidents: int
    emergencies: int


class ClockFigures(_Figures):
    clock: ClockKind
    severity: Severity
    measured: int = Field(description="Clocks that stopped")
    median_minutes: float | None
    p90_minutes: float | None
    max_minutes: float | None
    target_minutes: list[int] = Field(description="The distinct targets in force (contracts may differ)")
    with_target: int
    on_time: int
    on_time_share: float | None = Field(description="on_time ÷ with_target, 0–1")


class Breach(_Figures):
    key: str
    customer: str
    clock: ClockKind
    severity: Severity
    elapsed_minutes: float
    target_minutes: float
    over_minutes: float
    running: bool = Field(description="The clock had not stopped as of the report")


class OutageScope(enum.StrEnum):
    ELEMENT = "element"
    CUSTOMER = "customer"


class OutageFigures(_Figures):
    scope: OutageScope
    name: str
    customer: str
    units_in_service: int
    outages: int = Field(description="Counted outages, all causes")
    product_outages: int
    minutes: float = Field(description="Outage minutes, all causes")
    product_minutes: float
    unit_minutes: float = Field(description="Σ affected units × minutes, all causes")
    product_unit_minutes: float
    so: float = Field(description="Annualised outage minutes per unit in service, all causes")
    so_product: float
    disputed: int = Field(
        default=0, description="Counted outages whose attribution waits for the customer (INC-7)"
    )


class OurWorkOutage(_Figures):
    incident_key: str
    element: str
    work_ref: str | None
    start: datetime
    minutes: float


class DisputedOutage(_Figures):
    """INC-7: counted by its recorded segments until the customer decides; then by theirs."""

    incident_key: str
    outage_id: str
    element: str
    start: datetime
    minutes: float
    product_minutes: float


class OverdueProblem(_Figures):
    id: str
    incident_key: str
    title: str
    due: date
    days_overdue: int


class IncidentMonthReport(_Figures):
    """Every figure the report shows (the JSON carries them all)."""

    month: str
    zone: str
    period_start: datetime
    period_end: datetime
    as_of: datetime
    incidents: int
    emergencies: int
    by_severity: list[SeverityCount]
    times: list[ClockFigures]
    breaches: list[Breach]
    outage_threshold_seconds: float
    outages_recorded: int
    outages_counted: int
    so_formula: str = SO_FORMULA
    outages_by_element: list[OutageFigures]
    outages_by_customer: list[OutageFigures]
    our_work: list[OurWorkOutage]
    disputed_outages: list[DisputedOutage] = Field(
        default_factory=list, description="Attribution disputed, the customer's answer awaited (INC-7)"
    )
    overdue_problems: list[OverdueProblem]


def month_bounds(month: str, zone: str = "UTC") -> tuple[datetime, datetime]:
    """``2026-11`` → the first instants of November and December on ``zone``'s clock, in UTC."""
    try:
        year, number = (int(part) for part in month.split("-"))
        first = date(year, number, 1)
    except ValueError as exc:
        raise ValueError(f"month {month!r}: write it as YYYY-MM, e.g. 2026-11") from exc
    following = date(year + (number == 12), number % 12 + 1, 1)
    tz = ZoneInfo(zone)
    return (
        datetime(first.year, first.month, 1, tzinfo=tz).astimezone(UTC),
        datetime(following.year, following.month, 1, tzinfo=tz).astimezone(UTC),
    )


def nearest_rank(values: Sequence[float], share: float) -> float:
    """The ⌈share·n⌉-th smallest value (nearest-rank percentile)."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(share * len(ordered))) - 1]


def _minutes(value: timedelta) -> float:
    return round(value.total_seconds() / 60, 2)


def _exact_minutes(value: timedelta) -> float:
    """Unrounded: outage sums are rounded once, at the end (16 s is 0.2667 min, not 0.27)."""
    return value.total_seconds() / 60


def _time_figures(
    incidents: Sequence[IncidentRecord], contracts: dict[str, ContractIn], as_of: datetime
) -> tuple[list[ClockFigures], list[Breach]]:
    samples: dict[tuple[ClockKind, Severity], list[tuple[float, float | None]]] = {}
    breaches: list[Breach] = []
    for incident in incidents:
        clocks = compute_clocks(
            received_at=incident.received_at,
            reported_severity=incident.reported_severity,
            events=incident.events,
            contract=contracts[incident.contract],
            now=as_of,
        )
        for reading in clocks.readings:
            target = _minutes(reading.target) if reading.target is not None else None
            if reading.state is ClockState.STOPPED:
                samples.setdefault((reading.clock, clocks.severity), []).append(
                    (_minutes(reading.elapsed), target)
                )
            if reading.breached and target is not None:
                spent = _minutes(reading.elapsed)
                breaches.append(
                    Breach(
                        key=incident.key,
                        customer=incident.customer,
                        clock=reading.clock,
                        severity=clocks.severity,
                        elapsed_minutes=spent,
                        target_minutes=target,
                        over_minutes=round(spent - target, 2),
                        running=reading.state is not ClockState.STOPPED,
                    )
                )
    figures: list[ClockFigures] = []
    for clock in ClockKind:
        for severity in Severity:
            values = samples.get((clock, severity), [])
            elapsed = [v for v, _ in values]
            targeted = [(v, t) for v, t in values if t is not None]
            on_time = sum(1 for v, t in targeted if v <= t)
            figures.append(
                ClockFigures(
                    clock=clock,
                    severity=severity,
                    measured=len(elapsed),
                    median_minutes=round(statistics.median(elapsed), 2) if elapsed else None,
                    p90_minutes=nearest_rank(elapsed, 0.9) if elapsed else None,
                    max_minutes=max(elapsed) if elapsed else None,
                    target_minutes=sorted({int(t) for _, t in targeted}),
                    with_target=len(targeted),
                    on_time=on_time,
                    on_time_share=round(on_time / len(targeted), 4) if targeted else None,
                )
            )
    return figures, sorted(breaches, key=lambda b: (b.key, list(ClockKind).index(b.clock)))


def _outage_figures(
    scope: OutageScope, name: str, customer: str, units: int, outages: Sequence[OutageRecord]
) -> OutageFigures:
    minutes = sum(_exact_minutes(o.outage.duration) for o in outages)
    product = sum(_exact_minutes(o.outage.attributed(Cause.PRODUCT)) for o in outages)
    unit_minutes = sum(o.outage.affected_units * _exact_minutes(o.outage.duration) for o in outages)
    product_unit_minutes = sum(
        o.outage.affected_units * _exact_minutes(o.outage.attributed(Cause.PRODUCT)) for o in outages
    )
    return OutageFigures(
        scope=scope,
        name=name,
        customer=customer,
        units_in_service=units,
        outages=len(outages),
        product_outages=sum(1 for o in outages if product_attributable(o.outage)),
        minutes=round(minutes, 2),
        product_minutes=round(product, 2),
        unit_minutes=round(unit_minutes, 2),
        product_unit_minutes=round(product_unit_minutes, 2),
        disputed=sum(1 for o in outages if o.attribution is Attribution.DISPUTED),
        so=round(12 * unit_minutes / units, 4),
        so_product=round(12 * product_unit_minutes / units, 4),
    )


def monthly_report(
    *,
    month: str,
    incidents: Sequence[IncidentRecord],
    outages: Sequence[OutageRecord],
    problems: Sequence[ProblemRecord],
    contracts: Sequence[ContractIn],
    as_of: datetime,
    zone: str = "UTC",
    threshold: timedelta = OUTAGE_THRESHOLD,
) -> IncidentMonthReport:
    """The month's figures from its records (already selected by :func:`month_bounds`)."""
    start, end = month_bounds(month, zone)
    as_of = min(as_of, end)
    terms = {c.code: c for c in contracts}
    in_month = [i for i in incidents if start <= i.received_at < end]
    by_severity = [
        SeverityCount(
            severity=s,
            incidents=sum(1 for i in in_month if i.severity is s),
            emergencies=sum(1 for i in in_month if i.severity is s and i.emergency),
        )
        for s in Severity
    ]
    times, breaches = _time_figures(in_month, terms, as_of)

    recorded = [o for o in outages if start <= o.outage.start < end]
    counted = [o for o in recorded if counts(o.outage, threshold)]
    elements: dict[tuple[str, str], list[OutageRecord]] = {}
    for o in counted:
        elements.setdefault((o.customer, o.outage.element), []).append(o)

    def units_of(customer: str, element: str, seen: Sequence[OutageRecord]) -> int:
        for contract in contracts:
            if contract.customer == customer and (units := contract.units_in_service(element)) is not None:
                return units
        return max(o.outage.units_in_service for o in seen)

    by_element = [
        _outage_figures(OutageScope.ELEMENT, element, customer, units_of(customer, element, seen), seen)
        for (customer, element), seen in sorted(elements.items())
    ]
    by_customer: list[OutageFigures] = []
    for customer in sorted({c for c, _ in elements}):
        covered = [c for c in contracts if c.customer == customer and c.elements]
        base = (
            sum(e.units_in_service for c in covered for e in c.elements)
            if covered
            else sum(f.units_in_service for f in by_element if f.customer == customer)
        )
        seen = [o for o in counted if o.customer == customer]
        by_customer.append(_outage_figures(OutageScope.CUSTOMER, customer, customer, base, seen))

    our_work = [
        OurWorkOutage(
            incident_key=o.incident_key,
            element=o.outage.element,
            work_ref=o.outage.work_ref,
            start=o.outage.start,
            minutes=_minutes(o.outage.duration),
        )
        for o in counted
        if o.outage.our_work
    ]
    disputed = [
        DisputedOutage(
            incident_key=o.incident_key,
            outage_id=o.id,
            element=o.outage.element,
            start=o.outage.start,
            minutes=_minutes(o.outage.duration),
            product_minutes=_minutes(o.outage.attributed(Cause.PRODUCT)),
        )
        for o in counted
        if o.attribution is Attribution.DISPUTED
    ]
    on = as_of.date()
    overdue = [
        OverdueProblem(
            id=p.id, incident_key=p.incident_key, title=p.title, due=p.due, days_overdue=(on - p.due).days
        )
        for p in sorted(problems, key=lambda p: p.due)
        if p.opened_at < end and (p.closed_at is None or p.closed_at > as_of) and on > p.due
    ]
    return IncidentMonthReport(
        month=month,
        zone=zone,
        period_start=start,
        period_end=end,
        as_of=as_of,
        incidents=len(in_month),
        emergencies=sum(1 for i in in_month if i.emergency),
        by_severity=by_severity,
        times=times,
        breaches=breaches,
        outage_threshold_seconds=threshold.total_seconds(),
        outages_recorded=len(recorded),
        outages_counted=len(counted),
        outages_by_element=by_element,
        outages_by_customer=by_customer,
        our_work=our_work,
        disputed_outages=disputed,
        overdue_problems=overdue,
    )
