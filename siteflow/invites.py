"""Calendar invites by mail (iCalendar, RFC 5545), for dates people must keep (COM-3).

Survey visits, installation periods and upgrade windows go out as invites in the same
transaction as the record that fixes their date. A changed date is an update of the same
event (same UID, higher SEQUENCE) announced as a change; a cancelled one goes out with
METHOD:CANCEL — so the customer's calendar moves the entry instead of keeping a stale one.
Asking again for the same date sends nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from icalendar import Calendar, Event, vCalAddress, vText
from sqlalchemy.orm import Session

from models.calendar_invite import CalendarInvite
from models.outbox import OutboxMessage
from siteflow import audit_chain
from siteflow.settings import get_settings
from siteflow.site_time import site_span, zone_of


@dataclass(frozen=True)
class Attendee:
    name: str
    email: str

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


def _uid(subject: str, key: str) -> str:
    return f"{subject}-{key}@siteflow".lower()


def ics(invite: CalendarInvite, method: str) -> str:
    """The invite as an iCalendar object; METHOD REQUEST (new or changed) or CANCEL."""
    cal = Calendar()
    cal.add("prodid", "-//siteflow//field service//ZH-EN")
    cal.add("version", "2.0")
    cal.add("method", method)
    event = Event()
    event.add("uid", invite.uid)
    event.add("sequence", invite.sequence)
    event.add("dtstamp", datetime.now(UTC))
    if invite.all_day:
        event.add("dtstart", invite.starts_at.date())
        event.add("dtend", invite.ends_at.date())
    else:
        event.add("dtstart", invite.starts_at)
        event.add("dtend", invite.ends_at)
    event.add("summary", invite.summary)
    event.add("description", invite.description)
    if invite.location:
        event.add("location", invite.location)
    event.add("status", "CANCELLED" if method == "CANCEL" else "CONFIRMED")
    sender = get_settings().mail_sender
    organizer = vCalAddress("mailto:" + sender.rsplit("<", 1)[-1].rstrip(">").strip())
    organizer.params["cn"] = vText("siteflow")
    event.add("organizer", organizer)
    for person in invite.attendees:
        address = vCalAddress(f"mailto:{person['email']}")
        address.params["cn"] = vText(person["name"])
        address.params["role"] = vText("REQ-PARTICIPANT")
        event.add("attendee", address, encode=False)
    cal.add_component(event)
    text: str = cal.to_ical().decode()
    return text


def _when(session: Session, invite: CalendarInvite) -> str:
    """The invite's time on the site's clock with UTC beside it (all-day dates are local)."""
    if invite.all_day:
        last = (invite.ends_at - timedelta(days=1)).date()
        day = invite.starts_at.date()
        return f"{day}" if last == day else f"{day} – {last}"
    return site_span(invite.starts_at, invite.ends_at, zone_of(session, invite.subject))


def _queue(session: Session, invite: CalendarInvite, method: str, headline: str, note: str) -> None:
    calendar = ics(invite, method)
    for person in invite.attendees:
        session.add(
            OutboxMessage(
                dedup_key=f"invite:{invite.uid}:{invite.sequence}:{person['email']}"[:200],
                subject_ref=invite.subject,
                recipient=f"{person['name']} <{person['email']}>",
                title=f"[{invite.subject}] {headline}: {invite.summary}",
                body_text=(
                    f"{person['name']}，您好 / Dear {person['name']},\n\n{note}\n\n"
                    f"  {invite.summary}\n  时间 / When: {_when(session, invite)}\n"
                    + (f"  地点 / Where: {invite.location}\n" if invite.location else "")
                    + f"\n{invite.description}\n\n感谢您的支持！/ Thank you for your support."
                ),
                calendar_ics=calendar,
            )
        )


def schedule(
    session: Session,
    subject: str,
    key: str,
    summary: str,
    start: datetime,
    end: datetime,
    attendees: list[Attendee],
    *,
    description: str = "",
    location: str = "",
    all_day: bool = False,
) -> int | None:
    """Invite, or move an existing invite; returns the SEQUENCE sent, None when unchanged."""
    uid = _uid(subject, key)
    people = [{"name": a.name, "email": a.email} for a in attendees]
    invite = session.get(CalendarInvite, uid)
    if invite is None:
        invite = CalendarInvite(
            uid=uid,
            subject=subject,
            key=key,
            summary=summary,
            description=description,
            location=location,
            starts_at=start,
            ends_at=end,
            all_day=all_day,
            sequence=0,
            attendees=people,
        )
        session.add(invite)
        session.flush()
        _queue(
            session,
            invite,
            "REQUEST",
            "日程邀请 / Invitation",
            "我们预约如下时间 / We would like to arrange:",
        )
        audit_chain.append(session, subject, "invite.sent", "system:siteflow", _payload(invite))
        return invite.sequence
    if (invite.starts_at, invite.ends_at, invite.summary, invite.status) == (
        start,
        end,
        summary,
        "confirmed",
    ):
        return None
    before = _when(session, invite)
    invite.starts_at, invite.ends_at, invite.summary, invite.all_day = start, end, summary, all_day
    invite.description, invite.location, invite.attendees = description, location, people
    invite.status = "confirmed"
    invite.sequence += 1
    session.flush()
    _queue(
        session,
        invite,
        "REQUEST",
        "日程变更 / Rescheduled",
        f"时间有变，提前通知您 / The date has changed; we let you know in advance (COM-3).\n"
        f"  原定 / Was: {before}",
    )
    audit_chain.append(session, subject, "invite.updated", "system:siteflow", _payload(invite))
    return invite.sequence


def cancel(session: Session, subject: str, key: str, reason: str) -> int | None:
    invite = session.get(CalendarInvite, _uid(subject, key))
    if invite is None or invite.status == "cancelled":
        return None
    invite.status = "cancelled"
    invite.sequence += 1
    session.flush()
    _queue(session, invite, "CANCEL", "日程取消 / Cancelled", f"此安排已取消 / This is cancelled: {reason}")
    audit_chain.append(
        session, subject, "invite.cancelled", "system:siteflow", {**_payload(invite), "reason": reason}
    )
    return invite.sequence


def _payload(invite: CalendarInvite) -> dict[str, object]:
    return {
        "uid": invite.uid,
        "sequence": invite.sequence,
        "summary": invite.summary,
        "start": invite.starts_at.isoformat(),
        "end": invite.ends_at.isoformat(),
        "attendees": [p["email"] for p in invite.attendees],
    }
