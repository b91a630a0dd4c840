"""INC-9: who owns an incident, and how it changes hands.

The first receiver owns the incident until it is closed. A handover — to the office, to
another engineer — is a request: the owner stays the owner until the person it is handed to
accepts (or declines, and the owner keeps it). Only the owner asks, only the named receiver
answers, one request waits at a time, and each accepted one counts as a reassignment. Every
step lands in the incident's audit trail in the same transaction, and the receiver is mailed
(the outbox) so the request does not sit unseen. Refusals are :class:`IncidentRefused` with
INC-9 first; nothing changes.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.incident import Incident, IncidentState
from models.incident_handover import HandoverState, IncidentHandover
from models.incident_run import IncidentRun
from models.outbox import OutboxMessage
from models.staff import StaffUser
from siteflow import audit_chain
from siteflow.incidents import records
from siteflow.incidents.refusals import IncidentRefused

RULE = "INC-9"


class Person(BaseModel):
    name: str
    email: str

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


class HandoverView(BaseModel):
    key: str
    state: HandoverState
    owner: str
    to: str
    reassignments: int


def _open_incident(session: Session, key: str) -> tuple[Incident, IncidentRun]:
    incident, run = session.get(Incident, key), session.get(IncidentRun, key)
    if incident is None or run is None:
        raise IncidentRefused(RULE, f"no incident {key!r}; `siteflow incidents list` shows them")
    if incident.state == IncidentState.CLOSED.value:
        raise IncidentRefused(RULE, f"incident {key} is closed; a closed incident has no owner to change")
    return incident, run


def pending_handover(session: Session, key: str) -> IncidentHandover | None:
    """The request that waits for its receiver's answer, if any (one at a time)."""
    return session.execute(
        select(IncidentHandover).where(
            IncidentHandover.incident_key == key, IncidentHandover.state == HandoverState.PENDING.value
        )
    ).scalar_one_or_none()


def _view(run: IncidentRun, row: IncidentHandover) -> HandoverView:
    return HandoverView(
        key=run.key,
        state=HandoverState(row.state),
        owner=f"{run.owner_name} <{run.owner_email}>",
        to=f"{row.to_name} <{row.to_email}>",
        reassignments=run.reassignments,
    )


def request_handover(
    session: Session, *, key: str, by: Person, to_email: str, note: str, now: datetime
) -> HandoverView:
    """The owner asks `to_email` (a staff account) to take the incident over."""
    incident, run = _open_incident(session, key)
    if by.email.lower() != run.owner_email.lower():
        raise IncidentRefused(
            RULE, f"only the owner, {run.owner_name} <{run.owner_email}>, hands incident {key} over"
        )
    receiver = session.execute(select(StaffUser).where(StaffUser.email == to_email.strip().lower())).scalar()
    if receiver is None or receiver.disabled_at is not None:
        raise IncidentRefused(
            RULE, f"{to_email} has no active staff account; hand over to a colleague who has one"
        )
    if receiver.email == run.owner_email.lower():
        raise IncidentRefused(RULE, f"{receiver.email} already owns incident {key}")
    waiting = pending_handover(session, key)
    if waiting is not None:
        raise IncidentRefused(
            RULE,
            f"a handover of {key} to {waiting.to_name} <{waiting.to_email}> is waiting for them to accept "
            "or decline; it must be answered first",
        )
    row = IncidentHandover(
        incident_key=key,
        from_name=by.name,
        from_email=by.email,
        to_name=receiver.name,
        to_email=receiver.email,
        note=note,
        requested_at=now,
    )
    session.add(row)
    records.look_again(incident, now)  # its chase falls due after the contract's time (INC-9)
    session.flush()
    session.add(
        OutboxMessage(
            dedup_key=f"incident-handover:{row.id}",
            subject_ref=key,
            recipient=f"{receiver.name} <{receiver.email}>",
            title=f"[{key}] 请求您接手故障 / Please take over incident {key}",
            body_text=(
                f"{receiver.name}，您好 / Dear {receiver.name},\n\n"
                f"{by} 请求您接手故障 {key} / asks you to take over incident {key}.\n"
                + (f"  {note}\n" if note else "")
                + f"\n接受 / Accept: siteflow incidents accept {key}\n"
                f"拒绝 / Decline: siteflow incidents decline {key}\n"
                "在您接受之前，负责人不变 / Until you accept, the owner stays the owner (INC-9)."
            ),
        )
    )
    audit_chain.append(
        session, key, "incident.handover-requested", by.email, {"to": receiver.email, "note": note}
    )
    return _view(run, row)


def answer_handover(session: Session, *, key: str, by: Person, accept: bool, now: datetime) -> HandoverView:
    """The receiver accepts (and owns the incident from now on) or declines (the owner keeps it)."""
    incident, run = _open_incident(session, key)
    row = pending_handover(session, key)
    if row is None:
        raise IncidentRefused(RULE, f"no handover of incident {key} is waiting for an answer")
    if by.email.lower() != row.to_email:
        raise IncidentRefused(
            RULE,
            f"the handover of {key} is to {row.to_name} <{row.to_email}>; only they accept or decline it",
        )
    row.state = (HandoverState.ACCEPTED if accept else HandoverState.DECLINED).value
    row.answered_at = now
    if accept:
        run.owner_name, run.owner_email = row.to_name, row.to_email
        incident.owner = f"{row.to_name} <{row.to_email}>"
        run.reassignments += 1
    audit_chain.append(
        session,
        key,
        "incident.handover-accepted" if accept else "incident.handover-declined",
        by.email,
        {"from": row.from_email, "to": row.to_email, "reassignments": run.reassignments},
    )
    return _view(run, row)
