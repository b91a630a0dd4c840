"""ENG-22: who hears of a problem met on site, decided from the milestone report. Pure.

A problem the engineer could not solve on site goes to remote support (远程技术支持); a
suspected product-quality problem goes to the office's product manager and the PM, solved or
not. The flow queues one notice per escalation (the outbox, with its `notice.queued` audit
record); this module says which, so the rule is checked without a running flow.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from models.gate_data import SiteProblemIn
from models.project_input import Role


class Escalation(BaseModel):
    """One notice to send: its dedup key (stable across replays), the roles told, its words."""

    model_config = ConfigDict(frozen=True)

    key: str
    roles: tuple[Role, ...]
    title: str
    text: str


def escalations(code: str, milestone: str, label: str, problems: list[SiteProblemIn]) -> list[Escalation]:
    found: list[Escalation] = []
    for n, problem in enumerate(problems, 1):
        where = f"{label} — {problem.description}"
        if not problem.solved_on_site:
            found.append(
                Escalation(
                    key=f"remote-support-{milestone}-{n}",
                    roles=(Role.REMOTE_SUPPORT,),
                    title=f"[{code}] 远程技术支持请求 / Remote support needed (ENG-22)",
                    text="现场无法解决的问题 / A problem the engineer could not solve on site:\n\n" + where,
                )
            )
        if problem.suspected_product_quality:
            found.append(
                Escalation(
                    key=f"product-quality-{milestone}-{n}",
                    roles=(Role.PRODUCT_MANAGER, Role.PM),
                    title=f"[{code}] 疑似产品质量问题 / Suspected product-quality problem (ENG-22)",
                    text="疑似产品质量问题 / Suspected product-quality problem:\n\n"
                    + where
                    + (f"\n\n现场处理 / Handled on site: {problem.solution}" if problem.solution else ""),
                )
            )
    return found
