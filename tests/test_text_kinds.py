"""The kinds of text siteflow accepts (models/text_kinds.py, issue #10 item 1).

Each refusal names the field in plain words and says what to type, never a regular
expression, and never repeats the bad characters; the JSON schema Prefect enforces carries
the same limits, and Prefect's own validator (jsonschema, Python's re) agrees with ours.
"""

from __future__ import annotations

import json
import os
from datetime import UTC
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from models import gate_data
from models.gate_data import GATE_DATA_MODELS, MeetingIn
from models.project_input import ProjectIn
from models.text_kinds import Name, Note, TextKind, problems, safe_text, text_problem
from models.upgrade_plan import UpgradePlanIn, resolve_runbook
from tests.test_engineering_e2e import ROOT


def project_form(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load((ROOT / "examples" / "project.yaml").read_text(encoding="utf-8"))
    return raw | changes


def refusals(model: Any, raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(raw)
    return problems(caught.value)


def contact_with(**changes: Any) -> list[dict[str, Any]]:
    contacts: list[dict[str, Any]] = project_form()["contacts"]
    return [contacts[0] | changes, *contacts[1:]]


def test_a_chinese_project_code_gets_the_characters_to_use_not_a_regex() -> None:
    assert refusals(ProjectIn, project_form(code="广州项目")) == [
        "code: Project code: use A–Z, 0–9 and '-', 3–32 characters, starting with a letter or digit "
        "(e.g. GD-2026-017)"
    ]


def test_a_code_with_a_trailing_newline_is_refused_not_stripped() -> None:
    (line,) = refusals(ProjectIn, project_form(code="GD-2026-017\n"))
    assert line == "code: Project code must be one line: remove a line break (at character 12)"


def test_a_lone_surrogate_in_a_name_is_refused_by_name() -> None:
    (line,) = refusals(ProjectIn, project_form(customer="China \ud800 Mobile"))
    assert line == (
        "customer: Customer holds a broken character (an unpaired UTF-16 surrogate) at character 7: remove it"
    )
    line.encode("utf-8")  # the message itself can be stored, logged and sent


def test_nul_and_ansi_escapes_are_refused_without_being_repeated() -> None:
    lines = refusals(ProjectIn, project_form(customer="\x1b[2J\x1b[31mAcme", sites=[]))
    assert (
        "customer: Customer holds the control character ESC (an ANSI escape) at character 1: remove it"
        in lines
    )
    assert all("\x1b" not in line for line in lines)
    (nul,) = refusals(ProjectIn, project_form(contacts=contact_with(name="Li\x00Na")))
    assert nul == "contacts.0.name: Name holds the control character NUL at character 3: remove it"


def test_a_400_kb_phone_number_is_refused_with_its_limit() -> None:
    (line,) = refusals(ProjectIn, project_form(contacts=contact_with(phone="8" * 400_000)))
    assert line == "contacts.0.phone: Phone is too long: at most 32 characters (this has 400000)"
    (letters,) = refusals(ProjectIn, project_form(contacts=contact_with(phone="call me")))
    assert letters.startswith("contacts.0.phone: Phone: use digits, spaces and + - ( ) . /")


def test_one_line_and_multi_line_kinds() -> None:
    meeting = {"held_on": "2026-11-02", "attendees": ["Li Na"], "scope": "a\nb", "division_of_work": "x"}
    assert MeetingIn.model_validate(meeting).scope == "a\nb"
    assert MeetingIn.model_validate(meeting | {"scope": "a\r\nb\tc"}).scope == "a\nb\tc"  # a browser's CRLF
    (line,) = refusals(MeetingIn, meeting | {"attendees": ["Li\tNa"]})
    assert (
        line == "attendees.0: Attendees must be one line: remove the control character TAB (at character 3)"
    )
    (empty,) = refusals(MeetingIn, meeting | {"scope": "   "})
    assert empty == "scope: Scope is empty: fill it in"


def test_gate_data_texts_are_kinds_too() -> None:
    record = {"tested_on": "2026-11-02", "items": [{"item": "E1", "result": "ok\x07", "passed": True}]}
    (line,) = refusals(gate_data.TestRecordIn, record)
    assert line == "items.0.result: Result holds the control character U+0007 at character 3: remove it"


def test_every_text_field_of_every_form_has_a_kind() -> None:
    """No plain ``str`` left in a form people or API clients fill in: each string property of
    each deployment form and gate data model carries a maximum length and a pattern."""

    def loose(schema: dict[str, Any]) -> list[str]:
        found: list[str] = []

        def walk(node: Any, where: str) -> None:
            if isinstance(node, dict):
                plain = node.get("type") == "string" and "enum" not in node and "format" not in node
                if plain and ("maxLength" not in node or "pattern" not in node):
                    found.append(where)
                for key, value in node.items():
                    walk(value, f"{where}.{key}")
            elif isinstance(node, list):
                for i, value in enumerate(node):
                    walk(value, f"{where}[{i}]")

        walk(schema, "$")
        return found

    models: list[type[BaseModel]] = [ProjectIn, UpgradePlanIn, *GATE_DATA_MODELS.values()]
    assert {m.__name__: loose(m.model_json_schema()) for m in models} == {m.__name__: [] for m in models}


def test_the_example_plan_and_project_still_pass() -> None:
    ProjectIn.model_validate(project_form())
    raw = yaml.safe_load((ROOT / "examples" / "upgrade-plan.yaml").read_text(encoding="utf-8"))
    UpgradePlanIn.model_validate(resolve_runbook(raw, ROOT / "examples"))


def test_text_outside_a_model_and_safe_messages() -> None:
    assert text_problem(Note, "fine\nlines", "Comment") is None
    assert text_problem(Name, "x" * 201, "Name") == "Name is too long: at most 200 characters (this has 201)"
    assert safe_text("a\x1b[31m\ud800b") == "a\\x1b[31m\\ud800b"


ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)


@settings(max_examples=300, deadline=None)
@given(value=ANY_TEXT, multi_line=st.booleans())
def test_prefect_schema_and_siteflow_agree(value: str, multi_line: bool) -> None:
    """Whatever Prefect's server lets through its parameter schema, siteflow's model accepts,
    and the other way round: a form is never accepted by one and crashed into by the other."""
    kind = TextKind(40, min_length=0, multi_line=multi_line)
    schema = json.loads(json.dumps({"type": "string", "maxLength": 40, "pattern": kind.schema_pattern}))
    prefect_ok = jsonschema.Draft202012Validator(schema).is_valid(value)
    assert prefect_ok == (text_problem(Annotated_of(kind), value, "Text") is None)
    if prefect_ok:
        value.encode("utf-8")  # what Prefect stores it can serialise again


def Annotated_of(kind: TextKind) -> Any:  # noqa: N802 (reads as the type it builds)
    from typing import Annotated

    return Annotated[str, kind]


def from_schema(node: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values shaped like a form's JSON schema, every text drawn from any Unicode at all
    (surrogates, controls, long runs): what a client of the web forms or the API may send."""
    if "$ref" in node:
        return from_schema(defs[node["$ref"].split("/")[-1]], defs)
    if "anyOf" in node:
        return st.one_of(*(from_schema(choice, defs) for choice in node["anyOf"]))
    if "enum" in node:
        return st.sampled_from(node["enum"]) | ANY_TEXT
    kind = node.get("type")
    if kind == "object":
        props = node.get("properties", {})
        required = set(node.get("required", []))
        return st.fixed_dictionaries(
            {k: from_schema(v, defs) for k, v in props.items() if k in required},
            optional={k: from_schema(v, defs) for k, v in props.items() if k not in required},
        )
    if kind == "array":
        return st.lists(from_schema(node.get("items", {}), defs), max_size=3)
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return st.integers(-3, 10**6)
    if kind == "number":
        return st.floats(-10.0, 1e6, allow_nan=False)
    if node.get("format") == "date":
        return st.dates().map(str) | ANY_TEXT
    if node.get("format") == "date-time":
        return st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat())
    return st.one_of(ANY_TEXT, st.sampled_from(["\ud800", "a\x00", "\x1b[31m", "x" * 5000, "ok"]))


def gate_data_cases() -> st.SearchStrategy[tuple[str, Any]]:
    def for_model(name: str) -> st.SearchStrategy[tuple[str, Any]]:
        schema = GATE_DATA_MODELS[name].model_json_schema()
        return from_schema(schema, schema.get("$defs", {})).map(lambda data: (name, data))

    return st.sampled_from(sorted(GATE_DATA_MODELS)).flatmap(for_model)


@settings(max_examples=int(os.environ.get("SITEFLOW_GATE_DATA_EXAMPLES", "150")), deadline=None)
@given(case=gate_data_cases())
def test_generated_gate_data_is_refused_by_field_or_accepted_clean(case: tuple[str, Any]) -> None:
    """Every gate data model, as the workspace and the mailed link's page check it (the same
    models the decision path validates for the CLI and the API): refused field by field with
    messages fit to show and store, or accepted as data that can be stored and sent."""
    from siteflow.web.gate_form import field_errors

    name, data = case
    errors = field_errors(name, None, data, "submit")
    for where, message in errors.items():
        assert message, where
        (where + message).encode("utf-8")  # shown on the page, kept in the refusal record
        assert "\x1b" not in message and "\x00" not in message
    if not errors:
        stored = GATE_DATA_MODELS[name].model_validate(data).model_dump(mode="json")
        json.dumps(stored, ensure_ascii=False).encode("utf-8")  # storable, and Prefect can serialise it
