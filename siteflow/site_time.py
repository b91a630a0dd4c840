"""Times as people at the site read them, with the UTC instant beside it (issue #9 item 8).

Field staff, customers and night-shift PMs read deadlines on the site's clock; the audit
trail and other systems speak UTC. Showing only one invites a wrong conversion at 04:00, so
every time a person reads — mails, web pages, documents, CLI tables — is written here, one
way: ``2026-12-03 04:00 CST (2026-12-02 20:00 UTC)``, the UTC date given only when it is not
the local one (``2026-12-03 10:00 CST (02:00 UTC)``). Never microseconds: nobody decides by
them, and they make a time look like a log line.

The zone is the subject's own: a project's ``ProjectIn.timezone``, an upgrade window's
``plan.window.timezone`` (read through :func:`models.roster.roster_of`). Where no zone is
known the time is shown in UTC alone, saying so. JSON views keep ISO 8601 with the offset:
they are for programs.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    from jinja2 import Environment
    from sqlalchemy.orm import Session

MINUTES = "%Y-%m-%d %H:%M"
SECONDS = "%Y-%m-%d %H:%M:%S"


def as_instant(value: datetime | str) -> datetime:
    """An aware UTC instant from a datetime or ISO text; a time that names no zone is UTC
    (siteflow stores UTC, and older views hand it over as text)."""
    if isinstance(value, str):
        text = value.strip()
        text = text[:-4].rstrip() if text.endswith(" UTC") else text
        value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def zone_label(local: datetime) -> str:
    """The zone's abbreviation (CST, EDT) when it has one, else its offset (UTC+04)."""
    name = local.tzname() or ""
    if name and name[0] not in "+-":
        return name
    offset = local.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}" + (f":{rest:02d}" if rest else "")


def utc_time(value: datetime | str, *, seconds: bool = False) -> str:
    """``2026-12-02 20:00 UTC``: for times that belong to no site."""
    return f"{as_instant(value).strftime(SECONDS if seconds else MINUTES)} UTC"


def site_time(value: datetime | str | None, zone: str | None, *, seconds: bool = False) -> str:
    """``2026-12-03 04:00 CST (2026-12-02 20:00 UTC)`` — the site's clock first, UTC beside it.

    An empty value is shown as an empty string (a gate without a deadline), an unknown or
    missing zone as UTC alone.
    """
    if value is None or value == "":
        return ""
    instant = as_instant(value)
    tz = _zone(zone)
    if tz is None:
        return utc_time(instant, seconds=seconds)
    local = instant.astimezone(tz)
    clock = "%H:%M:%S" if seconds else "%H:%M"
    utc_part = instant.strftime(clock if instant.date() == local.date() else f"%Y-%m-%d {clock}")
    return f"{local.strftime(SECONDS if seconds else MINUTES)} {zone_label(local)} ({utc_part} UTC)"


def site_span(start: datetime | str, end: datetime | str, zone: str | None) -> str:
    """``2026-12-03 00:30 – 04:00 CST (2026-12-02 16:30 – 20:00 UTC)`` for a span within one
    local day (an upgrade window, a visit); two full times otherwise."""
    begin, finish = as_instant(start), as_instant(end)
    tz = _zone(zone)
    local_begin = begin.astimezone(tz) if tz is not None else begin
    local_end = finish.astimezone(tz) if tz is not None else finish
    if local_begin.date() != local_end.date() or begin.date() != finish.date():
        return f"{site_time(begin, zone)} – {site_time(finish, zone)}"
    if tz is None:
        return f"{begin:%Y-%m-%d %H:%M} – {finish:%H:%M} UTC"
    utc_day = "" if begin.date() == local_begin.date() else f"{begin:%Y-%m-%d} "
    return (
        f"{local_begin:%Y-%m-%d %H:%M} – {local_end:%H:%M} {zone_label(local_end)} "
        f"({utc_day}{begin:%H:%M} – {finish:%H:%M} UTC)"
    )


def clock_time(value: datetime | str, zone: str | None) -> str:
    """``04:12:09 CST (20:12:09 UTC)`` — a time of day, for a table of one night's steps whose
    date is said once above it."""
    instant = as_instant(value)
    tz = _zone(zone)
    if tz is None:
        return f"{instant:%H:%M:%S} UTC"
    local = instant.astimezone(tz)
    return f"{local:%H:%M:%S} {zone_label(local)} ({instant:%H:%M:%S} UTC)"


def booked_time(instant: datetime, zone: str) -> str:
    """``2026-12-03 04:00 CST (Asia/Shanghai) = 2026-12-02 20:00 UTC``: a booking names the IANA
    zone too, since the PM typed it and CST alone is also a US zone (UPG-8 messages)."""
    local = instant.astimezone(ZoneInfo(zone))
    return f"{local:%Y-%m-%d %H:%M} {zone_label(local)} ({zone}) = {utc_time(instant)}"


def zone_of(session: Session, subject: str) -> str | None:
    """The IANA zone of a project or upgrade window, None for an unknown subject."""
    from models.roster import roster_of
    from models.upgrade_plan import UpgradePlanIn

    form = roster_of(session, subject)
    if form is None:
        return None
    return form.window.timezone if isinstance(form, UpgradePlanIn) else form.timezone


def subject_zone(subject: str) -> str | None:
    """:func:`zone_of` in a session of its own, for templates and CLI rows."""
    from siteflow.db import session_scope

    with session_scope() as session:
        return zone_of(session, subject)


def _zone(zone: str | None) -> ZoneInfo | None:
    if not zone:
        return None
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _jinja_site_time(value: datetime | date | str | None, zone: str | None = None) -> str:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()  # a calendar date is the site's already
    return site_time(value, zone)


def install(env: Environment) -> Environment:
    """Give a Jinja environment the ``site_time`` filter: ``{{ gate.deadline | site_time(zone) }}``."""
    env.filters["site_time"] = _jinja_site_time
    env.filters["utc_time"] = utc_time
    return env
