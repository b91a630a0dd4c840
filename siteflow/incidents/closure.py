"""Whether an incident may close (INC-8). No I/O.

INC-8: the handler records description, cause and solution, process and summary promptly,
accurately and completely — so closing needs all five, each filled in, and an incident closes
once. :class:`models.incident_input.ClosureIn` refuses an empty or missing field;
:func:`check_closure` does the same for a partial form (the workspace's, a CLI file) and says
every missing part at once.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from models.incident_input import ClosureIn
from models.text_kinds import problems
from siteflow.incidents.refusals import IncidentRefused

CLOSURE_PARTS = ("description", "cause", "solution", "process", "summary")


def check_closure(raw: ClosureIn | dict[str, Any], *, already_closed: bool = False) -> ClosureIn:
    """The closure record, or the refusal naming every missing part (INC-8)."""
    if already_closed:
        raise IncidentRefused("INC-8", "the incident is already closed")
    if isinstance(raw, ClosureIn):
        return raw
    missing = [p for p in CLOSURE_PARTS if not str(raw.get(p) or "").strip()]
    if missing:
        raise IncidentRefused("INC-8", "closing needs " + ", ".join(missing) + ": fill in every part")
    try:
        return ClosureIn.model_validate(raw)
    except ValidationError as exc:
        raise IncidentRefused("INC-8", "; ".join(problems(exc))) from exc
