"""SLA clocks (INC-4): calendars, pauses, reclassification, marks; the timeline's refusals; COM-8."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.incident_contract import ContractIn, Severity
from models.incident_input import (
    ContactedIn,
    DepartureIn,
    IncidentEvent,
    OnSiteIn,
    OnSiteNeededIn,
    PauseIn,
    ReclassifiedIn,
    RemoteSessionIn,
    RestoredIn,
    ResumeIn,
    VisitIn,
)
from models.site_access import SiteAccessIn
from siteflow.incidents.business_hours import CalendarKind, business_hours
from siteflow.incidents.clocks import ClockKind, ClockState, MarkKind, compute_clocks, due_notices
from siteflow.incidents.presence import on_site
from siteflow.incidents.refusals import IncidentRefused
from siteflow.incidents.timeline import IncidentFacts, check_event
from tests.incident_samples import ACCESS, contract

BERLIN = ZoneInfo("Europe/Berlin")
VIENNA = ZoneInfo("Europe/Vienna")
T0 = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)  # a Tuesday, 10:00 in Berlin


def clocks(
    events: list[IncidentEvent],
    *,
    severity: Severity,
    received: datetime,
    now: datetime,
    terms: ContractIn | None = None,
):  # noqa: ANN201
    return compute_clocks(
        received_at=received, reported_severity=severity, events=events, contract=terms or contract(), now=now
    )


def test_major_on_friday_evening_before_whit_monday_is_due_tuesday_at_noon() -> None:
    """Berlin, Mon–Fri 08:00–18:00, Whit Monday 2026-05-25 a holiday; response target 240 min."""
    terms = contract(holidays=[{"start": "2026-05-25", "name": "Pfingstmontag"}])
    received = datetime(2026, 5, 22, 19, 30, tzinfo=BERLIN)  # Friday evening
    result = clocks([], severity=Severity.MAJOR, received=received, now=received, terms=terms)
    response = result.response
    assert response.calendar is CalendarKind.BUSINESS_HOURS
    assert response.due_at == datetime(2026, 5, 26, 12, 0, tzinfo=BERLIN)  # Tuesday 12:00 CEST
    assert response.mark(MarkKind.WARNING_50).at == datetime(2026, 5, 26, 10, 0, tzinfo=BERLIN)
    assert response.mark(MarkKind.WARNING_75).at == datetime(2026, 5, 26, 11, 0, tzinfo=BERLIN)
    assert response.mark(MarkKind.BREACH).at == response.due_at
    # Reported at 17:00 instead: one working hour on Friday, three on Tuesday.
    earlier = datetime(2026, 5, 22, 17, 0, tzinfo=BERLIN)
    due = clocks([], severity=Severity.MAJOR, received=earlier, now=earlier, terms=terms).response.due_at
    assert due == datetime(2026, 5, 26, 11, 0, tzinfo=BERLIN)


def test_business_hours_across_the_autumn_dst_change_and_a_holiday() -> None:
    """Vienna: reported Friday 2026-10-23 18:30 CEST; clocks go back on Sunday the 25th; Monday
    26th is the national holiday. Due Tuesday 12:00 CET = 11:00 UTC (10:00 UTC if the summer
    offset were kept)."""
    terms = contract(zone="Europe/Vienna", holidays=[{"start": "2026-10-26", "name": "Nationalfeiertag"}])
    received = datetime(2026, 10, 23, 18, 30, tzinfo=VIENNA)
    response = clocks([], severity=Severity.MAJOR, received=received, now=received, terms=terms).response
    assert response.due_at == datetime(2026, 10, 27, 11, 0, tzinfo=UTC)
    assert response.due_at.astimezone(VIENNA).hour == 12
    # And elapsed read on Tuesday 09:00 CET: one working hour.
    later = clocks(
        [],
        severity=Severity.MAJOR,
        received=received,
        now=datetime(2026, 10, 27, 8, 0, tzinfo=UTC),
        terms=terms,
    ).response
    assert later.elapsed == timedelta(hours=1) and later.percent == 25.0
    assert later.remaining == timedelta(hours=3) and later.state is ClockState.RUNNING


def test_spring_forward_day_is_still_a_full_business_day_in_new_york() -> None:
    terms = contract(zone="America/New_York")
    cal = business_hours(terms)
    ny = ZoneInfo("America/New_York")
    # Friday 2026-03-06 17:00 EST, 8 working hours → Monday 2026-03-09 15:00 EDT (after the change).
    start = datetime(2026, 3, 6, 17, 0, tzinfo=ny)
    assert cal.add(start, timedelta(hours=8)) == datetime(2026, 3, 9, 15, 0, tzinfo=ny)


def test_critical_runs_around_the_clock() -> None:
    received = datetime(2026, 11, 7, 2, 0, tzinfo=UTC)  # Saturday night
    result = clocks([], severity=Severity.CRITICAL, received=received, now=received + timedelta(minutes=20))
    assert result.response.calendar is CalendarKind.AROUND_THE_CLOCK
    assert result.response.due_at == received + timedelta(minutes=30)
    assert result.response.percent == pytest.approx(66.67)
    assert (
        result.response.mark(MarkKind.WARNING_50).reached
        and not result.response.mark(MarkKind.WARNING_75).reached
    )
    assert result.travel.state is ClockState.NOT_STARTED


def test_pauses_stop_travel_and_restoration_never_response() -> None:
    events: list[IncidentEvent] = [
        PauseIn(at=T0 + timedelta(minutes=10), by="Max Bauer", reason="customer-room-closed"),
        ResumeIn(at=T0 + timedelta(minutes=40), by="Max Bauer"),
        ContactedIn(at=T0 + timedelta(minutes=45), by="Max Bauer"),
        OnSiteNeededIn(at=T0 + timedelta(minutes=50), by="Max Bauer"),
        PauseIn(at=T0 + timedelta(minutes=60), by="Max Bauer", reason="waiting-for-customer"),
        ResumeIn(at=T0 + timedelta(minutes=80), by="Max Bauer"),
        OnSiteIn(at=T0 + timedelta(minutes=150), by="Eva Klein"),
        RestoredIn(at=T0 + timedelta(minutes=200), by="Eva Klein"),
    ]
    result = clocks(events, severity=Severity.CRITICAL, received=T0, now=T0 + timedelta(hours=5))
    assert result.response.elapsed == timedelta(minutes=45)  # the first pause does not count
    assert result.response.breached and result.response.met is False  # 30 min target
    assert result.travel.elapsed == timedelta(minutes=100 - 20) and result.travel.wall == timedelta(
        minutes=100
    )
    assert result.travel.met is True
    assert result.restoration.elapsed == timedelta(minutes=200 - 30 - 20)
    assert result.restoration.paused == timedelta(minutes=50)
    assert result.restoration.met is True
    # The breach instant moved by the pauses before it: 240 min of running time.
    assert result.restoration.due_at == T0 + timedelta(minutes=240 + 50)


def test_a_paused_clock_has_no_due_time_until_it_resumes() -> None:
    events: list[IncidentEvent] = [
        PauseIn(at=T0 + timedelta(minutes=10), by="Max Bauer", reason="waiting-for-customer")
    ]
    result = clocks(events, severity=Severity.CRITICAL, received=T0, now=T0 + timedelta(minutes=70))
    assert result.restoration.state is ClockState.PAUSED and result.restoration.due_at is None
    assert result.restoration.elapsed == timedelta(minutes=10)
    assert result.response.state is ClockState.RUNNING and result.response.elapsed == timedelta(minutes=70)


def test_reclassification_recomputes_from_the_report_keeps_pauses_and_sends_no_second_breach() -> None:
    pause = [
        PauseIn(at=T0 + timedelta(minutes=30), by="Max Bauer", reason="waiting-for-customer"),
        ResumeIn(at=T0 + timedelta(minutes=60), by="Max Bauer"),
    ]
    now = T0 + timedelta(hours=5)  # 15:00 in Berlin, nobody has called back
    before = clocks(pause, severity=Severity.MAJOR, received=T0, now=now)
    assert before.response.breached and before.response.due_at == T0 + timedelta(minutes=240)
    sent = {n.key for n in due_notices(before, set())}
    # Restoration under major: 270 of 480 business minutes (the 30-min pause excluded): 50 % only.
    assert sent == {"response:warning-50", "response:warning-75", "response:breach", "restoration:warning-50"}

    events = [
        *pause,
        ReclassifiedIn(
            at=now,
            by="Max Bauer",
            severity=Severity.CRITICAL,
            emergency=True,
            why="Emergency calls affected after all",
        ),
    ]
    after = clocks(events, severity=Severity.MAJOR, received=T0, now=now)
    assert after.severity is Severity.CRITICAL
    assert after.response.due_at == T0 + timedelta(minutes=30)  # from the report time
    assert after.restoration.due_at == T0 + timedelta(minutes=240 + 30)  # the pause kept
    again = due_notices(after, sent)
    assert [n.key for n in again] == ["restoration:warning-75", "restoration:breach"]
    assert not [n for n in again if n.clock is ClockKind.RESPONSE]  # no second response breach notice


def test_without_an_sla_the_times_are_still_computed() -> None:
    events: list[IncidentEvent] = [
        ContactedIn(at=T0 + timedelta(minutes=12), by="Max Bauer"),
        RestoredIn(at=T0 + timedelta(minutes=90), by="Max Bauer"),
    ]
    result = clocks(
        events,
        severity=Severity.CRITICAL,
        received=T0,
        now=T0 + timedelta(hours=2),
        terms=contract(sla=False),
    )
    assert result.sla_version is None
    assert result.response.elapsed == timedelta(minutes=12) and result.response.target is None
    assert result.response.due_at is None and result.response.percent is None and result.response.marks == []
    assert result.restoration.wall == timedelta(minutes=90) and result.restoration.met is None


@settings(max_examples=40, deadline=None)
@given(
    start=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
    minutes=st.integers(min_value=1, max_value=60 * 60),
)
def test_adding_working_time_and_measuring_it_agree(start: datetime, minutes: int) -> None:
    """Over DST changes and holidays, in a DST zone: add(start, d) is the first instant at which
    d of working time has passed, and it falls inside business hours."""
    terms = contract(
        holidays=[
            {"start": "2026-12-24", "end": "2026-12-26", "name": "Weihnachten"},
            {"start": "2027-03-29", "name": "Ostermontag"},
        ]
    )
    cal = business_hours(terms)
    amount = timedelta(minutes=minutes)
    due = cal.add(start, amount)
    assert cal.working_time(start, due) == amount
    local = due.astimezone(BERLIN)
    assert local.weekday() < 5 and 8 <= local.hour + local.minute / 60 <= 18


# --- the timeline's refusals ----------------------------------------------------------------

FACTS = IncidentFacts(
    key="INC-2026-0001",
    received_at=T0,
    reported_severity=Severity.MAJOR,
    emergency=False,
    affects_operation=True,
)


def test_an_event_in_the_future_or_before_the_report_is_refused() -> None:
    now = T0 + timedelta(hours=1)
    with pytest.raises(IncidentRefused, match="INC-4: the contacted time .* is in the future"):
        check_event(FACTS, [], ContactedIn(at=now + timedelta(minutes=1), by="Max Bauer"), contract(), now)
    with pytest.raises(
        IncidentRefused, match="INC-4: the contacted time .* is before INC-2026-0001 was reported"
    ):
        check_event(FACTS, [], ContactedIn(at=T0 - timedelta(seconds=1), by="Max Bauer"), contract(), now)
    with pytest.raises(IncidentRefused, match="before INC-2026-0001 was reported"):
        check_event(
            FACTS,
            [],
            VisitIn(
                at=now,
                by="Eva Klein",
                engineer="Eva Klein",
                start=T0 - timedelta(minutes=5),
                end=now,
                what="Swapped the board",
            ),
            contract(),
            now,
        )
    check_event(FACTS, [], ContactedIn(at=now, by="Max Bauer"), contract(), now)  # now itself is fine


def test_events_out_of_order_and_pauses_the_contract_does_not_allow_are_refused() -> None:
    now = T0 + timedelta(hours=2)
    history: list[IncidentEvent] = [ContactedIn(at=T0 + timedelta(minutes=30), by="Max Bauer")]
    with pytest.raises(IncidentRefused, match="INC-4: events are recorded in order"):
        check_event(
            FACTS, history, OnSiteNeededIn(at=T0 + timedelta(minutes=20), by="Max Bauer"), contract(), now
        )
    with pytest.raises(IncidentRefused, match="does not allow pausing for 'lunch-break'"):
        check_event(FACTS, history, PauseIn(at=now, by="Max Bauer", reason="lunch-break"), contract(), now)
    with pytest.raises(IncidentRefused, match="not paused: nothing to resume"):
        check_event(FACTS, history, ResumeIn(at=now, by="Max Bauer"), contract(), now)
    with pytest.raises(IncidentRefused, match="decision that on-site support is needed"):
        check_event(FACTS, history, OnSiteIn(at=now, by="Eva Klein", site_access=ACCESS), contract(), now)


def test_com7_on_site_needs_the_site_access_checklist() -> None:
    """COM-7: an incident's on-site work starts only with the duty staff's consent and a badge
    recorded; removable media needs the room supervisor's consent too."""
    now = T0 + timedelta(hours=2)
    history: list[IncidentEvent] = [OnSiteNeededIn(at=T0 + timedelta(minutes=10), by="Max Bauer")]
    with pytest.raises(IncidentRefused, match="COM-7: work on site starts only after the site-access"):
        check_event(FACTS, history, OnSiteIn(at=now, by="Eva Klein"), contract(), now)
    check_event(FACTS, history, OnSiteIn(at=now, by="Eva Klein", site_access=ACCESS), contract(), now)
    for incomplete, says in (
        ({"duty_staff_consent": False, "duty_staff_name": "", "badge": True}, "duty staff's consent"),
        ({"duty_staff_consent": True, "duty_staff_name": "Jonas Weber", "badge": False}, "badge"),
        (ACCESS.model_dump() | {"removable_media": True}, "room supervisor's consent"),
    ):
        with pytest.raises(ValueError, match=f"COM-7: .*{says}"):
            SiteAccessIn.model_validate(incomplete)
    with_media = ACCESS.model_dump() | {
        "removable_media": True,
        "room_supervisor_consent": True,
        "room_supervisor_name": "Petra Lang",
    }
    assert SiteAccessIn.model_validate(with_media).removable_media


