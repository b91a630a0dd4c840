"""A critical incident from intake to closure on real parts, through the CLI as a logged-in user.

The owner opens it (`siteflow incidents open`), records the field events, an outage split
between product and external causes, and closes it; the run named after the key ends
Completed, and the customer's acknowledgement and summary arrive in the SMTP catcher. The
refusals — an unknown contract, a departure before restoration (COM-8), an event in the future
(INC-4), a closure without a cause (INC-8) — exit 2 and change nothing.
"""

from __future__ import annotations

import email
import email.policy
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from models.incident import Incident, IncidentEventRow, Outage
from models.incident_run import IncidentRun
from siteflow.db import session_scope
from siteflow.identity.roles import StaffRole
from siteflow.incidents import records
from tests.cli_user import logged_in
from tests.cli_user import run as user_cli
from tests.incident_samples import contract
from tests.test_engineering_e2e import flow_run_state

pytestmark = pytest.mark.e2e
OWNER = ("Max Bauer", "max.bauer@contractor.example")


def form(key: str, received_at: datetime, code: str = "C-BERLIN-1") -> dict[str, Any]:
    return {
        "key": key,
        "received_at": received_at.isoformat(),
        "channel": "phone",
        "contract": code,
        "customer": "Nordnetz AG",
        "caller_name": "Jana Vogel",
        "caller_contact": "+49 30 1234 5678",
        "caller_email": "jana.vogel@nordnetz.example",
        "elements": ["NE40-BER-01"],
        "reported": "Voice service down in Mitte.",
        "questionnaire": {"service_down_totally": "yes"},
    }


def write(path: Path, data: dict[str, Any]) -> str:
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def counts(key: str) -> tuple[int, int, int]:
    with session_scope() as session:
        return (
            session.scalar(select(func.count()).select_from(Incident).where(Incident.key == key)) or 0,
            session.scalar(select(func.count()).where(IncidentEventRow.incident_key == key)) or 0,
            session.scalar(select(func.count()).where(Outage.incident_key == key)) or 0,
        )


def wait_for(check: Any, what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"{what} did not happen within {timeout}s")


def mails_to(mail_dir: Path, key: str) -> list[str]:
    subjects = []
    for path in mail_dir.glob("*.eml"):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if f"[{key}]" in str(msg["Subject"]) and "nordnetz" in str(msg["To"]):
            subjects.append(str(msg["Subject"]))
    return sorted(subjects)


