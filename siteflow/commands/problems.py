"""`siteflow incidents problem KEY …` and `siteflow problems list|close`: problem reports to the
office for a root-cause fix, tracked apart from their incident (INC-8, TL 9000), as yourself
through the web API (:mod:`siteflow.web.problems_api`).

Who may: the incident's owner or the office (office, admin roles) raise one; the office or
whoever raised it closes it. Overdue = open and past its due date. Exit 2 when refused
(nothing changed), 1 when siteflow could not be asked.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any

import typer

from siteflow.commands.incident_calls import incident_call
from siteflow.commands.terminal import console, fail, id_column, text_columns

problems_app = typer.Typer(
    help="Problem reports to the office (INC-8), as yourself: list and close.", no_args_is_help=True
)


def raise_problem(
    key: Annotated[str, typer.Argument(help="Incident key")],
    title: Annotated[str, typer.Option(help="What is to be fixed at its root")],
    office: Annotated[str, typer.Option(help="Who at the office receives it")],
    due: Annotated[str, typer.Option(help="When the fix is due, YYYY-MM-DD")],
    detail: Annotated[str, typer.Option(help="What was found, for the office")] = "",
) -> None:
    """Raise a problem report for an incident (INC-8): the incident's owner or the office."""
    try:
        due_date = date.fromisoformat(due)
    except ValueError:
        raise fail(f"--due {due!r} is not a date: give it as YYYY-MM-DD, e.g. 2026-12-31", code=2) from None
    body = {"title": title, "office": office, "due": due_date.isoformat(), "detail": detail}
    out = incident_call("POST", f"/api/incidents/{key}/problems", body)
    console.print(
        f"raised problem report {out['id']} on {key}: {out['title']} (to {out['office']}, due {out['due']})",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


@problems_app.command("list")
def problems_list(
    open_: Annotated[bool, typer.Option("--open", help="Only open reports")] = False,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only open reports past their due date")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Problem reports by due date, each with its incident, office and state (overdue marked)."""
    out: list[dict[str, Any]] = incident_call(
        "GET", f"/api/problems?open={str(open_).lower()}&overdue={str(overdue).lower()}"
    )
    if as_json:
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD)
    id_column(table, "id")
    text_columns(table, "incident", "title", "office", "due", "state")
    for p in out:
        state = "closed" if p["closed_at"] else ("OVERDUE" if p["overdue"] else "open")
        table.add_row(p["id"], p["incident_key"], p["title"], p["office"], p["due"], state)
    console.print(table)


@problems_app.command("close")
def problems_close(
    report_id: Annotated[str, typer.Argument(help="Problem report id (`problems list`)")],
) -> None:
    """Close a problem report (its root cause fixed): the office, or whoever raised it."""
    out = incident_call("POST", f"/api/problems/{report_id}/close", {})
    console.print(
        f"closed problem report {out['id']} of {out['incident_key']}", markup=False, highlight=False
    )
