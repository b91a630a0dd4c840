"""Booking an upgrade window refuses what cannot work and says what it resolved (UPG-8,
UPG-10): a passed deadline, a window too short for one element, a deadline before the start
without a stated next day; DST gaps and overlaps are booked late rather than early, with a
note. Booking runs on SQLite and PostgreSQL (`database_url`); pure model checks need no db."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from sqlalchemy import func, select

from models.upgrade_plan import (
    Ambiguity,
    DeadlineDay,
    DriverKind,
    UpgradePlanIn,
    WindowIn,
    describe_local_instant,
    legacy_deadline_day,
)
from tests.conftest import SQLITE_ONLY
from tests.test_upgrade_rules import booking_day, plan

ROOT = Path(__file__).resolve().parent.parent
NEW_YORK = "America/New_York"
GAP_NOTE = (
    "the deadline 02:30 on 2027-03-14 does not exist in America/New_York (clocks jump 02:00 → 03:00): "
    "it is 03:30 EDT = 07:30 UTC"
)
OVERLAP_NOTE = (
    "the deadline 01:30 on 2026-11-01 happens twice in America/New_York (clocks fall back 02:00 → 01:00): "
    "the later one, 01:30 EST = 06:30 UTC, is used"
)


def at(window: dict[str, Any]) -> Any:
    """A window change for `plan`: the example window with these fields replaced."""
    return lambda w: {**w, **window}


def nothing_booked(window_id: str) -> bool:
    """No window row, no invite, no mail and no audit event: a refusal leaves no trace."""
    from models.audit import AuditEvent
    from models.calendar_invite import CalendarInvite
    from models.outbox import OutboxMessage
    from models.upgrade import UpgradeWindow
    from siteflow.db import session_scope

    with session_scope() as session:
        counts = [
            session.scalar(
                select(func.count()).select_from(UpgradeWindow).where(UpgradeWindow.id == window_id)
            ),
            session.scalar(select(func.count()).where(CalendarInvite.subject == window_id)),
            session.scalar(select(func.count()).where(OutboxMessage.subject_ref == window_id)),
            session.scalar(select(func.count()).where(AuditEvent.stream == window_id)),
        ]
    return counts == [0, 0, 0, 0]


def audit_notes(window_id: str) -> list[str]:
    import json

    from models.audit import AuditEvent
    from siteflow.db import session_scope

    with session_scope() as session:
        booked = select(AuditEvent.payload).where(
            AuditEvent.stream == window_id, AuditEvent.kind == "window.planned"
        )
        payload = session.scalars(booked).one()
    notes: list[str] = json.loads(payload)["notes"]
    return notes


# --- UPG-8: a deadline that has passed, a window too short for one element ------------------


def test_a_window_whose_deadline_has_passed_is_refused_and_nothing_is_booked(database_url: str) -> None:
    from tasks.upgrade_records import PlanRefused, register_window

    p = plan("UPG-B-PAST")  # 2026-12-03 00:30 → 04:00 in Shanghai
    after = datetime(2026, 12, 2, 21, 0, tzinfo=UTC)  # 05:00 in Shanghai
    with pytest.raises(PlanRefused) as refused:
        register_window(p, clock=lambda: after)
    message = str(refused.value)
    assert (
        "the deadline 2026-12-03 04:00 CST (Asia/Shanghai) = 2026-12-02 20:00 UTC has already passed"
        in message
    )
    assert "now is 2026-12-03 05:00 CST (Asia/Shanghai) = 2026-12-02 21:00 UTC" in message
    assert "choose a later night" in message
    assert nothing_booked("UPG-B-PAST")


def test_booking_reads_the_real_clock(database_url: str) -> None:
    from tasks.upgrade_records import PlanRefused, register_window

    with pytest.raises(PlanRefused, match="has already passed"):
        register_window(plan("UPG-B-REAL", window=at({"date": "2026-11-02"})))  # before today, always
    assert nothing_booked("UPG-B-REAL")


def test_a_window_too_short_for_one_element_is_refused_naming_both_durations(database_url: str) -> None:
    from tasks.upgrade_records import PlanRefused, register_window

    p = plan("UPG-B-SHORT")
    need = p.runbook.upgrade_seconds() / 60
    five_to_four = datetime(2026, 12, 2, 19, 55, tzinfo=UTC)  # 03:55 in Shanghai: 5 min are left
    with pytest.raises(PlanRefused) as refused:
        register_window(p, clock=lambda: five_to_four)
    assert (
        f"only 5.0 min are left from now to the deadline 2026-12-03 04:00 CST (Asia/Shanghai) = "
        f"2026-12-02 20:00 UTC, but one element's upgrade, tests and rollback need {need:.1f} min"
    ) in str(refused.value)
    assert nothing_booked("UPG-B-SHORT")


def test_a_short_window_counts_from_its_start_and_scales_for_simulated_elements() -> None:
    from tasks.upgrade_records import PlanRefused, check_window_time

    p = plan("UPG-B-SIM", window=at({"start": "03:56"}))  # 4 min long, booked the day before
    with pytest.raises(PlanRefused, match=r"only 4\.0 min are left from the start to the deadline"):
        check_window_time(p, booking_day(), simulator_scale=1.0)
    check_window_time(p, booking_day(), simulator_scale=0.02)  # simulated: the estimates shrink too

    real = plan(
        "UPG-B-SSH", window=at({"start": "03:56"}), elements=lambda els: [{**els[0], "driver": "ssh"}]
    )
    assert real.elements[0].driver is DriverKind.SSH
    need = f"need {real.runbook.upgrade_seconds() / 60:.1f} min"
    with pytest.raises(PlanRefused, match=need):  # an SSH element takes the runbook's full time
        check_window_time(real, booking_day(), simulator_scale=0.02)
    mixed = plan(
        "UPG-B-MIX", window=at({"start": "03:56"}), elements=lambda els: [{**els[0], "driver": "ssh"}, els[1]]
    )
    check_window_time(mixed, booking_day(), simulator_scale=0.02)  # the smallest need over the elements


# --- the deadline's day is stated, never guessed ------------------------------------------------


def test_a_deadline_before_the_start_without_deadline_day_is_refused_in_plain_words() -> None:
    with pytest.raises(ValidationError) as refused:
        plan("UPG-B-LATE", window=at({"start": "23:00"}))
    (error,) = refused.value.errors()
    assert error["loc"] == ("window",)
    assert error["msg"] == (
        "the deadline 04:00 is not after the start 23:00 on 2026-12-03: set deadline_day: next for "
        "04:00 on 2026-12-04, or move the deadline"
    )
    with pytest.raises(ValidationError, match=r"\(deadline_day: same\): set deadline_day: next"):
        WindowIn(date=date(2026, 12, 3), start=time(23, 0), deadline_day=DeadlineDay.SAME)
    with pytest.raises(ValidationError, match="is not after the start 04:00"):
        WindowIn(date=date(2026, 12, 3), start=time(4, 0), deadline=time(4, 0))


def test_deadline_day_next_puts_the_deadline_on_the_next_local_day(database_url: str) -> None:
    from tasks.upgrade_records import register_window

    p = plan("UPG-B-NEXT", window=at({"start": "23:00", "deadline_day": "next"}))
    assert p.window.deadline_date == date(2026, 12, 4)
    booking = register_window(p, clock=booking_day)
    assert booking.deadline_at == datetime(2026, 12, 3, 20, 0, tzinfo=UTC)  # 04:00 on 12-04 in Shanghai
    assert booking.deadline_local == "2026-12-04 04:00 CST (Asia/Shanghai) = 2026-12-03 20:00 UTC"
    assert booking.notes == []


def test_the_example_plan_still_validates_on_one_day() -> None:
    raw = yaml.safe_load((ROOT / "examples" / "upgrade-plan.yaml").read_text(encoding="utf-8"))
    assert "deadline_day" not in raw["window"]
    w = plan("UPG-B-EXAMPLE").window
    assert (w.deadline_date, w.deadline_at - w.starts_at) == (
        date(2026, 12, 3),
        timedelta(hours=3, minutes=30),
    )


def test_a_plan_stored_before_deadline_day_still_loads_with_its_next_day() -> None:
    stored = plan("UPG-B-OLD", window=at({"start": "23:00", "deadline_day": "next"})).model_dump(mode="json")
    del stored["window"]["deadline_day"]
    with pytest.raises(ValidationError):
        UpgradePlanIn.model_validate(stored)
    assert UpgradePlanIn.model_validate(legacy_deadline_day(stored)).window.deadline_date == date(2026, 12, 4)
    same_day = plan("UPG-B-OLD2").model_dump(mode="json")
    del same_day["window"]["deadline_day"]
    assert UpgradePlanIn.model_validate(legacy_deadline_day(same_day)).window.deadline_date == date(
        2026, 12, 3
    )


# --- DST: late rather than early, and said -------------------------------------------------------


def test_local_instants_name_gaps_and_overlaps() -> None:
    gap = describe_local_instant(date(2027, 3, 14), time(2, 30), NEW_YORK, "the deadline")
    assert (gap.ambiguity, gap.utc, gap.note) == (
        Ambiguity.GAP,
        datetime(2027, 3, 14, 7, 30, tzinfo=UTC),
        GAP_NOTE,
    )
    overlap = describe_local_instant(date(2026, 11, 1), time(1, 30), NEW_YORK, "the deadline")
    assert (overlap.ambiguity, overlap.utc) == (Ambiguity.OVERLAP, datetime(2026, 11, 1, 6, 30, tzinfo=UTC))
    assert overlap.note == OVERLAP_NOTE
    plain = describe_local_instant(date(2026, 12, 3), time(4, 0), "Asia/Shanghai")
    assert (plain.ambiguity, plain.note) == (Ambiguity.NONE, "")
    assert plain.text == "2026-12-03 04:00 CST (Asia/Shanghai) = 2026-12-02 20:00 UTC"


def test_a_deadline_in_a_dst_gap_is_booked_an_hour_later_with_a_note(database_url: str) -> None:
    from tasks.upgrade_records import register_window

    p = plan(
        "UPG-B-GAP",
        window=at({"date": "2027-03-14", "start": "00:30", "deadline": "02:30", "timezone": NEW_YORK}),
    )
    booking = register_window(p, clock=booking_day)
    assert booking.deadline_at == datetime(2027, 3, 14, 7, 30, tzinfo=UTC)  # 03:30 EDT, not 01:30 EST
    assert booking.deadline_local == "2027-03-14 03:30 EDT (America/New_York) = 2027-03-14 07:30 UTC"
    assert booking.notes == [GAP_NOTE]
    assert GAP_NOTE in booking.summary() and booking.deadline_local in booking.summary()
    assert audit_notes("UPG-B-GAP") == [GAP_NOTE]


def test_a_deadline_in_a_dst_overlap_is_booked_at_the_later_one_with_a_note(database_url: str) -> None:
    from tasks.upgrade_records import register_window

    p = plan(
        "UPG-B-OVER",
        window=at({"date": "2026-11-01", "start": "00:00", "deadline": "01:30", "timezone": NEW_YORK}),
    )
    booking = register_window(p, clock=lambda: datetime(2026, 10, 20, tzinfo=UTC))
    assert booking.deadline_at == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # 01:30 EST, not 01:30 EDT
    assert booking.notes == [OVERLAP_NOTE]


def test_a_start_in_a_dst_gap_is_noted_and_a_deadline_it_passes_is_refused() -> None:
    w = WindowIn(date=date(2027, 3, 14), start=time(2, 15), deadline=time(5, 0), timezone=NEW_YORK)
    assert w.notes() == [
        "the start 02:15 on 2027-03-14 does not exist in America/New_York (clocks jump 02:00 → 03:00): "
        "it is 03:15 EDT = 07:15 UTC"
    ]
    with pytest.raises(
        ValidationError, match=r"is not after the start 2027-03-14 03:30 EDT .*move the deadline"
    ):
        WindowIn(date=date(2027, 3, 14), start=time(2, 30), deadline=time(3, 0), timezone=NEW_YORK)


def test_a_normal_shanghai_window_is_booked_without_notes(database_url: str) -> None:
    from tasks.upgrade_records import register_window

    booking = register_window(plan("UPG-B-SH"), clock=booking_day)
    assert (booking.window_id, booking.replanned, booking.notes) == ("UPG-B-SH", False, [])
    assert booking.start_local == "2026-12-03 00:30 CST (Asia/Shanghai) = 2026-12-02 16:30 UTC"
    assert "deadline 2026-12-03 04:00 CST (Asia/Shanghai) = 2026-12-02 20:00 UTC" in booking.summary()
    assert "note" not in booking.summary() and audit_notes("UPG-B-SH") == []


# --- what the PM reads: the CLI line and the flow's message --------------------------------------


def next_spring_forward() -> date:
    """New York's next spring-forward night (the second Sunday of March), so the flow test,
    which books by the real clock, never books a night that has passed."""
    year = date.today().year + 1
    return next(date(year, 3, d) for d in range(8, 15) if date(year, 3, d).weekday() == 6)


def test_the_flow_message_states_the_deadline_in_local_time_utc_and_its_dst_note(database_url: str) -> None:
    from flows.version_upgrade import plan_version_upgrade

    night = next_spring_forward()
    p = plan("UPG-B-FLOW", window=at({"date": night.isoformat(), "deadline": "02:30", "timezone": NEW_YORK}))
    message = plan_version_upgrade.fn(p)
    assert f"deadline {night} 03:30 EDT (America/New_York) = {night} 07:30 UTC" in message
    assert f"note: the deadline 02:30 on {night} does not exist in America/New_York" in message


@SQLITE_ONLY  # CLI subprocesses over the same code the database tests run on both backends
def test_the_cli_booking_line_states_the_deadline_in_local_time_and_utc(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The PM books with `siteflow upgrade plan`, logged in, through the web API (issue #9)."""
    from tests.cli_user import logged_in, run
    from tests.test_approval_links import serve_web

    night = date.today() + timedelta(days=40)
    raw = yaml.safe_load((ROOT / "examples" / "upgrade-plan.yaml").read_text(encoding="utf-8"))
    raw["id"], raw["window"]["date"] = "UPG-B-CLI", night.isoformat()
    raw["runbook"] = str(ROOT / "examples" / raw["runbook"])
    file = tmp_path / "plan.yaml"
    file.write_text(yaml.safe_dump(raw), encoding="utf-8")
    pm = next(c for c in raw["contacts"] if c["role"] == "pm")
    operator = next(c for c in raw["contacts"] if c["role"] != "pm")
    for _ in serve_web(monkeypatch):
        refused = run(
            logged_in(tmp_path / "other", operator["name"], operator["email"]), "upgrade", "plan", str(file)
        )
        assert (
            refused.returncode == 1
            and "is not listed as the PM of upgrade window UPG-B-CLI" in refused.stderr
        )
        result = run(logged_in(tmp_path / "pm", pm["name"], pm["email"]), "upgrade", "plan", str(file))
        assert result.returncode == 0, result.stderr
        line = " ".join(result.stdout.split())
        utc = datetime.combine(night, time(4, 0)) - timedelta(hours=8)
        assert f"window UPG-B-CLI booked: start {night} 00:30 CST" in line
        assert f"deadline {night} 04:00 CST (Asia/Shanghai) = {utc:%Y-%m-%d %H:%M} UTC; 2 element(s)" in line
        assert "/windows/UPG-B-CLI" in line


