"""Incidents in the database (both backends): refusals change nothing; the month's report
over a handful of incidents and outages, checked against figures computed by hand."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from models.incident import Incident, IncidentEventRow, Outage, OutageCause
from models.incident_contract import Severity
from models.incident_input import (
    ClosureIn,
    ContactedIn,
    DepartureIn,
    IncidentEvent,
    OnSiteIn,
    OnSiteNeededIn,
    OutageType,
    ProblemReportIn,
    RestoredIn,
)
from siteflow.db import session_scope
from siteflow.incidents import records
from siteflow.incidents.clocks import ClockKind
from siteflow.incidents.outages import counts, parse_outage
from siteflow.incidents.refusals import IncidentRefused
from siteflow.incidents.report import monthly_report
from siteflow.incidents.report_output import ReportFormat, render_report
from tests.incident_samples import ACCESS, contract, incident

T0 = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
ELEMENTS = [{"name": "NE-A", "units_in_service": 1000}, {"name": "NE-B", "units_in_service": 500}]


def _table_counts() -> tuple[int, ...]:
    with session_scope() as s:
        return tuple(
            s.scalar(select(func.count()).select_from(t)) or 0
            for t in (Incident, IncidentEventRow, Outage, OutageCause)
        )


def outage(start: datetime, seconds: int, segments: list[tuple[str, int]], **extra: Any) -> dict[str, Any]:
    """An outage dict: segments are (cause, seconds) laid end to end from the start."""
    causes, cursor = [], start
    for cause, length in segments:
        causes.append({"cause": cause, "start": cursor, "end": cursor + timedelta(seconds=length)})
        cursor += timedelta(seconds=length)
    return {
        "element": "NE-A",
        "type": "service-impact",
        "start": start,
        "end": start + timedelta(seconds=seconds),
        "affected_units": 200,
        "units_in_service": 1000,
        "causes": causes,
    } | extra


def test_an_outage_of_exactly_15_s_does_not_count_and_16_s_does() -> None:
    """INC-5: every outage longer than 15 seconds counts (shorter ones are kept, not counted)."""
    assert not counts(parse_outage(outage(T0, 15, [("product", 15)])))
    assert counts(parse_outage(outage(T0, 16, [("product", 16)])))


def test_inc6_the_outage_type_is_required_and_kept(database_url: str) -> None:
    """INC-6: every outage is a service-impact (业务中断) or a network-element (网元中断) outage:
    one without a type, or with another, is refused; the type recorded is the type read back."""
    raw = outage(T0, 60, [("product", 60)])
    with pytest.raises(IncidentRefused, match="[Tt]ype"):
        parse_outage({k: v for k, v in raw.items() if k != "type"})
    with pytest.raises(IncidentRefused, match="[Tt]ype"):
        parse_outage(raw | {"type": "partial"})
    with session_scope() as s:
        records.save_contract(s, contract=contract(elements=ELEMENTS))
        records.open_incident(s, incident=incident(received_at=T0, elements=["NE-A"]), now=T0)
        for kind in (OutageType.NETWORK_ELEMENT, OutageType.SERVICE_IMPACT):
            records.record_outage(
                s, key="INC-2026-0001", now=NOW, outage=parse_outage(raw | {"type": kind.value})
            )
    with session_scope() as s:
        kept = records.outages_started(s, start=T0 - timedelta(days=1), end=NOW)
    assert sorted(o.outage.type for o in kept) == sorted(
        [OutageType.NETWORK_ELEMENT, OutageType.SERVICE_IMPACT]
    )


def test_refusals_name_the_rule_and_change_nothing(database_url: str) -> None:
    with session_scope() as s:
        records.save_contract(s, contract=contract(elements=ELEMENTS))
        records.open_incident(s, incident=incident(received_at=T0, elements=["NE-A"]), now=T0)
        for event in (
            OnSiteNeededIn(at=T0 + timedelta(minutes=5), by="Max Bauer"),
            OnSiteIn(at=T0 + timedelta(minutes=60), by="Eva Klein", site_access=ACCESS),
        ):
            records.record_event(s, key="INC-2026-0001", event=event, now=NOW)
    before = _table_counts()

    refusals: list[tuple[str, Any]] = [
        (
            "INC-4: unknown contract 'C-NOWHERE'",
            lambda s: records.open_incident(s, incident=incident("INC-2026-0002", code="C-NOWHERE"), now=NOW),
        ),
        (
            "INC-7: the outage ends .* before or when it starts",
            lambda s: records.record_outage(
                s,
                key="INC-2026-0001",
                now=NOW,
                outage=parse_outage(outage(T0, 60, [("product", 60)]) | {"end": T0 - timedelta(seconds=1)}),
            ),
        ),
        (
            "INC-7: cause segments overlap",
            lambda s: parse_outage(
                outage(T0, 60, [("product", 40)])
                | {
                    "causes": [
                        {"cause": "product", "start": T0, "end": T0 + timedelta(seconds=40)},
                        {
                            "cause": "external",
                            "start": T0 + timedelta(seconds=30),
                            "end": T0 + timedelta(seconds=60),
                        },
                    ]
                }
            ),
        ),
        (
            "INC-7: cause segments add up to 50 s but the outage lasts 60 s",
            lambda s: parse_outage(outage(T0, 60, [("product", 30), ("customer", 20)])),
        ),
        (
            "INC-8: closing needs cause",
            lambda s: records.close_incident(
                s,
                key="INC-2026-0001",
                now=NOW,
                closure={
                    "description": "Board failure",
                    "solution": "Board swapped",
                    "process": "Remote, then on site",
                    "summary": "Restored in 3 h",
                    "by": "Max Bauer",
                },
            ),
        ),
        (
            "COM-8: INC-2026-0001 affects normal operation",
            lambda s: records.record_event(
                s,
                key="INC-2026-0001",
                now=NOW,
                event=DepartureIn(at=NOW - timedelta(hours=1), by="Eva Klein"),
            ),
        ),
        (
            "INC-4: the contacted time .* is in the future",
            lambda s: records.record_event(
                s,
                key="INC-2026-0001",
                now=NOW,
                event=ContactedIn(at=NOW + timedelta(minutes=5), by="Max Bauer"),
            ),
        ),
        (
            "INC-4: the contacted time .* is before INC-2026-0001 was reported",
            lambda s: records.record_event(
                s,
                key="INC-2026-0001",
                now=NOW,
                event=ContactedIn(at=T0 - timedelta(minutes=5), by="Max Bauer"),
            ),
        ),
    ]
    for message, act in refusals:
        with pytest.raises(IncidentRefused, match=message), session_scope() as s:
            act(s)
        assert _table_counts() == before, message
    with session_scope() as s:
        assert s.get(Incident, "INC-2026-0001").state == "open"  # type: ignore[union-attr]


def _play(s: Any, key: str, steps: list[IncidentEvent]) -> None:
    for event in steps:
        records.record_event(s, key=key, event=event, now=NOW)


def test_monthly_report_figures_match_the_hand_computed_ones(database_url: str) -> None:
    m = timedelta(minutes=1)
    with session_scope() as s:
        records.save_contract(s, contract=contract(elements=ELEMENTS))
        # 1: critical, on time everywhere: response 20, travel 100, restoration 200 (targets 30/120/240).
        records.open_incident(
            s,
            incident=incident(
                "INC-2026-0001", received_at=T0, severity="critical", emergency=True, elements=["NE-A"]
            ),
            now=NOW,
        )
        _play(
            s,
            "INC-2026-0001",
            [
                ContactedIn(at=T0 + 20 * m, by="Max Bauer"),
                OnSiteNeededIn(at=T0 + 30 * m, by="Max Bauer"),
                OnSiteIn(at=T0 + 130 * m, by="Eva Klein", site_access=ACCESS),
                RestoredIn(at=T0 + 200 * m, by="Eva Klein"),
            ],
        )
        # 2: critical at night, late: response 40 (10 over), restoration 300 (60 over).
        t2 = datetime(2026, 11, 10, 2, 0, tzinfo=UTC)
        records.open_incident(
            s,
            incident=incident(
                "INC-2026-0002", received_at=t2, severity="critical", emergency=True, elements=["NE-B"]
            ),
            now=NOW,
        )
        _play(
            s,
            "INC-2026-0002",
            [ContactedIn(at=t2 + 40 * m, by="Max Bauer"), RestoredIn(at=t2 + 300 * m, by="Max Bauer")],
        )
        # 3: major on business hours (Berlin 11:00): response 60, restoration 120.
        t3 = datetime(2026, 11, 4, 10, 0, tzinfo=UTC)
        records.open_incident(
            s, incident=incident("INC-2026-0003", received_at=t3, elements=["NE-A"]), now=NOW
        )
        _play(
            s,
            "INC-2026-0003",
            [ContactedIn(at=t3 + 60 * m, by="Max Bauer"), RestoredIn(at=t3 + 120 * m, by="Max Bauer")],
        )
        # 4: minor: response 30, restoration 120.
        t4 = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)
        records.open_incident(
            s, incident=incident("INC-2026-0004", received_at=t4, severity="minor"), now=NOW
        )
        _play(
            s,
            "INC-2026-0004",
            [ContactedIn(at=t4 + 30 * m, by="Max Bauer"), RestoredIn(at=t4 + 120 * m, by="Max Bauer")],
        )
        # October: not in the month.
        records.open_incident(
            s,
            incident=incident(
                "INC-2026-0099", received_at=datetime(2026, 10, 31, 23, 0, tzinfo=UTC), severity="minor"
            ),
            now=NOW,
        )
        # Outages: 40 min product 30 + external 10, 200 of 1000 units; 15 s (not counted); 16 s of
        # all 500 units of NE-B; 20 min caused by our upgrade (customer-attributed), 100 units.
        records.record_outage(
            s,
            key="INC-2026-0001",
            now=NOW,
            outage=parse_outage(outage(T0, 2400, [("product", 1800), ("external", 600)])),
        )
        records.record_outage(
            s,
            key="INC-2026-0002",
            now=NOW,
            outage=parse_outage(
                outage(t2, 15, [("product", 15)], element="NE-B", affected_units=500, units_in_service=500)
            ),
        )
        records.record_outage(
            s,
            key="INC-2026-0002",
            now=NOW,
            outage=parse_outage(
                outage(
                    t2 + 10 * m,
                    16,
                    [("product", 16)],
                    element="NE-B",
                    affected_units=500,
                    units_in_service=500,
                )
            ),
        )
        records.record_outage(
            s,
            key="INC-2026-0003",
            now=NOW,
            outage=parse_outage(
                outage(
                    t3,
                    1200,
                    [("customer", 1200)],
                    affected_units=100,
                    our_work=True,
                    work_ref="UPG-2026-1104-BER",
                )
            ),
        )
        late = records.raise_problem_report(
            s,
            key="INC-2026-0001",
            now=NOW,
            report=ProblemReportIn(
                title="Board failures on NE40 line cards",
                office="Office Berlin",
                due=date(2026, 11, 20),
                by="Max Bauer",
            ),
        )
        done = records.raise_problem_report(
            s,
            key="INC-2026-0003",
            now=NOW,
            report=ProblemReportIn(
                title="Upgrade runbook step order",
                office="Office Berlin",
                due=date(2026, 11, 25),
                by="Max Bauer",
            ),
        )
        records.close_problem_report(s, report_id=done, now=datetime(2026, 11, 24, tzinfo=UTC))
        records.close_incident(
            s,
            key="INC-2026-0001",
            now=NOW,
            closure=ClosureIn(
                description="Line card failed",
                cause="Hardware fault",
                solution="Card swapped",
                process="Remote diagnosis, then on site",
                summary="Restored in 200 min",
                by="Max Bauer",
            ),
        )

    start, end = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    with session_scope() as s:
        report = monthly_report(
            month="2026-11",
            incidents=records.incidents_received(s, start=start, end=end),
            outages=records.outages_started(s, start=start, end=end),
            problems=records.problem_reports(s, opened_before=end),
            contracts=records.contracts(s),
            as_of=datetime(2026, 12, 5, tzinfo=UTC),
        )

    assert report.as_of == end  # a past month is read as of its end
    assert (report.incidents, report.emergencies) == (4, 2)
    assert [(c.severity, c.incidents, c.emergencies) for c in report.by_severity] == [
        (Severity.CRITICAL, 2, 2),
        (Severity.MAJOR, 1, 0),
        (Severity.MINOR, 1, 0),
    ]

    def times(clock: ClockKind, severity: Severity) -> tuple[Any, ...]:
        t = next(t for t in report.times if t.clock is clock and t.severity is severity)
        return (
            t.measured,
            t.median_minutes,
            t.p90_minutes,
            t.max_minutes,
            t.target_minutes,
            t.on_time,
            t.on_time_share,
        )

    assert times(ClockKind.RESPONSE, Severity.CRITICAL) == (2, 30.0, 40.0, 40.0, [30], 1, 0.5)
    assert times(ClockKind.RESTORATION, Severity.CRITICAL) == (2, 250.0, 300.0, 300.0, [240], 1, 0.5)
    assert times(ClockKind.TRAVEL, Severity.CRITICAL) == (1, 100.0, 100.0, 100.0, [120], 1, 1.0)
    assert times(ClockKind.RESPONSE, Severity.MAJOR) == (1, 60.0, 60.0, 60.0, [240], 1, 1.0)
    assert times(ClockKind.RESTORATION, Severity.MINOR) == (1, 120.0, 120.0, 120.0, [2400], 1, 1.0)
    assert times(ClockKind.TRAVEL, Severity.MAJOR)[0] == 0
    assert [(b.key, b.clock, b.over_minutes, b.running) for b in report.breaches] == [
        ("INC-2026-0002", ClockKind.RESPONSE, 10.0, False),
        ("INC-2026-0002", ClockKind.RESTORATION, 60.0, False),
    ]

    assert (report.outages_recorded, report.outages_counted) == (4, 3)
    a, b = report.outages_by_element
    # NE-A: 40 + 20 min; product 30; units×min 200×40 + 100×20 = 10 000, product 200×30 = 6 000.
    assert (a.name, a.units_in_service, a.outages, a.product_outages) == ("NE-A", 1000, 2, 1)
    assert (a.minutes, a.product_minutes, a.so, a.so_product) == (60.0, 30.0, 120.0, 72.0)  # 12×10 000/1 000
    # NE-B: 16 s of 500 units: 500 × 16/60 = 133.33 unit-minutes; SO = 12 × 133.33 / 500 = 3.2.
    assert (b.name, b.outages, b.product_outages, b.minutes, b.so, b.so_product) == (
        "NE-B",
        1,
        1,
        0.27,
        3.2,
        3.2,
    )
    (customer,) = report.outages_by_customer
    assert (customer.name, customer.units_in_service, customer.outages) == ("Nordnetz AG", 1500, 3)
    assert customer.so == pytest.approx(12 * (10000 + 500 * 16 / 60) / 1500, abs=1e-4)  # 81.0667
    assert customer.so_product == pytest.approx(12 * (6000 + 500 * 16 / 60) / 1500, abs=1e-4)  # 49.0667
    assert [(w.incident_key, w.work_ref, w.minutes) for w in report.our_work] == [
        ("INC-2026-0003", "UPG-2026-1104-BER", 20.0)
    ]
    assert [(p.id, p.days_overdue) for p in report.overdue_problems] == [(late, 11)]

    as_json = json.loads(render_report(report, ReportFormat.JSON))
    assert as_json["outages_by_customer"][0]["so"] == customer.so and "12 ×" in as_json["so_formula"]
    as_csv = render_report(report, ReportFormat.CSV)
    assert (
        "outages,element:NE-A,so,120.0" in as_csv
        and "breaches,INC-2026-0002,response over minutes,10.0" in as_csv
    )
    html = render_report(report, ReportFormat.HTML)
    assert html.count('src="data:image/png;base64,') == 3
    assert "http://" not in html and "https://" not in html  # loads nothing from other hosts
    assert report.so_formula in html and "INC-2026-0002" in html


def test_an_edited_inserted_or_deleted_field_event_fails_audit_verify(database_url: str) -> None:
    """The clocks and the month's SLA figures come from the stored events, so each event is also
    an ``incident.event`` chain record, written in its transaction: `siteflow audit verify KEY`
    names a stored event whose time was moved, one slipped in past the chain, one removed."""
    from siteflow.audit_report import verify

    key = "INC-2026-0001"
    with session_scope() as s:
        records.save_contract(s, contract=contract(elements=ELEMENTS))
        records.open_incident(s, incident=incident(received_at=T0, elements=["NE-A"]), now=T0)
        for event in (
            ContactedIn(at=T0 + timedelta(minutes=40), by="Max Bauer"),
            OnSiteNeededIn(at=T0 + timedelta(minutes=45), by="Max Bauer"),
            OnSiteIn(at=T0 + timedelta(minutes=90), by="Eva Klein", site_access=ACCESS),
        ):
            records.record_event(s, key=key, event=event, now=NOW, actor="max.bauer@contractor.example")
    assert verify(key) == []

    def rows() -> list[IncidentEventRow]:
        with session_scope() as s:
            found = list(s.scalars(select(IncidentEventRow).where(IncidentEventRow.incident_key == key)))
            s.expunge_all()
            return sorted(found, key=lambda r: r.seq)

    contacted = rows()[0]
    with session_scope() as s:  # a faster response, made up afterwards (a response target of 30 min)
        row = s.get(IncidentEventRow, contacted.id)
        assert row is not None
        row.data = {**row.data, "at": (T0 + timedelta(minutes=20)).isoformat()}
        row.at = T0 + timedelta(minutes=20)
    assert verify(key) == ["event #1 (contacted): differs from its audit record (altered)"]
    with session_scope() as s:
        row = s.get(IncidentEventRow, contacted.id)
        assert row is not None
        row.data, row.at = contacted.data, contacted.at  # put back as it was
        s.add(
            IncidentEventRow(
                incident_key=key,
                seq=4,
                kind="restored",
                at=T0 + timedelta(minutes=100),
                by="Eva Klein",
                data={"kind": "restored", "at": (T0 + timedelta(minutes=100)).isoformat(), "by": "Eva Klein"},
                recorded_at=NOW,
            )
        )
    assert verify(key) == ["event #4 (restored): not in the audit chain (inserted afterwards?)"]
    with session_scope() as s:
        s.execute(IncidentEventRow.__table__.delete().where(IncidentEventRow.seq >= 3))
    assert verify(key) == ["event #3 (on-site): in the audit chain but deleted"]
