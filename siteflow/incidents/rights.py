"""Who may dispute an outage's attribution and raise or close problem reports. No I/O.

- **Dispute** (INC-7): the incident's owner, who speaks to the customer (INC-9: first-receiver
  ownership) and records their word or our own doubt, or the office (office, admin roles), who
  follow incidents to closure. The customer decides the dispute at their own gate, by the link
  mailed to them; nobody else does.
- **Raise a problem report** (INC-8, TL 9000: a root-cause fix tracked apart from the incident):
  the incident's owner, who knows what was found, or the office.
- **Close a problem report**: the office, which receives and tracks them, or whoever raised it.

Each refusal starts with its rule id and says who may, so the person knows whom to ask.
"""

from __future__ import annotations

from collections.abc import Iterable

from siteflow.identity.roles import StaffRole
from siteflow.incidents.refusals import IncidentRefused

OFFICE = frozenset({StaffRole.OFFICE, StaffRole.ADMIN})


def _office(roles: Iterable[StaffRole]) -> bool:
    return any(r in OFFICE for r in roles)


def check_may_dispute(*, key: str, email: str, roles: Iterable[StaffRole], owner_email: str) -> None:
    if email.lower() != owner_email.lower() and not _office(roles):
        raise IncidentRefused(
            "INC-7",
            f"only {key}'s owner ({owner_email}) or the office (office, admin roles) may dispute an "
            "outage's attribution; ask them to",
        )


def check_may_raise_problem(*, key: str, email: str, roles: Iterable[StaffRole], owner_email: str) -> None:
    if email.lower() != owner_email.lower() and not _office(roles):
        raise IncidentRefused(
            "INC-8",
            f"only {key}'s owner ({owner_email}) or the office (office, admin roles) may raise a "
            "problem report for it; ask them to",
        )


def check_may_close_problem(
    *, report_id: str, email: str, roles: Iterable[StaffRole], raiser_email: str | None
) -> None:
    if (raiser_email is None or email.lower() != raiser_email.lower()) and not _office(roles):
        raise IncidentRefused(
            "INC-8",
            f"only the office (office, admin roles) or whoever raised problem report {report_id}"
            + (f" ({raiser_email})" if raiser_email else "")
            + " may close it; ask them to",
        )
