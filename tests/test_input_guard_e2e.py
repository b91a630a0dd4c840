"""No input takes siteflow down (issue #10 item 1), on a real stack: Prefect server, served
deployments, gate keeper, web service.

- The reproduced failure: a customer name holding a lone UTF-16 surrogate sent to the
  engineering-project deployment through Prefect's API. Prefect used to store the run and
  then fail every read of it ("surrogates not allowed"), until the served deployments gave up.
  Now Prefect's server refuses text it cannot store at its door (422, also with the schema
  switched off or a flow run POSTed directly), and the deployment's parameter schema carries
  the text kinds' limits (409 for the rest) — before storing anything; the stack keeps serving
  and a normal project still runs to its first gate.
- A run Prefect already holds with bad data (created with the schema not enforced) is
  refused by the flow itself: Failed with the field named, never Crashed, runner still up.
- Property-based (hypothesis): forms of both deployments with one text field replaced by
  generated text, through Prefect's API and siteflow's web API; decisions with generated
  decision values and comments through the web API. Each is refused with a message or
  accepted and run — never a 5xx, never a Crashed run, the stack up throughout.

Examples are few in CI (SITEFLOW_INPUT_FUZZ_EXAMPLES, default 6 per form);
`python -m benchmarks.input_fuzz --examples 5000` runs thousands.
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.conftest import StackHandle
from tests.test_engineering_e2e import ROOT, flow_run_state, wait_for_open_gate

pytestmark = pytest.mark.e2e
EXAMPLES = int(os.environ.get("SITEFLOW_INPUT_FUZZ_EXAMPLES", "6"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: each example is a real request
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SETTLED = {"PAUSED", "FAILED", "COMPLETED", "CANCELLED", "CRASHED"}
PM_NAME, PM_EMAIL = "李娜 Li Na", "li.na@siteflow.example"  # the example project's PM

NASTY = [
    "\ud800",
    "Acme\udfff",
    "A\x00B",
    "\x1b[2J\x1b[31mred",
    "P-2026-001\n",
    "8" * 400_000,
    "广州项目",
    "  padded  ",
    "😀 𠀀",
    "\u202eevil",
    "line\r\nbreak",
    "",
    "\t",
    "a\u2028b",
    "\x85",
]
TEXT = st.one_of(
    st.sampled_from(NASTY),
    st.text(st.characters(codec=None, exclude_categories=()), max_size=60),
    st.text(st.characters(codec=None, exclude_categories=()), min_size=190, max_size=4100),
)


def project_form(code: str) -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load((ROOT / "examples" / "project.yaml").read_text(encoding="utf-8"))
    raw["code"] = code
    as_json: dict[str, Any] = json.loads(json.dumps(raw, default=str))
    return as_json


def plan_form(window_id: str, stamp: str) -> dict[str, Any]:
    from models.upgrade_plan import resolve_runbook

    raw: dict[str, Any] = yaml.safe_load(
        (ROOT / "examples" / "upgrade-plan.yaml").read_text(encoding="utf-8")
    )
    raw = resolve_runbook(raw, ROOT / "examples")
    raw["id"] = window_id
    raw["window"] = {**raw["window"], "date": str(date.today() + timedelta(days=60))}
    for i, element in enumerate(raw["elements"]):
        element["name"] = f"FZ{stamp}-{i}"  # a booked example overlaps no other
    as_json: dict[str, Any] = json.loads(json.dumps(raw, default=str))
    return as_json


def text_paths(form: Any, where: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a form that holds text (dates and enums included: they are text in JSON)."""
    if isinstance(form, dict):
        return [p for k, v in form.items() for p in text_paths(v, (*where, k))]
    if isinstance(form, list):
        return [p for i, v in enumerate(form) for p in text_paths(v, (*where, i))]
    return [where] if isinstance(form, str) else []


def replaced(form: dict[str, Any], path: tuple[Any, ...], value: str) -> dict[str, Any]:
    out = copy.deepcopy(form)
    node: Any = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def body(payload: Any) -> bytes:
    """JSON as a client sends it: a lone surrogate goes out escaped (``\\ud800``)."""
    return json.dumps(payload).encode("ascii")