def test_com8_departure_before_restoration_is_refused() -> None:
    now = T0 + timedelta(hours=3)
    history: list[IncidentEvent] = [
        OnSiteNeededIn(at=T0 + timedelta(minutes=10), by="Max Bauer"),
        OnSiteIn(at=T0 + timedelta(minutes=70), by="Eva Klein"),
    ]
    leave = DepartureIn(at=now, by="Eva Klein")
    with pytest.raises(
        IncidentRefused, match="COM-8: INC-2026-0001 affects normal operation and is not restored"
    ):
        check_event(FACTS, history, leave, contract(), now)
    # A colleague on site takes over: the first may leave; and after restoration anyone may.
    relieved = [*history, OnSiteIn(at=T0 + timedelta(minutes=100), by="Jonas Hahn")]
    check_event(FACTS, relieved, leave, contract(), now)
    check_event(
        FACTS, [*history, RestoredIn(at=T0 + timedelta(minutes=120), by="Eva Klein")], leave, contract(), now
    )
    # An incident that does not affect normal operation lets the engineer go.
    check_event(FACTS.model_copy(update={"affects_operation": False}), history, leave, contract(), now)


def test_inc10_remote_diagnosis_and_on_site_support_are_both_tracked() -> None:
    """INC-10: remote sessions and visits are recorded as work spans (who, from, to, what), and who
    is on site follows the on-site and departure events; a departure of someone not on site is refused."""
    now = T0 + timedelta(hours=3)
    span = {"at": now, "by": "Max Bauer", "engineer": "Max Bauer", "what": "checked the alarms"}
    remote = RemoteSessionIn(**span, start=T0 + timedelta(minutes=5), end=T0 + timedelta(minutes=40))
    visit = VisitIn(**span, start=T0 + timedelta(minutes=60), end=T0 + timedelta(minutes=150))
    for work in (remote, visit):
        check_event(FACTS, [], work, contract(), now)
    with pytest.raises(ValueError, match="a remote session ends after it starts"):
        RemoteSessionIn(**span, start=T0 + timedelta(minutes=40), end=T0 + timedelta(minutes=5))
    history: list[IncidentEvent] = [
        OnSiteNeededIn(at=T0 + timedelta(minutes=10), by="Max Bauer"),
        OnSiteIn(at=T0 + timedelta(minutes=70), by="Eva Klein", site_access=ACCESS),
        OnSiteIn(at=T0 + timedelta(minutes=80), by="Jonas Hahn", site_access=ACCESS),
        DepartureIn(at=T0 + timedelta(minutes=90), by="Eva Klein"),
    ]
    assert on_site(history) == ["Jonas Hahn"]
    with pytest.raises(IncidentRefused, match="INC-10: Eva Klein is not recorded on site"):
        check_event(FACTS, history, DepartureIn(at=now, by="Eva Klein"), contract(), now)