def test_critical_incident_from_intake_to_closure_through_the_cli(stack_factory: Any, tmp_path: Path) -> None:
    handle = stack_factory("sqlite")
    key = f"INC-2026-{int(time.time()) % 100000}"
    with handle.active():
        with session_scope() as session:
            records.save_contract(session, contract=contract())
        me = logged_in(tmp_path / "owner", *OWNER, role=StaffRole.ENGINEER)
        now = datetime.now(UTC)

        # an unknown contract: refused, nothing recorded, no run
        bad = user_cli(me, "incidents", "open", write(tmp_path / "bad.json", form(key, now, "C-NOPE")))
        assert bad.returncode == 2 and "INC-4: unknown contract 'C-NOPE'" in bad.stderr, bad.stderr
        assert counts(key) == (0, 0, 0)

        opened = user_cli(
            me, "incidents", "open", write(tmp_path / "inc.json", form(key, now - timedelta(minutes=20)))
        )
        assert opened.returncode == 0, opened.stderr
        assert f"opened incident {key}: critical" in opened.stdout and OWNER[1] in opened.stdout

        def event(*args: str) -> Any:
            return user_cli(me, "incidents", "event", key, *args)

        for kind in ("contacted", "on-site-needed", "on-my-way"):
            assert event(kind).returncode == 0, kind
        unchecked = event("on-site")  # COM-7: not without the site-access checklist
        assert unchecked.returncode == 2 and "COM-7" in unchecked.stderr, unchecked.stderr
        assert event("on-site", "--duty-staff", "Jonas Weber", "--badge").returncode == 0
        vague = event("promise")  # COM-2: a promise says what
        assert vague.returncode == 2 and "COM-2: say what the promise is" in vague.stderr, vague.stderr
        due = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
        promised = event("promise", "--what", "Written root-cause summary", "--due", due)
        assert promised.returncode == 0, promised.stderr
        assert event("request", "--what", "Open rack 4 for us").returncode == 0
        before = counts(key)
        early = event("departure")  # COM-8: the engineer stays until it is restored
        assert early.returncode == 2 and "COM-8" in early.stderr, early.stderr
        future = event("restored", "--at", (datetime.now(UTC) + timedelta(hours=1)).isoformat())
        assert future.returncode == 2 and "INC-4" in future.stderr and "future" in future.stderr
        assert counts(key) == before  # nothing changed
        restored = event("restored")
        assert restored.returncode == 0 and "stopped" in restored.stdout
        assert event("departure").returncode == 0

        start = now - timedelta(minutes=15)
        outage = {
            "element": "NE40-BER-01",
            "type": "service-impact",
            "start": start.isoformat(),
            "end": (start + timedelta(minutes=10)).isoformat(),
            "affected_units": 400,
            "units_in_service": 1000,
            "causes": [
                {
                    "cause": "product",
                    "start": start.isoformat(),
                    "end": (start + timedelta(minutes=6)).isoformat(),
                },
                {
                    "cause": "external",
                    "start": (start + timedelta(minutes=6)).isoformat(),
                    "end": (start + timedelta(minutes=10)).isoformat(),
                },
            ],
        }
        out = user_cli(me, "incidents", "outage", key, write(tmp_path / "outage.json", outage))
        assert out.returncode == 0 and "counted" in out.stdout, out.stderr

        shown = user_cli(me, "incidents", "show", key, "--json")
        view = json.loads(shown.stdout)
        assert [c["state"] for c in view["clocks"]] == ["stopped", "stopped", "stopped"]
        assert view["clocks"][0]["target_minutes"] == 30 and not view["clocks"][0]["breached"]
        printed = user_cli(me, "incidents", "show", key).stdout
        assert "UTC" in printed  # contract zone, UTC beside
        assert "record (COM-2" in printed and "contacted" in printed and "restored" in printed
        assert "promised to the customer: Written root-cause summary, by" in " ".join(printed.split())
        assert [r["kind"] for r in view["record"]][:2] == ["contacted", "on-site-needed"]
        listed = json.loads(user_cli(me, "incidents", "list", "--open", "--json").stdout)
        assert key in [v["key"] for v in listed]

        parts = {
            "description": "Line card fault",
            "solution": "Card replaced",
            "process": "Remote, then on site",
            "summary": "Service restored after the card was replaced.",
        }
        refused = user_cli(me, "incidents", "close", key, "--file", write(tmp_path / "c1.json", parts))
        assert refused.returncode == 2 and "INC-8: closing needs cause" in refused.stderr, refused.stderr
        closing = wait_for(
            lambda: (
                r
                if (
                    r := user_cli(
                        me,
                        "incidents",
                        "close",
                        key,
                        "--file",
                        write(tmp_path / "c2.json", parts | {"cause": "Faulty line card"}),
                    )
                ).returncode
                == 0
                else None
            ),
            "closure accepted (the run reached its closure gate)",
        )
        assert "recorded: close" in closing.stdout

        with session_scope() as session:
            run = session.get(IncidentRun, key)
            assert run is not None and run.flow_run_id
            flow_run_id = run.flow_run_id
        wait_for(lambda: flow_run_state(flow_run_id) == "COMPLETED", "the run Completed")
        with session_scope() as session:
            row = session.get(Incident, key)
            assert row is not None and row.state == "closed" and row.cause == "Faulty line card"
        subjects = wait_for(
            lambda: (
                len(mails_to(handle.settings.mail_dir, key)) >= 2 and mails_to(handle.settings.mail_dir, key)
            ),
            "the customer's mails",
        )
        assert any("We have your report" in s for s in subjects) and any("is closed" in s for s in subjects)

        # issue #11 item 9: the incident's story and its verified chain, as for projects
        from flows.incident import CLOSURE_GATE
        from siteflow import audit_report

        report = audit_report.build(key, with_prefect=False)
        assert report["project"]["code"] == key and report["project"]["state"] == "closed"
        kinds = [p["phase"] for p in report["phases"]]
        assert kinds[:2] == ["contacted", "on-site-needed"] and "restored" in kinds, kinds
        assert audit_report.verify(key) == []
        assert CLOSURE_GATE in {g["key"] for g in report["gates"]}