class Prefect:
    """Prefect's own REST API, as any client (the UI, a script) calls it."""

    def __init__(self, handle: StackHandle) -> None:
        self.handle = handle
        from siteflow.prefect_credential import basic_auth_header, prefect_auth_string

        self.http = httpx.Client(  # with the stack's credential: without it Prefect answers 401
            base_url=handle.settings.resolved_prefect_api_url,
            timeout=60,
            headers=basic_auth_header(prefect_auth_string(handle.settings)),
        )

    def deployment_id(self, name: str) -> str:
        response = self.http.get(f"/deployments/name/{name}")
        response.raise_for_status()
        return str(response.json()["id"])

    def create_run(self, deployment: str, parameters: dict[str, Any], **extra: Any) -> httpx.Response:
        """POST create_flow_run, retrying a 503 as Prefect's own client does: that is Prefect's
        embedded SQLite answering "database is locked" under load (issue #10 item 5, measured
        in the soak: 2 of ~85 requests on a shared 2-core machine), not a refused input."""
        payload = {"parameters": parameters, **extra}
        for _ in range(5):
            response = self.http.post(
                f"/deployments/{self.deployment_id(deployment)}/create_flow_run",
                content=body(payload),
                headers={"content-type": "application/json"},
            )
            if response.status_code != 503:
                break
            time.sleep(1)
        return response

    def count_runs(self, deployment: str) -> int:
        filter_ = {"deployments": {"id": {"any_": [self.deployment_id(deployment)]}}}
        response = self.http.post("/flow_runs/count", json=filter_)
        response.raise_for_status()
        return int(response.json())

    def run(self, run_id: str) -> dict[str, Any]:
        response = self.http.get(f"/flow_runs/{run_id}")
        response.raise_for_status()
        state: dict[str, Any] = response.json()["state"]
        return state

    def settled(self, run_id: str, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.run(run_id)
            if state["type"] in SETTLED:
                return state
            time.sleep(0.5)
        raise AssertionError(f"run {run_id} did not settle within {timeout}s: {self.run(run_id)}")


def assert_refused_or_started(response: httpx.Response) -> None:
    """Started (201), refused by the deployment's schema (409), or refused at Prefect's door for
    text it cannot store (422, siteflow/prefect_body_guard.py) — each refusal with its reason."""
    assert response.status_code in (201, 409, 422), response.text[:500]
    if response.status_code == 422:
        assert response.json()["detail"].startswith("refused: the request holds"), response.text[:500]


def assert_up(handle: StackHandle, prefect: Prefect) -> None:
    """Every service still running, Prefect answering reads of its runs."""
    handle.stack.check()  # type: ignore[attr-defined]
    assert prefect.http.get("/health").status_code == 200
    assert prefect.http.post("/flow_runs/filter", json={"limit": 50}).status_code == 200


@pytest.fixture
def stack(stack_factory: Any) -> Iterator[tuple[StackHandle, Prefect]]:
    handle: StackHandle = stack_factory("sqlite")
    with handle.active():
        prefect = Prefect(handle)
        yield handle, prefect
        assert_up(handle, prefect)


def stamp() -> str:
    return f"{time.time_ns() % 10**10:010d}"


def test_a_lone_surrogate_is_refused_before_prefect_stores_it(stack: tuple[StackHandle, Prefect]) -> None:
    from deployments import ENGINEERING_PROJECT

    handle, prefect = stack
    before = prefect.count_runs(ENGINEERING_PROJECT)
    form = project_form(f"SUR-{stamp()}") | {"customer": "\ud800"}
    refused = prefect.create_run(ENGINEERING_PROJECT, {"project": form})
    assert refused.status_code == 422, refused.text  # at Prefect's door, before its schema check
    assert "project.customer" in refused.json()["detail"]
    assert prefect.count_runs(ENGINEERING_PROJECT) == before  # refused before it was stored
    time.sleep(2)  # what used to follow: the runner's queries failing until it gave up
    assert_up(handle, prefect)

    code = f"OK-{stamp()}"
    started = prefect.create_run(ENGINEERING_PROJECT, {"project": project_form(code)})
    assert started.status_code == 201, started.text
    gate = wait_for_open_gate(code, "survey-readiness", timeout=90)
    assert gate.status == "open"
    assert flow_run_state(str(started.json()["id"])) in {"PAUSED", "RUNNING"}


def test_a_surrogate_sent_past_the_schema_is_refused_at_prefects_own_door(
    stack: tuple[StackHandle, Prefect],
) -> None:
    """A client holding the Prefect credential may switch the schema off or POST a flow run
    directly; text Prefect cannot store (a lone surrogate, a NUL) is still refused, 422 with
    its place named, before anything is stored (siteflow/prefect_body_guard.py)."""
    from deployments import ENGINEERING_PROJECT

    handle, prefect = stack
    before = prefect.count_runs(ENGINEERING_PROJECT)
    form = project_form(f"SUR-{stamp()}") | {"customer": "\ud800"}
    unenforced = prefect.create_run(ENGINEERING_PROJECT, {"project": form}, enforce_parameter_schema=False)
    assert unenforced.status_code == 422, unenforced.text
    assert "lone UTF-16 surrogate (U+D800) at parameters.project.customer" in unenforced.json()["detail"]
    deployment = prefect.http.get(f"/deployments/name/{ENGINEERING_PROJECT}").json()
    direct = prefect.http.post(
        "/flow_runs/",
        content=body(
            {
                "flow_id": deployment["flow_id"],
                "deployment_id": deployment["id"],
                "name": "nul\x00run",
                "parameters": {"project": project_form(f"NUL-{stamp()}")},
            }
        ),
        headers={"content-type": "application/json"},
    )
    assert direct.status_code == 422, direct.text
    assert "a NUL character (U+0000) at name" in direct.json()["detail"]
    assert prefect.count_runs(ENGINEERING_PROJECT) == before
    time.sleep(2)  # what used to follow: the runner's queries failing until it gave up
    assert_up(handle, prefect)


def test_a_run_prefect_already_holds_with_bad_data_fails_naming_the_field(
    stack: tuple[StackHandle, Prefect],
) -> None:
    """Created with the schema not enforced (a client may ask so): the flow refuses it."""
    from deployments import ENGINEERING_PROJECT
    from siteflow.queries import list_projects

    handle, prefect = stack
    code = f"BAD-{stamp()}"
    form = project_form(code) | {"customer": "Acme\x1b[31m", "contacts": []}
    created = prefect.create_run(ENGINEERING_PROJECT, {"project": form}, enforce_parameter_schema=False)
    assert created.status_code == 201, created.text
    state = prefect.settled(str(created.json()["id"]))
    assert state["type"] == "FAILED", state
    assert "Customer holds the control character ESC (an ANSI escape)" in state["message"]
    assert "\x1b" not in state["message"]
    assert code not in {p.code for p in list_projects()}
    assert_up(handle, prefect)


@SETTINGS
@given(data=st.data())
def test_generated_project_forms_through_prefects_api(stack_factory: Any, data: st.DataObject) -> None:
    from deployments import ENGINEERING_PROJECT

    handle: StackHandle = stack_factory("sqlite")
    with handle.active():
        prefect = Prefect(handle)
        form = project_form(f"FZ-{stamp()}")
        path = data.draw(st.sampled_from(text_paths(form)), label="field")
        response = prefect.create_run(ENGINEERING_PROJECT, {"project": replaced(form, path, data.draw(TEXT))})
        assert_refused_or_started(response)
        if response.status_code == 201:
            state = prefect.settled(str(response.json()["id"]))
            assert state["type"] in {"PAUSED", "FAILED"}, state  # at its first gate, or refused
            if state["type"] == "FAILED":
                assert state["message"], state
        assert_up(handle, prefect)


@SETTINGS
@given(data=st.data())
def test_generated_upgrade_plans_through_prefects_api(stack_factory: Any, data: st.DataObject) -> None:
    from deployments import VERSION_UPGRADE

    handle: StackHandle = stack_factory("sqlite")
    with handle.active():
        prefect = Prefect(handle)
        mark = stamp()
        form = plan_form(f"UPG-FZ-{mark}", mark)
        path = data.draw(st.sampled_from(text_paths(form)), label="field")
        response = prefect.create_run(VERSION_UPGRADE, {"plan": replaced(form, path, data.draw(TEXT))})
        assert_refused_or_started(response)
        if response.status_code == 201:
            state = prefect.settled(str(response.json()["id"]))
            assert state["type"] in {"COMPLETED", "FAILED"}, state  # booked, or refused with why
            if state["type"] == "FAILED":
                assert state["message"], state
        assert_up(handle, prefect)


def pm_token(handle: StackHandle) -> str:
    from siteflow.db import session_scope
    from siteflow.identity.api_tokens import issue_token
    from siteflow.identity.users import list_users
    from tests.cli_user import staff

    staff(PM_NAME, PM_EMAIL)
    user = next(u for u in list_users() if u.email == PM_EMAIL)
    with session_scope() as session:
        return issue_token(session, user.id, "input-fuzz").token.get_secret_value()


@SETTINGS
@given(data=st.data())
def test_generated_project_forms_and_decisions_through_the_web_api(
    stack_factory: Any, data: st.DataObject
) -> None:
    from siteflow.queries import list_gates

    handle: StackHandle = stack_factory("sqlite")
    with handle.active():
        prefect = Prefect(handle)
        web = httpx.Client(
            base_url=handle.settings.resolved_public_url,
            headers={"authorization": f"Bearer {pm_token(handle)}", "content-type": "application/json"},
            timeout=60,
        )
        form = project_form(f"FW-{stamp()}")
        path = data.draw(st.sampled_from(text_paths(form)), label="field")
        response = web.post("/api/projects", content=body(replaced(form, path, data.draw(TEXT))))
        assert response.status_code in (201, 403, 409, 422), response.text[:500]
        if response.status_code == 422:
            assert response.json()["problems"], response.text[:500]
        gates = [g for g in list_gates(None) if g.status == "open"]
        if gates:  # a decision with a generated decision value and comment: refused or recorded
            decision = {
                "decision": data.draw(TEXT, label="decision"),
                "comment": data.draw(TEXT, label="comment"),
            }
            answered = web.post(f"/api/gates/{gates[0].id}/decisions", content=body(decision))
            assert answered.status_code < 500, answered.text[:500]
        assert_up(handle, prefect)
