"""Plain-language form schemas: what the Prefect UI (and any form built from a model) shows.

Pydantic's JSON schema speaks Python: a field ``x: ReadinessIn | None`` becomes a choice
between "ReadinessIn" and "None" ("Property is type 'None'"), a field whose type is a model or
an enum has no title of its own, so the form labels it with the class name ("ProjectSize"),
and other titles are the field name title-cased ("Measured Length M"). Models meant for people
take their titles and schema from here instead.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ConfigDict
from pydantic.fields import ComputedFieldInfo, FieldInfo

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def field_title(name: str, info: FieldInfo | ComputedFieldInfo) -> str:
    """``agreed_date`` → "Agreed date" (sentence case, as the rest of siteflow writes)."""
    words = name.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def model_title(cls: type) -> str:
    """``CableRunIn`` → "Cable run": the class name without its role suffix, in words."""
    name = cls.__name__.removesuffix("Form")
    name = re.sub(r"In$", "", name)
    words = _CAMEL.sub(" ", name).lower()
    return words[:1].upper() + words[1:]


def _plain(prop: dict[str, Any], name: str) -> None:
    choices = prop.get("anyOf")
    if isinstance(choices, list):
        kept = [c for c in choices if not (isinstance(c, dict) and c.get("type") == "null")]
        if len(kept) < len(choices):  # optional: an empty field, not a second type to pick
            if len(kept) == 1 and isinstance(kept[0], dict):
                prop.pop("anyOf")
                for key, value in kept[0].items():
                    prop.setdefault(key, value)
            else:
                prop["anyOf"] = kept
            if "default" in prop and prop["default"] is None:
                prop.pop("default")
    if "title" not in prop:  # a model or enum field: named after the field, not the class
        words = name.replace("_", " ")
        prop["title"] = words[:1].upper() + words[1:]


def plain_schema(schema: dict[str, Any]) -> None:
    """``json_schema_extra`` hook: no "None" alternatives, a title on every property."""
    for name, prop in (schema.get("properties") or {}).items():
        if isinstance(prop, dict):
            _plain(prop, name)


FORM_CONFIG = ConfigDict(
    field_title_generator=field_title, model_title_generator=model_title, json_schema_extra=plain_schema
)
"""Model-config entries for models people fill in as forms (``ConfigDict(**FORM_CONFIG, …)``)."""


def jargon(schema: dict[str, Any]) -> list[str]:
    """Titles and alternatives in a form schema that speak Python, not plain language (tests)."""
    found: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            title = node.get("title")
            if isinstance(title, str) and (
                re.search(r"\b(None|Optional)\b", title) or re.search(r"[a-z]In$|Form$", title)
            ):
                found.append(f"{where}: title {title!r}")
            for choice in node.get("anyOf") or []:
                if isinstance(choice, dict) and choice.get("type") == "null":
                    found.append(f"{where}: a 'None' alternative")
            for key, value in node.get("properties", {}).items():
                if isinstance(value, dict) and "title" not in value:
                    found.append(f"{where}.{key}: no title")
            for key, value in node.items():
                walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}[{i}]")

    walk(schema, "$")
    return found