def test_disputed_outage_goes_to_the_customer_and_problem_reports_through_the_cli(
    stack_factory: Any, tmp_path: Path
) -> None:
    """INC-7 on the real stack: an outage recorded as disputed wakes the run waiting at its
    closure gate, which opens a customer gate and mails the caller its link; closing is refused
    meanwhile; the customer's answer (external) is recorded as final and a second dispute is
    refused naming INC-7. INC-8: problem reports raised, listed and closed through the CLI, by
    the owner only (another engineer is refused)."""
    import httpx

    from models.gate import Gate
    from siteflow.incidents.attribution import gate_key
    from tests.test_approval_links import form_token
    from tests.test_email_approval_e2e import wait_for_link

    handle = stack_factory("sqlite")
    key = f"INC-2026-{int(time.time()) % 100000 + 1}"
    caller = "jana.vogel@nordnetz.example"
    with handle.active():
        with session_scope() as session:
            records.save_contract(session, contract=contract())
        me = logged_in(tmp_path / "owner", *OWNER, role=StaffRole.ENGINEER)
        other = logged_in(
            tmp_path / "other", "Eva Klein", "eva.klein@contractor.example", role=StaffRole.ENGINEER
        )
        now = datetime.now(UTC)
        opened = user_cli(
            me, "incidents", "open", write(tmp_path / "inc.json", form(key, now - timedelta(minutes=30)))
        )
        assert opened.returncode == 0, opened.stderr
        with session_scope() as session:
            run = session.get(IncidentRun, key)
            assert run is not None and run.flow_run_id
            flow_run_id = run.flow_run_id
        wait_for(lambda: flow_run_state(flow_run_id) == "PAUSED", "the run waits at its closure gate")
        start = now - timedelta(minutes=25)
        outage = {
            "element": "NE40-BER-01",
            "type": "service-impact",
            "start": start.isoformat(),
            "end": (start + timedelta(minutes=10)).isoformat(),
            "affected_units": 400,
            "units_in_service": 1000,
            "causes": [
                {
                    "cause": "product",
                    "start": start.isoformat(),
                    "end": (start + timedelta(minutes=10)).isoformat(),
                }
            ],
            "disputed": True,
            "dispute_reason": "Jana Vogel says the site lost mains power",
        }
        refused = user_cli(other, "incidents", "outage", key, write(tmp_path / "o0.json", outage))
        assert refused.returncode == 2 and "INC-7: only" in refused.stderr, refused.stderr
        recorded = user_cli(me, "incidents", "outage", key, write(tmp_path / "o1.json", outage))
        assert recorded.returncode == 0 and "disputed" in recorded.stdout, recorded.stderr
        with session_scope() as session:
            outage_id = session.scalars(select(Outage.id).where(Outage.incident_key == key)).one()
        gate_name = gate_key(outage_id)

        def gate_open() -> bool:
            with session_scope() as session:
                return (
                    session.scalar(select(Gate.id).where(Gate.subject == key, Gate.key == gate_name))
                    is not None
                )

        wait_for(gate_open, "the run opened the outage's customer gate")
        parts = {
            "description": "Line card fault",
            "cause": "Power loss at the site",
            "solution": "Power restored",
            "process": "On site",
            "summary": "Service restored.",
        }
        early = user_cli(me, "incidents", "close", key, "--file", write(tmp_path / "c.json", parts))
        assert early.returncode == 2 and "INC-7" in early.stderr and gate_name in early.stderr, early.stderr

        link = wait_for_link(handle.settings.mail_dir, caller, f"[{key}] 待您决定")
        with httpx.Client() as http:
            page = http.get(link).text
            assert "recorded as: product 10 min" in page and "mains power" in page
            answered = http.post(
                link, data={"decision": "submit", "data.holds": "external", "form_token": form_token(page)}
            )
            assert answered.status_code == 200, answered.text

        def decided() -> bool:
            with session_scope() as session:
                row = session.get(Outage, outage_id)
                return row is not None and row.attribution == "decided"

        wait_for(decided, "the customer's attribution recorded by the run")
        with session_scope() as session:
            (final,) = records.disputes_of(session, key=key)
            assert caller in (final.decided_by or "") and [s.cause.value for s in final.segments] == [
                "external"
            ]
        again = user_cli(me, "incidents", "dispute", key, outage_id, "--reason", "we disagree")
        assert again.returncode == 2 and "INC-7" in again.stderr and "final" in again.stderr, again.stderr

        # INC-8: problem reports through the CLI
        due = (now + timedelta(days=14)).date().isoformat()
        args = (
            "incidents",
            "problem",
            key,
            "--title",
            "Line card firmware",
            "--office",
            "Quality office",
            "--due",
            due,
        )
        assert user_cli(other, *args).returncode == 2
        bad_date = user_cli(me, *args[:-1], "14.12.2026")
        assert bad_date.returncode == 2 and "YYYY-MM-DD" in bad_date.stderr
        raised = user_cli(me, *args, "--detail", "Card resets under load")
        assert raised.returncode == 0 and "raised problem report" in raised.stdout, raised.stderr
        listed = json.loads(user_cli(me, "problems", "list", "--open", "--json").stdout)
        (problem,) = [p for p in listed if p["incident_key"] == key]
        assert problem["opened_by"] == OWNER[0] and not problem["overdue"]
        overdue = json.loads(user_cli(me, "problems", "list", "--overdue", "--json").stdout)
        assert all(p["incident_key"] != key for p in overdue)  # due in two weeks: not overdue
        not_yours = user_cli(other, "problems", "close", problem["id"])
        assert not_yours.returncode == 2 and "INC-8" in not_yours.stderr, not_yours.stderr
        closed = user_cli(me, "problems", "close", problem["id"])
        assert closed.returncode == 0 and "closed problem report" in closed.stdout, closed.stderr
        assert all(
            p["id"] != problem["id"]
            for p in json.loads(user_cli(me, "problems", "list", "--open", "--json").stdout)
        )

        closing = user_cli(me, "incidents", "close", key, "--file", write(tmp_path / "c2.json", parts))
        assert closing.returncode == 0, closing.stderr
        wait_for(lambda: flow_run_state(flow_run_id) == "COMPLETED", "the run Completed")
        from siteflow import audit_report

        assert audit_report.verify(key) == []
