"""The typed gate form (siteflow.web.gate_form) for every gate data model, without a server.

Every model the gates use renders (choices, dates, numbers, rows) and reads back; a time is
typed in the site's zone; an unreadable number is a field error, never a guess.
"""

from __future__ import annotations

import pytest
import yaml

from models.gate_data import GATE_DATA_MODELS
from models.project_input import ProjectIn
from siteflow.web import gate_form
from siteflow.web.pages import env
from tests.test_project_form import EXAMPLE

PROJECT = ProjectIn.model_validate(yaml.safe_load(EXAMPLE.read_text(encoding="utf-8")))


def render(model: str, values: dict[str, str]) -> str:
    fields = gate_form.fields(model, PROJECT, values, {})
    template = env().from_string(
        '{% from "_gate_fields.html.j2" import data_fields %}{{ data_fields(f, none) }}'
    )
    return template.render(f=fields)


@pytest.mark.parametrize("model", sorted(GATE_DATA_MODELS))
def test_every_gate_model_renders_its_fields(model: str) -> None:
    html = render(model, gate_form.initial_values(model, PROJECT))
    for name in GATE_DATA_MODELS[model].model_fields:
        assert f'name="data.{name}' in html, name
    assert "<script" not in html  # the pages' CSP allows none


def test_a_time_is_typed_in_the_sites_zone() -> None:
    parsed = gate_form.parse("CutoverIn", PROJECT, {"data.cutover_at": "2026-11-20T02:00"})
    assert parsed.errors == {} and parsed.data == {"cutover_at": "2026-11-20T02:00:00+08:00"}
    assert 'type="datetime-local"' in render("CutoverIn", {})


def test_unreadable_numbers_are_field_errors_and_blank_rows_are_dropped() -> None:
    values = {
        "data.expected_boxes": "12",
        "data.counted_boxes": "eleven",
        "data.box1_opened": "on",
        "data.missing_items.__rows": "2",
        "data.missing_items.0.item_code": "DC-PDU-63A",
        "data.missing_items.0.quantity": "1.5",
    }
    parsed = gate_form.parse("InspectionIn", PROJECT, values)
    assert parsed.errors == {
        "data.counted_boxes": gate_form.MESSAGES["bad_number"],
        "data.missing_items.0.quantity": gate_form.MESSAGES["bad_whole"],
    }
    ok = gate_form.parse(
        "InspectionIn", PROJECT, values | {"data.counted_boxes": "11", "data.missing_items.0.quantity": "1"}
    )
    assert ok.errors == {} and ok.data["missing_items"] == [{"item_code": "DC-PDU-63A", "quantity": 1}]
    assert ok.data["damaged_items"] == [] and ok.data["box1_opened"] is True
    assert gate_form.parse("InspectionIn", PROJECT, {}).empty


def test_field_errors_point_at_the_field() -> None:
    errors = gate_form.field_errors(
        "MeetingIn", PROJECT, {"held_on": "2026-12-03", "attendees": []}, "submit"
    )
    assert set(errors) == {"data.attendees", "data.scope", "data.division_of_work"}
    assert errors["data.scope"] == gate_form.MESSAGES["missing"]


def test_labels_are_plain_and_bilingual() -> None:
    """Labels come from siteflow's own words per model field (the same field name means
    different things in different models), never Python's names."""
    html = render("SurveyDataIn", gate_form.initial_values("SurveyDataIn", PROJECT))
    assert "线缆名称 / Cable run" in html and "实测长度（米）/ Measured length (m)" in html
    assert "Measured Length M" not in html and "CableRunIn" not in html
    config = render("CommissioningPlanIn", gate_form.initial_values("CommissioningPlanIn", PROJECT))
    assert "参数 / Parameter" in config
