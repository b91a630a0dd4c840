"""The Prefect UI door, in the real Prefect UI in a real browser (Debian's chromium).

Prefect's open-source UI cannot say who pressed Resume (docs/architecture.md "Identity"), so a gate's form
takes no signature: it links to the gate's page in siteflow's workspace, and an answer given in
the form anyway — or sent through Prefect's API naming someone — is refused and recorded (door
`prefect-ui`), logged as a WARNING, and the form opens again with the reason at its top. A
decision through a proven door resumes the run as before.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import yaml
from playwright.sync_api import Page, sync_playwright

from models.project_input import ProjectIn, Role
from tests.test_engineering_e2e import ROOT, ui_resume, wait_for_open_gate
from tests.test_upgrade_e2e import wait_for

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
pytestmark = pytest.mark.e2e


def ui_form(prefix: str) -> ProjectIn:
    raw = yaml.safe_load((ROOT / "examples" / "project.yaml").read_text(encoding="utf-8"))
    raw["code"] = f"{prefix}-{int(time.time() * 10) % 10_000_000}"
    return ProjectIn.model_validate(raw)


def sign_in_to_prefect_ui(page: Page, ui_url: str, home: Path) -> None:
    """As the README says: paste the line of SITEFLOW_HOME/prefect-api-auth into the UI's
    login page (Prefect's API answers 401 without it, issue #10)."""
    page.goto(ui_url)
    box = page.get_by_placeholder("admin:pass")
    box.fill((home / "prefect-api-auth").read_text(encoding="ascii").strip())
    page.get_by_role("button", name="Login").click()
    page.wait_for_url(lambda url: "login" not in url)


def open_resume_dialog(page: Page, ui_url: str, run_id: str) -> Any:
    page.goto(f"{ui_url}/runs/flow-run/{run_id}", wait_until="networkidle")
    page.get_by_role("button", name="Resume").first.click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    dialog.locator(".schema-form-property").first.wait_for()
    return dialog


def description_of(dialog: Any) -> str:
    """The text of the form's description: the dialog's text after its heading."""
    text = str(dialog.inner_text()).strip()
    heading = "Resume"
    first, _, rest = text.partition("\n")
    return rest.strip() if heading in first else text


def pick(page: Page, dialog: Any, label: str, value: str) -> None:
    control = (
        dialog.locator(".schema-form-property")
        .filter(has=page.locator(".schema-form-property__label", has_text=label))
        .first.locator(".p-select-button__control")
    )
    for _ in range(3):  # the custom select opens on the keyboard; make sure the choice took
        control.focus()
        page.keyboard.press("ArrowDown")
        page.get_by_role("option", name=value, exact=True).click()
        if control.inner_text().strip() == value:
            break
    assert control.inner_text().strip() == value


def submit(page: Page, dialog: Any) -> None:
    """Press Submit as a person would: again if Prefect's own server failed the resume (its
    "Something went wrong" toast; seen with its SQLite database locked on a loaded machine) —
    the run is then still paused at the same pause, so nothing was sent twice."""
    for _ in range(3):
        dialog.get_by_role("button", name="Submit").click()
        try:
            dialog.wait_for(state="hidden", timeout=30_000)
            return
        except Exception:
            if not page.get_by_text("Something went wrong").first.is_visible():
                break
    page.screenshot(path="/tmp/siteflow-ui-submit.png", full_page=True)
    raise AssertionError(f"the Resume dialog stayed open: {dialog.inner_text()[-1500:]}")


def pause_key(run_id: str) -> str:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(UUID(run_id)).state
    assert state is not None and state.is_paused()
    return str(state.state_details.pause_key)


def wait_paused_at(run_id: str, key: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pause_key(run_id) == key:
                return
        except AssertionError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not pause at {key}")


def attempts(code: str, gate_key: str) -> list[dict[str, Any]]:
    from siteflow import audit_report

    gate = next(g for g in audit_report.build(code, with_prefect=False)["gates"] if g["key"] == gate_key)
    return list(gate["attempts"])


def warnings_of(run_id: str) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId, LogFilterLevel

    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            log_filter=LogFilter(
                flow_run_id=LogFilterFlowRunId(any_=[UUID(run_id)]), level=LogFilterLevel(ge_=30)
            )
        )
    return [log.message for log in logs]


def test_an_answer_in_the_prefect_ui_is_refused_and_shown_there(stack_factory: Any) -> None:
    from siteflow.decisions import Signer, decide
    from siteflow.launch import start_project
    from siteflow.links import gate_page
    from siteflow.stand_in_signers import proven

    handle = stack_factory("sqlite", "ui")  # a fresh server, not the one the e2e test restarts
    form = ui_form("UI")
    ui_url = handle.settings.resolved_prefect_api_url.removesuffix("/api")
    customer = form.contacts_with(Role.CUSTOMER)[0]
    with handle.active():
        run_id = start_project(form)
        gate = wait_for_open_gate(form.code, "survey-readiness-r1")
        wait_paused_at(run_id, "survey-readiness-r1-0")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                sign_in_to_prefect_ui(page, ui_url, handle.settings.home)
                dialog = open_resume_dialog(page, ui_url, run_id)
                shown = description_of(dialog)
                assert shown.startswith("Decide this gate in siteflow's workspace"), shown[:300]
                link = dialog.get_by_role("link", name="Decide this gate in siteflow's workspace")
                assert link.get_attribute("href") == gate_page(gate.id)
                assert "ENG-1" in shown and "Can the site be surveyed?" in shown
                assert "Signer" not in dialog.inner_text()  # the form asks for no signature
                pick(page, dialog, "Decision", "ready")
                submit(page, dialog)

                # Refused: recorded, the gate still open, the run paused again, told in the UI.
                refused = wait_for("the refusal", lambda: attempts(form.code, "survey-readiness-r1"))
                assert [(a["accepted"], a["door"], a["decision"]) for a in refused] == [
                    (False, "prefect-ui", "ready")
                ]
                reason = refused[0]["reason"]
                assert reason.startswith("the Prefect UI cannot prove who pressed Resume")
                assert gate_page(gate.id) in reason
                wait_paused_at(run_id, "survey-readiness-r1-1")
                assert wait_for_open_gate(form.code, "survey-readiness-r1").id == gate.id
                # Prefect ships a run's logs in batches: the WARNING arrives a moment later
                wait_for("the WARNING", lambda: any(reason in w for w in warnings_of(run_id)))
                dialog = open_resume_dialog(page, ui_url, run_id)
                again = description_of(dialog)
                assert again.startswith("the Prefect UI cannot prove who pressed Resume"), again[:300]
                assert "nothing was signed" in again.split("\n")[0]
            finally:
                browser.close()

        # Prefect's API, naming the customer as signer: refused the same way.
        forged = {
            "gate": gate.id,
            "decision": "ready",
            "signer_name": customer.name,
            "signer_email": customer.email,
        }
        assert ui_resume(run_id, forged) == "ACCEPT"
        wait_paused_at(run_id, "survey-readiness-r1-2")
        tried = attempts(form.code, "survey-readiness-r1")
        assert [(a["accepted"], a["door"]) for a in tried] == [(False, "prefect-ui")] * 2
        assert tried[1]["by"] == f"{customer.name} <{customer.email}>"  # who it claimed to be
        assert tried[1]["reason"] == reason
        wait_for("the second WARNING", lambda: len([w for w in warnings_of(run_id) if reason in w]) == 2)
        assert wait_for_open_gate(form.code, "survey-readiness-r1").id == gate.id

        # A proven door decides; the resumer's answer is taken as the recorded decision.
        decide(proven(gate.id, "ready", Signer(customer.name, customer.email)))  # by their link
        assert wait_for_open_gate(form.code, "survey-coordination-meeting").rule == "ENG-2"  # went on
        final = attempts(form.code, "survey-readiness-r1")
        assert [(a["accepted"], a["door"]) for a in final] == [(False, "prefect-ui")] * 2 + [(True, "email")]


def test_runs_are_named_and_forms_speak_plainly(stack_factory: Any) -> None:
    """Run names and tags say which project a run is; the forms' schemas speak plain language
    (no "None" alternatives, no class names as titles), offer the project's own sites and
    contract items to pick from, and a one-decision gate's decision is already made."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from models.form_schema import jargon
    from siteflow.demo import answer_open_gates
    from siteflow.launch import start_project
    from siteflow.queries import list_gates

    handle = stack_factory("sqlite", "ui")
    form = ui_form("NAMES")
    with handle.active():
        run_id = start_project(form)

        def schema_at(key_prefix: str) -> dict[str, Any]:
            while True:  # answer the gates before it as the demo's people would
                if any(g.key.startswith(key_prefix) for g in list_gates(form.code)):
                    break
                answer_open_gates(form, say=lambda m: None)
                time.sleep(0.3)
            gate = wait_for_open_gate(form.code, key_prefix)
            wait_paused_at(run_id, f"{gate.key}-0")
            with get_client(sync_client=True) as client:
                state = client.read_flow_run(UUID(run_id)).state
                assert state is not None
                schema = client.read_flow_run_input(
                    flow_run_id=UUID(run_id), key=state.state_details.run_input_keyset["schema"]
                )
            value = json.loads(schema)
            assert isinstance(value, dict)
            return value

        readiness = schema_at("survey-readiness-r1")
        assert jargon(readiness) == [], jargon(readiness)
        assert "signer_name" not in readiness["properties"] and "signer_email" not in readiness["properties"]
        assert readiness["properties"]["decision"]["enum"] == ["ready", "not-ready"]
        assert readiness["properties"]["data"]["title"] == "Readiness"

        with get_client(sync_client=True) as client:
            run = client.read_flow_run(UUID(run_id))
            assert run.name == form.code
            assert {f"project:{form.code}", f"customer:{form.customer}"} <= set(run.tags)
            tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
        assert "open-gate-survey-readiness-r1" in {t.name for t in tasks}

        survey = schema_at("survey-data-r1")
        assert jargon(survey) == [], jargon(survey)
        defs = survey["definitions"]
        assert defs["SiteSurveyIn"]["properties"]["site_id"]["enum"] == [s.site_id for s in form.sites]
        assert defs["ContractDifferenceIn"]["properties"]["item_code"]["enum"] == [
            i.item_code for i in form.contract_items
        ]
        decision = survey["properties"]["decision"]  # one decision: chosen already, nothing to type
        assert decision["enum"] == ["submit"] and decision["default"] == "submit"