def test_night_of_reads_dates_and_days_on_the_site_clock() -> None:
    """`--date` names the window's local start date; 'tomorrow' is the site's, not the laptop's."""
    from models.upgrade_plan import booked_for, night_of

    late_utc = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)  # already 2026-12-02 01:00 in Shanghai
    assert night_of("tomorrow", "Asia/Shanghai", late_utc) == date(2026, 12, 3)
    assert night_of("today", "America/New_York", late_utc) == date(2026, 12, 1)
    assert night_of(" 2027-01-05 ", "Asia/Shanghai", late_utc) == date(2027, 1, 5)
    with pytest.raises(ValueError, match="give YYYY-MM-DD"):
        night_of("next friday", "Asia/Shanghai", late_utc)
    raw = {"window": {"date": "2026-12-03", "start": "00:30"}}
    assert booked_for(raw, "2027-01-05", late_utc)["window"] == {"date": "2027-01-05", "start": "00:30"}
    assert booked_for(raw, None, late_utc) is raw


@SQLITE_ONLY  # a CLI subprocess; booking itself runs on both backends above
def test_the_readme_books_the_example_plan_for_tomorrow(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's `siteflow upgrade plan examples/upgrade-plan.yaml --date tomorrow` works on any
    day, although the example file names one fixed night; a bad date is refused plainly."""
    from zoneinfo import ZoneInfo

    from tests.cli_user import logged_in, run
    from tests.test_approval_links import serve_web

    example = ROOT / "examples" / "upgrade-plan.yaml"
    raw = yaml.safe_load(example.read_text(encoding="utf-8"))
    pm = next(c for c in raw["contacts"] if c["role"] == "pm")
    for _ in serve_web(monkeypatch):
        home = logged_in(tmp_path / "pm", pm["name"], pm["email"])
        bad = run(home, "upgrade", "plan", str(example), "--date", "someday")
        assert bad.returncode == 1 and "--date 'someday' is not a date: give YYYY-MM-DD" in bad.stderr
        result = run(home, "upgrade", "plan", str(example), "--date", "tomorrow")
        assert result.returncode == 0, result.stderr
        night = datetime.now(ZoneInfo("Asia/Shanghai")).date() + timedelta(days=1)
        assert f"window {raw['id']} booked: start {night} 00:30 CST" in " ".join(result.stdout.split())
