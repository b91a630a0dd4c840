"""A resume meant for one gate cannot answer the next one (issue #4: "record exactly one
decision and resume the flow once").

Prefect resumes whatever pause a run is at. When a resume request is slow (the Prefect server
busy) or two resumers race (the web's and the gate keeper's), the run can have moved on to its
next gate by the time the request lands. Without a guard, the flow then read the earlier gate's
answer as a Prefect-UI answer to the new gate; with a gate that needs no data it could have
been accepted, a decision nobody made. The benchmark found this at about 1 approval in 10.
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from typing import Any
from uuid import UUID

import pytest

from siteflow.stand_in_signers import proven
from tests.test_engineering_e2e import flow_run_state, sample_form, wait_for_open_gate, wait_paused

pytestmark = pytest.mark.e2e


def test_a_late_resume_for_the_last_gate_is_refused_at_the_next(stack_factory: Any) -> None:
    from prefect.client.orchestration import get_client
    from sqlalchemy import select

    from models.gate import GateAttempt
    from siteflow.db import session_scope
    from siteflow.decisions import Signer, decide
    from siteflow.launch import start_project
    from siteflow.resumer import answer_for

    handle = stack_factory("sqlite")
    form = sample_form(f"STALE-{int(time.time()) % 100000}")
    customer = form.contacts[0]
    with handle.active():
        run_id = start_project(form)
        first = wait_for_open_gate(form.code, "survey-readiness-r1")
        wait_paused(run_id)
        agreed = (date.today() + timedelta(days=3)).isoformat()
        decide(
            proven(first.id, "not-ready", Signer(customer.name, customer.email), data={"agreed_date": agreed})
        )
        late_answer = answer_for(first.id)  # what a resumer built for round 1
        assert late_answer["gate"] == first.id
        second = wait_for_open_gate(form.code, "survey-readiness-r2")
        wait_paused(run_id)

        # The round-1 resume arrives now, with the run paused at round 2.
        with get_client(sync_client=True) as client:
            response = client.resume_flow_run(UUID(run_id), run_input=late_answer)
        assert response.status.value == "REJECT"
        assert f"'{second.id}' was expected" in str(response.details)  # the form's gate constant

        time.sleep(2)  # long enough for a wrongly resumed run to record an answer
        assert flow_run_state(run_id) == "PAUSED"
        with session_scope() as session:
            attempts = session.execute(select(GateAttempt).where(GateAttempt.gate_id == second.id)).all()
        assert attempts == []  # nothing was recorded for round 2
        assert wait_for_open_gate(form.code, "survey-readiness-r2").id == second.id  # still open
