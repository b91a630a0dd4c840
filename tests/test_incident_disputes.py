"""INC-7 disputed attribution, INC-8 problem-report rights and overdue notices, and the keeper's
clocks refresh (issue #11): the pure rules, and the records on both backends."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from models.incident import Attribution, OutageCause
from models.incident_contract import Severity
from models.incident_input import (
    AttributionAnswer,
    Cause,
    CauseSegmentIn,
    ContactedIn,
    ProblemReportIn,
    RestoredIn,
)
from models.incident_run import IncidentNotice
from models.outbox import OutboxMessage
from siteflow.db import session_scope
from siteflow.identity.roles import StaffRole
from siteflow.incidents import intake, records, rights
from siteflow.incidents.attribution import check_dispute, final_segments, gate_key
from siteflow.incidents.clocks import compute_clocks
from siteflow.incidents.notices import problem_notices, send_due_notices
from siteflow.incidents.outages import parse_outage
from siteflow.incidents.refusals import IncidentRefused
from siteflow.incidents.report import monthly_report
from siteflow.incidents.run_view import ClocksRefresh
from tests.incident_samples import contract, incident
from tests.test_incident_notices import report
from tests.test_incident_records import ELEMENTS, NOW, T0, outage

KEY = "INC-2026-0001"


def test_inc7_the_customers_answer_is_final_and_a_second_dispute_is_refused() -> None:
    check_dispute(key=KEY, outage_id="o1", attribution=Attribution.RECORDED, incident_closed=False)
    with pytest.raises(IncidentRefused, match="^INC-7: .*already disputed and waits for the customer"):
        check_dispute(key=KEY, outage_id="o1", attribution=Attribution.DISPUTED, incident_closed=False)
    with pytest.raises(IncidentRefused, match="^INC-7: .*Jana Vogel.*final"):
        check_dispute(
            key=KEY,
            outage_id="o1",
            attribution=Attribution.DECIDED,
            incident_closed=False,
            decided_by="Jana Vogel <jana@x.example>",
        )
    with pytest.raises(IncidentRefused, match="^INC-7: .* is closed"):
        check_dispute(key=KEY, outage_id="o1", attribution=Attribution.RECORDED, incident_closed=True)


def test_inc7_final_segments_as_recorded_or_the_customers_one_cause() -> None:
    start, mid, end = T0, T0 + timedelta(minutes=40), T0 + timedelta(minutes=55)
    recorded = [
        CauseSegmentIn(cause=Cause.PRODUCT, start=start, end=mid),
        CauseSegmentIn(cause=Cause.EXTERNAL, start=mid, end=end),
    ]
    kept = final_segments(start, end, recorded, AttributionAnswer.RECORDED)
    assert [(s.cause, s.duration, s.agreed_by_customer) for s in kept] == [
        (Cause.PRODUCT, timedelta(minutes=40), True),
        (Cause.EXTERNAL, timedelta(minutes=15), True),
    ]
    theirs = final_segments(start, end, recorded, AttributionAnswer.EXTERNAL)
    assert [(s.cause, s.start, s.end, s.agreed_by_customer) for s in theirs] == [
        (Cause.EXTERNAL, start, end, True)
    ]
    assert gate_key("1F0C9A2B-aaaa") == "outage-attribution-1f0c9a2b"


def test_inc7_a_disputed_outage_needs_its_reason() -> None:
    with pytest.raises(IncidentRefused, match="INC-7: a disputed attribution needs its reason"):
        parse_outage(outage(T0, 60, [("product", 60)]) | {"disputed": True})


def test_who_may_dispute_raise_and_close() -> None:
    """INC-7 / INC-8: the owner or the office; a problem report closes by the office or its raiser."""
    owner = "max.bauer@contractor.example"
    rights.check_may_dispute(key=KEY, email=owner.upper(), roles=[StaffRole.ENGINEER], owner_email=owner)
    rights.check_may_dispute(key=KEY, email="o@x.example", roles=[StaffRole.OFFICE], owner_email=owner)
    with pytest.raises(IncidentRefused, match=f"^INC-7: only {KEY}'s owner"):
        rights.check_may_dispute(key=KEY, email="e@x.example", roles=[StaffRole.ENGINEER], owner_email=owner)
    rights.check_may_raise_problem(key=KEY, email="a@x.example", roles=[StaffRole.ADMIN], owner_email=owner)
    with pytest.raises(IncidentRefused, match="^INC-8: only"):
        rights.check_may_raise_problem(key=KEY, email="p@x.example", roles=[StaffRole.PM], owner_email=owner)
    rights.check_may_close_problem(report_id="r", email=owner, roles=[], raiser_email=owner)
    rights.check_may_close_problem(
        report_id="r", email="o@x.example", roles=[StaffRole.OFFICE], raiser_email=None
    )
    with pytest.raises(IncidentRefused, match="^INC-8: only the office .* or whoever raised"):
        rights.check_may_close_problem(
            report_id="r", email="e@x.example", roles=[StaffRole.ENGINEER], raiser_email=owner
        )


def _month(s: Any) -> Any:
    return monthly_report(
        month="2026-11",
        incidents=records.incidents_received(s, start=T0 - timedelta(days=2), end=NOW),
        outages=records.outages_started(s, start=T0 - timedelta(days=2), end=NOW),
        problems=[],
        contracts=records.contracts(s),
        as_of=NOW,
    )


def test_inc7_dispute_then_the_customers_answer_in_the_records_and_the_report(database_url: str) -> None:
    """While disputed the report counts the recorded segments and marks the outage; once the
    customer attributes it all to external, product minutes are gone, the recorded segments
    are kept (superseded) and a second dispute is refused naming INC-7."""
    with session_scope() as s:
        records.save_contract(s, contract=contract(elements=ELEMENTS))
        records.open_incident(s, incident=incident(received_at=T0, elements=["NE-A"]), now=T0)
        raw = outage(T0, 3300, [("product", 2400), ("external", 900)])
        outage_id = records.record_outage(
            s,
            key=KEY,
            now=NOW,
            outage=parse_outage(raw | {"disputed": True, "dispute_reason": "customer says it was power"}),
            actor="max.bauer@contractor.example",
        )
    with session_scope() as s:
        (dispute,) = records.disputes_of(s, key=KEY)
        assert dispute.pending and dispute.disputed_by == "max.bauer@contractor.example"
        report = _month(s)
        (element,) = report.outages_by_element
        assert (element.disputed, element.product_minutes) == (1, 40.0)
        assert [(d.outage_id, d.product_minutes) for d in report.disputed_outages] == [(outage_id, 40.0)]
        with pytest.raises(IncidentRefused, match="^INC-7: .*already disputed"):
            records.dispute_outage(s, key=KEY, outage_id=outage_id, reason="again", by="x", now=NOW)
    with session_scope() as s:
        decided = records.decide_attribution(
            s,
            key=KEY,
            outage_id=outage_id,
            answer=AttributionAnswer.EXTERNAL,
            by="Jana Vogel <j@n.example>",
            now=NOW,
        )
        assert decided.attribution is Attribution.DECIDED
        again = records.decide_attribution(  # a re-run of the flow: nothing changes
            s, key=KEY, outage_id=outage_id, answer=AttributionAnswer.PRODUCT, by="x", now=NOW
        )
        assert [seg.cause for seg in again.segments] == [Cause.EXTERNAL]
    with session_scope() as s:
        report = _month(s)
        (element,) = report.outages_by_element
        assert (element.disputed, element.product_minutes, element.minutes) == (0, 0.0, 55.0)
        assert report.disputed_outages == []
        kept = s.scalars(select(OutageCause).where(OutageCause.outage_id == outage_id)).all()
        assert sorted((c.cause, c.superseded) for c in kept) == [
            ("external", False),
            ("external", True),
            ("product", True),
        ]
        with pytest.raises(IncidentRefused, match="^INC-7: the customer .*Jana Vogel.* final"):
            records.dispute_outage(s, key=KEY, outage_id=outage_id, reason="again", by="x", now=NOW)


def test_inc8_an_overdue_problem_report_is_mailed_to_its_raiser_once(database_url: str) -> None:
    with session_scope() as s:
        records.save_contract(s, contract=contract(elements=ELEMENTS))
        records.open_incident(s, incident=incident(received_at=T0, elements=["NE-A"]), now=T0)
        due = records.raise_problem_report(
            s,
            key=KEY,
            report=ProblemReportIn(
                title="Line card firmware", office="Quality office", due=date(2026, 11, 10), by="Max Bauer"
            ),
            now=T0,
            actor="max.bauer@contractor.example",
        )
        records.raise_problem_report(  # not yet due
            s,
            key=KEY,
            report=ProblemReportIn(
                title="Later", office="Quality office", due=date(2026, 12, 31), by="Max Bauer"
            ),
            now=T0,
            actor="max.bauer@contractor.example",
        )
        overdue = records.list_problem_reports(s, on=NOW.date(), overdue_only=True)
        assert [p.id for p in overdue] == [due] and overdue[0].overdue(NOW.date())
        assert [k for k, _ in problem_notices(s, NOW.date(), NOW)] == [KEY]
    send_due_notices(clock=lambda: NOW)
    send_due_notices(clock=lambda: NOW + timedelta(hours=1))  # once
    with session_scope() as s:
        notices = s.scalars(
            select(IncidentNotice.notice_key).where(IncidentNotice.kind == "problem-overdue")
        ).all()
        mails = s.scalars(
            select(OutboxMessage).where(OutboxMessage.title.contains("Problem report overdue"))
        ).all()
    assert notices == [f"problem-overdue:{due}"]
    assert [m.recipient for m in mails] == ["Max Bauer <max.bauer@contractor.example>"]


def test_inc4_clocks_refresh_at_a_mark_or_after_the_interval_and_not_when_nothing_runs() -> None:
    """The keeper republishes a running incident's clocks every N minutes (the first time at a
    point of the interval fixed by its key, so a restart spreads them) and at once when a clock
    crosses 50 % / 75 % / breach; a table where nothing runs is left alone."""
    terms = contract()
    every = timedelta(minutes=5)

    def at(now: datetime, events: list[Any] | None = None) -> Any:
        return compute_clocks(
            received_at=T0, reported_severity=Severity.CRITICAL, events=events or [], contract=terms, now=now
        )

    refresh = ClocksRefresh(every)
    start = T0 + timedelta(minutes=1)
    assert not refresh.due(KEY, at(start), start)  # first sight: placed within the interval
    later = start + every
    assert refresh.due(KEY, at(later), later)  # at the latest one interval after first sight
    refresh.published(KEY, at(later), later)
    soon = later + timedelta(minutes=1)
    assert not refresh.due(KEY, at(soon), soon)
    twelve = T0 + timedelta(minutes=12)
    refresh.published(KEY, at(twelve), twelve)
    half = T0 + timedelta(minutes=15)  # critical response target 30 min: the 50 % mark, 3 min later
    assert refresh.due(KEY, at(half), half)
    refresh.published(KEY, at(half), half)
    assert not refresh.due(KEY, at(half + timedelta(minutes=1)), half + timedelta(minutes=1))
    assert refresh.due(KEY, at(half + every), half + every)

    # a keeper's restart: many incidents first seen together come due spread over one interval
    keys = [f"INC-2026-{n:04d}" for n in range(50)]
    spread = ClocksRefresh(every)
    assert not any(spread.due(k, at(start), start) for k in keys)
    midway = start + every / 2
    assert 0 < sum(spread.due(k, at(midway), midway) for k in keys) < len(keys)
    assert all(spread.due(k, at(start + every), start + every) for k in keys)

    # nothing runs (response stopped by the call-back, restoration by restored, no travel)
    done = [
        ContactedIn(at=T0 + timedelta(minutes=2), by="Max Bauer"),
        RestoredIn(at=T0 + timedelta(minutes=3), by="Max Bauer"),
    ]
    quiet = ClocksRefresh(every)
    assert not quiet.due(KEY, at(T0 + timedelta(minutes=4), done), T0 + timedelta(minutes=4))
    assert not quiet.due(KEY, at(T0 + timedelta(hours=3), done), T0 + timedelta(hours=3))
    quiet.forget_unseen(T0 + timedelta(hours=3, minutes=1), after=timedelta(minutes=5))
    assert quiet._last  # looked at a minute ago: kept
    quiet.forget_unseen(T0 + timedelta(hours=16), after=timedelta(hours=12))  # unseen since: closed
    assert not quiet._last


def test_inc8_a_problem_report_falls_due_on_its_contracts_clock_not_utcs(database_url: str) -> None:
    """At 02:00 on 2 December in Shanghai it is still 1 December in UTC: a report due on
    1 December is past due there — refused when raised so, and overdue (mailed) at once."""
    shanghai_night = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)  # 2026-12-02 02:00 CST
    with session_scope() as s:
        records.save_contract(s, contract=contract(zone="Asia/Shanghai", elements=ELEMENTS))
        intake.take_intake(s, report=report(KEY), now=report(KEY).received_at + timedelta(minutes=1))
        assert records.local_day(s, key=KEY, now=shanghai_night) == date(2026, 12, 2)
        late = records.raise_problem_report(
            s,
            key=KEY,
            report=ProblemReportIn(
                title="Firmware", office="Quality office", due=date(2026, 12, 1), by="Max"
            ),
            now=report(KEY).received_at,
            actor="max.bauer@contractor.example",
        )
        found = problem_notices(s, shanghai_night.date() + timedelta(days=1), shanghai_night)
        assert [n.key for _, n in found] == [f"problem-overdue:{late}"]
        assert (
            problem_notices(s, date(2026, 12, 1), datetime(2026, 12, 1, 15, 0, tzinfo=UTC)) == []
        )  # 23:00 CST

    from siteflow.identity.sessions import SignedIn
    from siteflow.incidents import staff_acts

    owner = SignedIn(
        user_id="u1",
        name="Max Bauer",
        email="max.bauer@contractor.example",
        roles=[StaffRole.ENGINEER],
        session_expires_at=shanghai_night + timedelta(hours=1),
    )
    with pytest.raises(IncidentRefused, match="has passed"), session_scope() as s:
        staff_acts.raise_problem(
            s,
            key=KEY,
            title="x",
            office="y",
            due=date(2026, 12, 1),
            detail="",
            user=owner,
            now=shanghai_night,
        )
