"""Incidents in the staff workspace (/incidents, /incidents/{key}; issue #11), over the real web.

Over HTTP (httpx, the app served by uvicorn): without a session a page and a form send the
browser to sign in; a form without its CSRF token changes nothing; accepting someone else's
handover is refused naming INC-9 and the owner stays; closing without a cause is refused
naming INC-8 and the cause, the form keeps what was typed. The closure refusal needs no run:
the core's check (`staff_acts.close`, the API's too) refuses before it looks for the closure
gate, so the database-only incident of `tests.test_incident_handover.opened` is enough.

In a real browser (Playwright + chromium): the owner goes from the queue to the incident and
disputes an outage (INC-7) and hands it over; the colleague finds it on their home page and
accepts; the owner changes only then.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx
from playwright.sync_api import Page

from models.incident import Incident
from models.incident_handover import HandoverState, IncidentHandover
from siteflow.db import session_scope
from siteflow.identity.roles import StaffRole
from siteflow.identity.users import NewUser, add_user
from siteflow.incidents import records
from siteflow.incidents.handover import request_handover
from siteflow.incidents.outages import parse_outage
from tests.test_incident_handover import ANNA, MAX, OTTO, opened, owner
from tests.test_incident_records import outage
from tests.test_staff_identity import ADMIN, PASSWORD
from tests.test_workspace_browser import SQLITE_ONLY, chromium
from tests.test_workspace_web import web as web  # noqa: F401  (the fixture)


def accounts() -> None:
    for p in (MAX, ANNA, OTTO):
        add_user(NewUser(name=p.name, email=p.email, roles=[StaffRole.ENGINEER]), PASSWORD, ADMIN)


@contextmanager
def signed_in(web: str, email: str) -> Iterator[httpx.Client]:  # noqa: F811
    """A browser signed in as `email` (session and CSRF cookies kept by the client)."""
    with httpx.Client(base_url=web, follow_redirects=False) as client:
        token = csrf_of(client.get("/signin").text)
        answer = client.post(
            "/signin", data={"email": email, "password": PASSWORD, "csrf": token, "next": "/"}
        )
        assert answer.status_code == 303, answer.text
        yield client


def csrf_of(html: str) -> str:
    return html.split('name="csrf" value="')[1].split('"')[0]


def handovers(key: str) -> list[tuple[str, str]]:
    with session_scope() as session:
        return [
            (h.to_email, h.state)
            for h in session.query(IncidentHandover).filter(IncidentHandover.incident_key == key)
        ]


@SQLITE_ONLY
def test_incident_pages_need_a_session_and_their_forms_a_csrf_token(web: str) -> None:  # noqa: F811
    key = "INC-2026-961"
    opened(key)
    accounts()
    with httpx.Client(base_url=web, follow_redirects=False) as anonymous:
        for path in ("/incidents", f"/incidents/{key}"):
            answer = anonymous.get(path)
            assert answer.status_code == 303 and answer.headers["location"].startswith("/signin?next=")
        posted = anonymous.post(f"/incidents/{key}/handover", data={"to": ANNA.email})
        assert posted.status_code == 303 and "/signin" in posted.headers["location"]
    with signed_in(web, MAX.email) as max_:
        queue = max_.get("/incidents")
        assert queue.status_code == 200 and f"/incidents/{key}" in queue.text and "我 / me" in queue.text
        home = max_.get("/")
        assert 'id="my-incidents-count">1<' in home.text and f"/incidents/{key}" in home.text
        forged = max_.post(f"/incidents/{key}/handover", data={"to": ANNA.email, "note": "night shift"})
        assert forged.status_code == 403 and "expired" in forged.text
        assert f'value="{ANNA.email}"' in forged.text  # what was typed is kept
    assert handovers(key) == [] and owner(key)[0] == MAX.email


@SQLITE_ONLY
def test_someone_elses_handover_is_refused_and_changes_nothing(web: str) -> None:  # noqa: F811
    key = "INC-2026-962"
    opened(key)
    accounts()
    with session_scope() as session:  # Max asks Anna (the core's own call, as the API makes it)
        request_handover(session, key=key, by=MAX, to_email=ANNA.email, note="", now=datetime.now(UTC))
    with signed_in(web, OTTO.email) as otto:
        page = otto.get(f"/incidents/{key}")
        assert "接受 / Accept" not in page.text  # not offered to him …
        answer = otto.post(f"/incidents/{key}/handover/accept", data={"csrf": csrf_of(page.text)})
        assert answer.status_code == 409  # … and refused when posted anyway
        assert "INC-9: the handover of" in answer.text and "only they accept or decline it" in answer.text
        not_owner = otto.post(
            f"/incidents/{key}/handover", data={"to": OTTO.email, "csrf": csrf_of(page.text)}
        )
        assert not_owner.status_code == 409 and "INC-9" in not_owner.text
    assert handovers(key) == [(ANNA.email, HandoverState.PENDING.value)]
    assert owner(key) == (MAX.email, f"{MAX.name} <{MAX.email}>", 0)


@SQLITE_ONLY
def test_closing_without_a_cause_is_refused_naming_it(web: str) -> None:  # noqa: F811
    key = "INC-2026-963"
    opened(key)
    accounts()
    parts = {
        "description": "Line card LC-3 down",
        "cause": "",
        "solution": "Card replaced",
        "process": "Remote diagnosis, then on site",
        "summary": "Service restored after the card was replaced",
    }
    with signed_in(web, MAX.email) as max_:
        page = max_.get(f"/incidents/{key}")
        assert 'id="close-form"' in page.text
        answer = max_.post(f"/incidents/{key}/close", data=parts | {"csrf": csrf_of(page.text)})
        assert answer.status_code == 409
        assert "INC-8: closing needs cause" in answer.text
        assert ">Card replaced</textarea>" in answer.text  # the form keeps what was typed
    with session_scope() as session:
        row = session.get(Incident, key)
        assert row is not None and row.state == "open" and row.cause is None


def sign_in(page: Page, web: str, email: str, start: str) -> None:  # noqa: F811
    page.goto(f"{web}{start}")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="登录 / Sign in").click()
    page.wait_for_url(f"{web}{start}")


@SQLITE_ONLY
def test_the_owner_hands_over_from_the_queue_and_the_colleague_accepts(web: str) -> None:  # noqa: F811
    key = "INC-2026-964"
    opened(key)
    accounts()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=4)
    with session_scope() as session:
        outage_id = records.record_outage(
            session,
            key=key,
            outage=parse_outage(
                outage(start, 120, [("product", 90), ("external", 30)], element="NE40-BER-01")
            ),
            now=datetime.now(UTC),
            actor=MAX.email,
        )
    with chromium() as browser:
        mine = browser.new_context().new_page()
        sign_in(mine, web, MAX.email, "/incidents")
        row = mine.locator("#incidents tr", has=mine.get_by_role("link", name=key))
        assert "我 / me" in row.inner_text() and "restoration" in mine.locator("#incidents").inner_text()
        mine.get_by_role("link", name=key).click()
        mine.wait_for_url(f"{web}/incidents/{key}")
        outages = mine.locator("#outages")
        assert "product 1.5 min" in outages.inner_text() and "recorded" in outages.inner_text()
        mine.fill(f"#reason-{outage_id}", "客户称是停电 / the customer says it was their power")
        mine.get_by_role("button", name="提出争议，请客户决定 / Dispute; the customer decides").click()
        mine.wait_for_url(f"{web}/incidents/{key}?done=dispute")  # INC-7, the API's own act
        assert "waiting for the customer" in mine.locator("#outages").inner_text()
        mine.fill("#handover-to", ANNA.email)
        mine.fill("#handover-note", "交班 / end of my shift")
        mine.get_by_role("button", name="请求移交 / Ask them to take over").click()
        mine.wait_for_url(f"{web}/incidents/{key}?done=handover")
        assert ANNA.email in mine.locator("#handover").inner_text()
        assert owner(key)[0] == MAX.email  # INC-9: unchanged until she accepts

        hers = browser.new_context().new_page()
        sign_in(hers, web, ANNA.email, "/")
        hers.locator("#handovers-to-me").get_by_role("link", name=key).click()
        hers.wait_for_url(f"{web}/incidents/{key}")
        hers.get_by_role("button", name="接受 / Accept").click()
        hers.wait_for_url(f"{web}/incidents/{key}?done=accepted")
        assert ANNA.email in hers.locator("#owner").inner_text()
        assert "(我 / me)" in hers.locator("#owner").inner_text()
    assert owner(key) == (ANNA.email, f"{ANNA.name} <{ANNA.email}>", 1)
