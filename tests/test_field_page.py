"""The engineer's phone page (/field, issue #11 item 4; INC-4): in a real browser at a phone's
size, signed in, one tap per field event, recorded as the signed-in person at the time it
happened; a refused tap says why with the rule first and changes nothing; a form without its
CSRF token or without a session records nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx

from models.incident_input import EventKind
from siteflow.db import read_scope
from siteflow.identity.roles import StaffRole
from siteflow.identity.users import NewUser, add_user
from siteflow.incidents import records
from tests.test_incident_handover import MAX, opened
from tests.test_staff_identity import ADMIN, PASSWORD
from tests.test_workspace_browser import SQLITE_ONLY, chromium
from tests.test_workspace_web import web as web  # noqa: F401  (the fixture)

ENGINEER = NewUser(name=MAX.name, email=MAX.email, roles=[StaffRole.ENGINEER])
PHONE = {"width": 390, "height": 844}


def events(key: str) -> list[tuple[EventKind, str, datetime]]:
    with read_scope() as session:
        return [(e.kind, e.by, e.at) for e in records.load_incident(session, key=key).events]


@SQLITE_ONLY
def test_an_engineer_taps_contacted_and_on_site_needed_on_a_phone(web: str) -> None:  # noqa: F811
    key = "INC-2026-951"
    opened(key)  # reported 5 minutes ago, owned by Max
    add_user(ENGINEER, PASSWORD, ADMIN)
    with chromium() as browser:
        page = browser.new_page(viewport=PHONE, is_mobile=True)
        page.goto(f"{web}/field")
        assert "/signin?next=%2Ffield" in page.url
        page.fill("#email", ENGINEER.email)
        page.fill("#password", PASSWORD)
        page.get_by_role("button", name="登录 / Sign in").click()
        page.wait_for_url(f"{web}/field")
        assert "我负责 / mine" in page.locator("#incidents").inner_text()
        page.get_by_role("link", name=key).click()
        page.wait_for_url(f"{web}/field/{key}")

        # A late tap: contacted two minutes ago, typed on the site's clock.
        zone = ZoneInfo("Europe/Berlin")
        earlier = (datetime.now(UTC) - timedelta(minutes=2)).astimezone(zone)
        form = page.locator("form.tap", has=page.locator("input[value='contacted']"))
        form.locator("input[name='at']").fill(earlier.strftime("%H:%M"))
        form.get_by_role("button").click()
        page.wait_for_url(f"{web}/field/{key}?recorded=contacted")
        assert "Contacted" in page.locator("#recorded").inner_text()
        assert "✓ 已联系客户 / Contacted" in page.locator("#taps").inner_text()
        assert page.get_by_role("button", name="已联系客户 / Contacted").count() == 0  # once

        # "On my way" before "on-site needed" is refused by the core (INC-4), nothing recorded.
        page.get_by_role("button", name="在路上 / On my way").click()
        assert "INC-4" in page.locator("#error").inner_text()
        assert "on-site support is needed" in page.locator("#error").inner_text()

        page.get_by_role("button", name="需要到现场 / On-site needed").click()  # one tap: now
        page.wait_for_url(f"{web}/field/{key}?recorded=on-site-needed")
        clocks = page.locator("#clocks").inner_text()
        assert "travel" in clocks and "running" in clocks

    recorded = events(key)
    assert [(k, by) for k, by, _ in recorded] == [
        (EventKind.CONTACTED, MAX.name),
        (EventKind.ON_SITE_NEEDED, MAX.name),
    ]
    assert recorded[0][2] == earlier.replace(second=0, microsecond=0).astimezone(UTC)


@SQLITE_ONLY
def test_a_tap_without_session_or_csrf_token_records_nothing(web: str) -> None:  # noqa: F811
    key = "INC-2026-952"
    opened(key)
    add_user(ENGINEER, PASSWORD, ADMIN)
    with httpx.Client(base_url=web, follow_redirects=False) as anonymous:
        answer = anonymous.post(f"/field/{key}", data={"kind": "contacted"})
        assert answer.status_code == 303 and "/signin" in answer.headers["location"]
    with httpx.Client(base_url=web, follow_redirects=False) as browser:
        signin = browser.get("/signin")
        token = signin.text.split('name="csrf" value="')[1].split('"')[0]
        signed = browser.post(
            "/signin", data={"email": ENGINEER.email, "password": PASSWORD, "csrf": token, "next": "/field"}
        )
        assert signed.status_code == 303, signed.text
        forged = browser.post(f"/field/{key}", data={"kind": "contacted"})
        assert forged.status_code == 403 and "expired" in forged.text
        page = browser.get(f"/field/{key}")
        csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
        unknown = browser.post(f"/field/{key}", data={"kind": "departure", "csrf": csrf})
        assert unknown.status_code == 422
        bad_time = browser.post(f"/field/{key}", data={"kind": "contacted", "at": "25:99", "csrf": csrf})
        assert bad_time.status_code == 422 and "is not a time" in bad_time.text
        missing = browser.get("/field/INC-2026-000")
        assert missing.status_code == 404
    assert events(key) == []
