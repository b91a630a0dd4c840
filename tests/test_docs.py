"""The repository carries its own documentation (issue #12): the rules, the architecture, and an
index of which code and tests cite each rule that cannot drift from the code.
"""

from __future__ import annotations

import re

from tests.rules_index import CODE_DIRS, INDEX, ROOT, cited, render, rules

OUTSIDE = re.compile(r"\.\./shared|(?<![/\w])(?:DESIGN|PROCESS)\.md|spec/PROCESS")


def test_every_rule_of_the_rulebook_is_in_the_index_and_the_index_is_current() -> None:
    table = rules()
    assert len(table) == 60 and {r.split("-")[0] for r in table} == {"ENG", "UPG", "INC", "COM"}
    assert INDEX.read_text(encoding="utf-8") == render(), (
        "docs/rules.md is out of date: run `python -m tests.rules_index --write`"
    )


def test_citations_read_ranges_and_never_a_longer_id() -> None:
    assert cited("UPG-8 … UPG-10") == {"UPG-8", "UPG-9", "UPG-10"}
    assert cited("INC-1 … INC-3, COM-8") == {"INC-1", "INC-2", "INC-3", "COM-8"}
    assert cited("ENG-10") == {"ENG-10"}  # not ENG-1
    assert cited("see ENG-13's arrival certificate") == {"ENG-13"}


def test_nothing_points_outside_the_repository() -> None:
    """The product must not depend on anything beside its checkout, at run time or in its docs."""
    places = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for d in (*CODE_DIRS, "tests", "benchmarks", "examples"):
        places += [p for p in (ROOT / d).rglob("*") if p.suffix in {".py", ".j2", ".yaml", ".md"}]
    offenders = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in places
        if "node_modules" not in p.parts and p.name != "test_docs.py"
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert offenders == []
