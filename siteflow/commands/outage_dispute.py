"""`siteflow incidents dispute KEY OUTAGE_ID --reason …`: dispute an outage's attribution
(INC-7) as the incident's owner or the office. The incident's run opens a customer gate and
mails the caller its link; the customer's answer is final (a second dispute is refused)."""

from __future__ import annotations

from typing import Annotated

import typer

from siteflow.commands.incident_calls import incident_call
from siteflow.commands.terminal import console


def dispute_outage(
    key: Annotated[str, typer.Argument(help="Incident key")],
    outage_id: Annotated[str, typer.Argument(help="The outage's id (`incidents outage` printed it)")],
    reason: Annotated[str, typer.Option(help="What is disputed, and by whom (the customer's word or ours)")],
) -> None:
    """Dispute an outage's cause attribution (INC-7): the customer decides it at their gate, finally."""
    out = incident_call("POST", f"/api/incidents/{key}/outages/{outage_id}/dispute", {"reason": reason})
    console.print(
        f"disputed outage {out['outage_id']} of {key}: the customer is asked at gate {out['gate_key']} "
        "(their answer is final, INC-7)",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
