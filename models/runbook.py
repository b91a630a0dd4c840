"""The upgrade guide as data (UPG-1 … UPG-11): what to check, what to run, what to expect.

A runbook belongs to one element type. Commands and expected patterns may name
``{target_version}`` and ``{previous_version}``; :meth:`Runbook.expand` fills them in for
one element, so the journal records the exact command that ran.
"""

from __future__ import annotations

import re
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from models.text_kinds import Command as CommandText
from models.text_kinds import Label, Name, Pattern, StepId


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True, allow_inf_nan=False)


class Command(_Strict):
    """One command on the element and the output that means it worked."""

    id: StepId = Field(description="Stable id, used in the journal")
    title: Name
    command: CommandText
    expect: Pattern = Field(default="", description="Regular expression the output must match ('' = any)")
    est_seconds: float = Field(default=60, ge=0, description="Estimated duration, for the deadline check")

    @field_validator("expect")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"expect is not a valid regular expression: {exc}") from exc
        return value

    def matches(self, output: str) -> bool:
        return not self.expect or re.search(self.expect, output, re.MULTILINE) is not None


class Step(Command):
    """A step that changes the element. `verify` tells, by reading the element, whether the
    step's effect is present: that is how a step interrupted half-way is reconciled (UPG-5)."""

    verify: Command | None = None
    reboots: bool = Field(default=False, description="The element restarts during this step")


class Phase(_Strict):
    name: Name
    steps: list[Step] = Field(min_length=1)


class Runbook(_Strict):
    """The upgrade guide for one element type (版本升级指导书)."""

    element_model: Label
    title: Name
    required_qualification: Label = Field(
        description="What every operator must hold (UPG-2), e.g. 'NE40E-upgrade'"
    )
    compatibility: dict[Label, list[Label]] = Field(
        description="Hardware version → software versions it supports (UPG-1)", min_length=1
    )
    tools: list[Label] = Field(default_factory=list, description="Tools that must be ready (UPG-1)")
    read_version: Command = Field(description="Reads software and hardware versions (UPG-1)")
    backup: Step = Field(description="Takes the data backup; its output carries the checksum (UPG-1)")
    phases: list[Phase] = Field(min_length=1)
    tests: list[Command] = Field(min_length=1, description="Post-upgrade tests (UPG-6)")
    success_criteria: list[StepId] = Field(
        default_factory=list,
        description="Ids of the tests that must pass for success (UPG-8); empty = all of them",
    )
    rollback_steps: list[Step] = Field(min_length=1, description="The emergency procedure (UPG-9)")
    rollback_tests: list[Command] = Field(min_length=1, description="Tests after rollback (UPG-9)")

    @model_validator(mode="after")
    def _unique_ids(self) -> Self:
        ids = [s.id for s in self.all_steps()] + [t.id for t in self.tests + self.rollback_tests]
        seen: set[str] = set()
        dupes = sorted({i for i in ids if i in seen or seen.add(i)})  # type: ignore[func-returns-value]
        if dupes:
            raise ValueError(f"runbook ids must be unique; repeated: {', '.join(dupes)}")
        tests = {t.id for t in self.tests}
        unknown = [c for c in self.success_criteria if c not in tests]
        if unknown:
            raise ValueError(f"success criteria name unknown tests: {', '.join(unknown)}")
        return self

    def all_steps(self) -> list[Step]:
        return [s for p in self.phases for s in p.steps] + list(self.rollback_steps)

    def criteria(self) -> list[str]:
        return self.success_criteria or [t.id for t in self.tests]

    def supports(self, hardware: str, software: str) -> bool:
        return software in self.compatibility.get(hardware, [])

    def upgrade_seconds(self) -> float:
        """Upgrade, tests, rollback and rollback tests: the time an element must have left."""
        parts = [s.est_seconds for p in self.phases for s in p.steps]
        parts += [t.est_seconds for t in self.tests + self.rollback_tests]
        parts += [s.est_seconds for s in self.rollback_steps]
        return float(sum(parts))

    def expand(self, target_version: str, previous_version: str) -> Runbook:
        """The runbook with this element's versions filled into commands and patterns."""
        values = {"target_version": target_version, "previous_version": previous_version}

        def fill(text: str, regex: bool) -> str:
            for key, value in values.items():
                text = text.replace("{" + key + "}", re.escape(value) if regex else value)
            return text

        def walk(node: object) -> object:
            if isinstance(node, dict):
                filled = ("command", "expect")
                return {
                    k: fill(v, k == "expect") if isinstance(v, str) and k in filled else walk(v)
                    for k, v in node.items()
                }
            if isinstance(node, list):
                return [walk(v) for v in node]
            return node

        return Runbook.model_validate(walk(self.model_dump()))
