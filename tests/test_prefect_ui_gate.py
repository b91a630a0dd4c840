"""A PM answers a gate in the real Prefect UI, in a real browser (Debian's chromium).

The gate's form must show what is decided and offer the allowed decisions as a choice; the
answer goes through the one decision path and is recorded with the door `prefect-ui`.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml
from playwright.sync_api import Page, sync_playwright

from models.project_input import ProjectIn
from tests.test_engineering_e2e import ROOT, wait_for_open_gate, wait_paused

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
pytestmark = pytest.mark.e2e


def answer_in_ui(page: Page, ui_url: str, run_id: str, decision: str, name: str, email: str) -> str:
    page.goto(f"{ui_url}/runs/flow-run/{run_id}", wait_until="networkidle")
    page.get_by_role("button", name="Resume").first.click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    text = dialog.inner_text()

    def prop(label: str) -> Any:
        return (
            dialog.locator(".schema-form-property")
            .filter(has=page.locator(".schema-form-property__label", has_text=label))
            .first
        )

    control = prop("Decision").locator(".p-select-button__control")
    for _ in range(3):  # the custom select opens on the keyboard; make sure the choice took
        control.focus()
        page.keyboard.press("ArrowDown")
        page.get_by_role("option", name=decision, exact=True).click()
        if control.inner_text().strip() == decision:
            break
    assert control.inner_text().strip() == decision
    prop("Signer Name").locator("textarea, input").first.fill(name)
    prop("Signer Email").locator("textarea, input").first.fill(email)
    prop("Comment").locator("textarea, input").first.fill("answered in the Prefect UI")
    dialog.get_by_role("button", name="Submit").click()
    dialog.wait_for(state="hidden", timeout=60_000)
    return text


def test_pm_answers_a_gate_in_the_prefect_ui(stack_factory: Any) -> None:
    from siteflow import audit_report
    from siteflow.launch import start_project

    handle = stack_factory("sqlite", "ui")  # a fresh server, not the one the e2e test restarts
    raw = yaml.safe_load((ROOT / "examples" / "project.yaml").read_text(encoding="utf-8"))
    raw["code"] = f"UI-{int(time.time()) % 1000000}"
    form = ProjectIn.model_validate(raw)
    ui_url = handle.settings.resolved_prefect_api_url.removesuffix("/api")
    with handle.active():
        run_id = start_project(form)
        wait_for_open_gate(form.code, "survey-readiness-r1")
        wait_paused(run_id)
        customer = form.contacts[0]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                shown = answer_in_ui(
                    browser.new_page(), ui_url, run_id, "ready", customer.name, customer.email
                )
            finally:
                browser.close()
        assert "ENG-1" in shown and "Can the site be surveyed?" in shown and "ready, not-ready" in shown
        next_gate = wait_for_open_gate(form.code, "survey-coordination-meeting")  # the run went on
        assert next_gate.rule == "ENG-2"
        gate = next(
            g
            for g in audit_report.build(form.code, with_prefect=False)["gates"]
            if g["key"] == "survey-readiness-r1"
        )
        assert gate["outcome"] == "ready"
        assert [(s["door"], s["by"]) for s in gate["signatures"]] == [
            ("prefect-ui", f"{customer.name} <{customer.email}>")
        ]
