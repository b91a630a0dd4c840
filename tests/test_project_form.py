"""The engineering-project form refuses a bad form before any work starts (docs/process.md §1).

Pure validation of :class:`models.project_input.ProjectIn`; no database needed.
"""

from __future__ import annotations

import copy
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from models.project_input import ProjectIn, ProjectSize, Role

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "project.yaml"


def good_form() -> dict[str, Any]:
    return {
        "code": "SF-2026-001",
        "customer": "广东移动 Guangdong Mobile",
        "size": "small",
        "timezone": "Asia/Shanghai",
        "planned_start": "2026-12-01",
        "planned_end": "2027-01-31",
        "sites": [
            {"site_id": "GZ-TH-01", "name": "Tianhe", "address": "385 Tianhe Rd"},
            {"site_id": "GZ-PY-02", "name": "Panyu", "address": "12 Shiqiao St"},
        ],
        "contract_items": [
            {"item_code": "OSN-9800", "description": "Chassis", "quantity": 2},
            {"item_code": "TN54", "description": "Line board", "quantity": 8, "site_id": "GZ-TH-01"},
        ],
        "contacts": [
            {"name": "Chen Jing", "email": "chen.jing@customer.example", "role": "customer"},
            {"name": "Li Na", "email": "li.na@siteflow.example", "role": "pm"},
            {"name": "Wang Qiang", "email": "wang.qiang@siteflow.example", "role": "supervisor"},
        ],
    }


def refusal(form: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        ProjectIn.model_validate(form)
    return str(info.value)


def test_good_form_is_accepted() -> None:
    form = ProjectIn.model_validate(good_form())
    assert form.code == "SF-2026-001"
    assert form.size is ProjectSize.SMALL
    assert [s.site_id for s in form.sites] == ["GZ-TH-01", "GZ-PY-02"]
    assert form.observation_days == 2  # ENG-30 default
    assert form.planned_start == date(2026, 12, 1)


def test_example_project_yaml_is_accepted() -> None:
    """The shipped example is a valid form (the README and the demo start it)."""
    raw = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    form = ProjectIn.model_validate(raw)
    assert form.code == "GD-2026-017"
    assert form.size is ProjectSize.MEDIUM
    assert {s.site_id for s in form.sites} == {"GZ-TH-01", "GZ-PY-02"}
    assert form.contacts_with(Role.CUSTOMER) and form.contacts_with(Role.PM)
    assert form.contact("CHEN.JING@gd-mobile.example") is not None  # lookup ignores case


def test_no_sites_refused() -> None:
    form = good_form()
    form["sites"] = []
    assert "sites" in refusal(form)


def test_duplicate_site_ids_refused() -> None:
    form = good_form()
    form["sites"].append({"site_id": "GZ-TH-01", "name": "again", "address": "elsewhere"})
    assert "duplicate site ids: GZ-TH-01" in refusal(form)


def test_bad_site_id_refused() -> None:
    form = good_form()
    form["sites"][0]["site_id"] = "bad site id!"
    assert "site_id" in refusal(form)


def test_unknown_role_refused() -> None:
    form = good_form()
    form["contacts"].append({"name": "X", "email": "x@siteflow.example", "role": "boss"})
    message = refusal(form)
    assert "role" in message and "boss" in message


def test_planned_end_before_start_refused() -> None:
    form = good_form()
    form["planned_start"], form["planned_end"] = "2027-02-01", "2027-01-31"
    assert "planned_end 2027-01-31 is before planned_start 2027-02-01" in refusal(form)


def test_unknown_time_zone_refused() -> None:
    form = good_form()
    form["timezone"] = "Asia/Atlantis"
    assert "unknown time zone 'Asia/Atlantis'" in refusal(form)


@pytest.mark.parametrize("missing", ["customer", "pm"])
def test_missing_customer_or_pm_contact_refused(missing: str) -> None:
    form = good_form()
    form["contacts"] = [c for c in form["contacts"] if c["role"] != missing]
    form["contacts"].append({"name": "Zhang Wei", "email": "zhang.wei@siteflow.example", "role": "engineer"})
    assert f"contacts need at least one '{missing}'" in refusal(form)


def test_one_contact_with_two_roles_refused() -> None:
    """A person has one role; the same email twice would let one person sign both sides (ENG-10)."""
    form = good_form()
    again = {"name": "Chen Jing", "email": "Chen.Jing@customer.example", "role": "supervisor"}
    form["contacts"].append(again)
    assert "a contact may have one role only; repeated: chen.jing@customer.example" in refusal(form)


def test_bad_email_refused() -> None:
    form = good_form()
    form["contacts"][0]["email"] = "chen.jing at customer"
    assert "is not an email address" in refusal(form)


def test_contract_item_naming_unknown_site_refused() -> None:
    form = good_form()
    form["contract_items"][1]["site_id"] = "SZ-NS-09"
    assert "contract item TN54 names unknown site SZ-NS-09" in refusal(form)


def test_no_contract_items_refused() -> None:
    form = good_form()
    form["contract_items"] = []
    assert "contract_items" in refusal(form)


@pytest.mark.parametrize("code", ["gd-2026-017", "GD 2026", "X", "-GD-2026", "GD_2026_017", "A" * 40, ""])
def test_bad_project_code_refused(code: str) -> None:
    form = good_form()
    form["code"] = code
    assert "code" in refusal(form)


@pytest.mark.parametrize("days", [0, 4])
def test_observation_days_outside_one_to_three_refused(days: int) -> None:
    """ENG-30: the crew observes for 1 to 3 days after cutover."""
    form = good_form()
    form["observation_days"] = days
    assert "observation_days" in refusal(form)


def test_unknown_field_refused() -> None:
    form = copy.deepcopy(good_form())
    form["budget"] = 1_000_000  # COM-5: prices are not the crew's business, and not a form field
    assert "budget" in refusal(form)
