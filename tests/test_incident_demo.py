"""`siteflow demo incident` on real parts (issue #11 item 10): the night's critical incident runs
to Completed, the keeper mails the travel warnings while the engineer is on the way, and the
month's report counts the incident's response, restoration and outage as the story has them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from models.incident_contract import Severity
from siteflow.db import read_scope
from siteflow.incidents import records
from siteflow.incidents.clocks import ClockKind
from siteflow.incidents.demo import play_incident
from siteflow.incidents.report import month_bounds, monthly_report
from tests.test_engineering_e2e import flow_run_state

pytestmark = pytest.mark.e2e


def test_the_incident_demo_closes_its_run_warns_on_travel_and_reports_the_figures(
    stack_factory: Any, tmp_path: Path
) -> None:
    handle = stack_factory("sqlite")
    with handle.active():
        done = play_incident(handle.settings.mail_dir, tmp_path / "report.html", say=print)

        assert flow_run_state(done.flow_run_id) == "COMPLETED"
        assert [s.split("travel clock: ")[1][:4] for s in done.warnings_mailed] == ["50 %", "75 %"]
        assert all(f"[{done.key}]" in s for s in done.warnings_mailed)

        # the report's figures for the demo incident alone (the session's stack holds others too)
        start, end = month_bounds(done.report.month)
        with read_scope() as session:
            mine = [i for i in records.incidents_received(session, start=start, end=end) if i.key == done.key]
            contracts = records.contracts(session)
        alone = monthly_report(
            month=done.report.month,
            incidents=mine,
            outages=[],
            problems=[],
            contracts=contracts,
            as_of=datetime.now(UTC),
        )
        times = {(t.clock, t.severity): t for t in alone.times}
        assert times[ClockKind.RESPONSE, Severity.CRITICAL].median_minutes == 6
        assert times[ClockKind.TRAVEL, Severity.CRITICAL].median_minutes == 43
        assert times[ClockKind.RESTORATION, Severity.CRITICAL].median_minutes == 54
        assert alone.breaches == [] and alone.emergencies == 1
        assert (done.response_minutes, done.restoration_minutes) == (6, 54)

        row = next(f for f in done.report.outages_by_element if f.name == done.element)
        assert (row.minutes, row.product_minutes) == (55, 40)
        assert (done.outage_minutes, done.product_minutes, done.external_minutes) == (55, 40, 15)
        assert done.report.incidents >= 1 + len(done.samples)
        html = done.report_path.read_text(encoding="utf-8")
        assert done.key not in {b.key for b in done.report.breaches} and "data:image/png" in html
