"""The deadline enforcer: at a gate's deadline, its default decision as `system:deadline`.

UPG-10: rollback goes ahead at the deadline when nobody decided. DESIGN.md: never a pause
timeout (that marks the run Failed); the default goes through the one decision path, so it
is recorded, audited and resumes the run like any other decision. It fires late rather than
early (a deadline is only acted on once the clock has passed it), and never twice: the
decision slot is unique, so several keepers racing on one gate record one decision.
"""

from __future__ import annotations

import logging
import random
import threading

from sqlalchemy import func, select

from models.gate import Gate, GateStatus
from models.gate_spec import Door
from siteflow.clock import Clock, utc_now
from siteflow.db import session_scope
from siteflow.decisions import (
    DEADLINE_ACTOR,
    DEADLINE_SIGNER_EMAIL,
    DecisionRefused,
    DecisionRequest,
    Signer,
    decide,
)

log = logging.getLogger(__name__)


def enforce_deadlines(clock: Clock = utc_now) -> list[str]:
    """Decide every open gate whose deadline has passed; returns the gates decided here."""
    now = clock()
    with session_scope() as session:
        due = [
            (str(r.id), str(r.default_decision))
            for r in session.execute(
                select(Gate.id, Gate.default_decision)
                .where(
                    Gate.status == GateStatus.OPEN.value,
                    Gate.default_decision.is_not(None),
                    Gate.deadline.is_not(None),
                    Gate.deadline <= now,
                )
                .order_by(Gate.deadline)
            )
        ]
    random.shuffle(due)  # several keepers then mostly take different gates instead of queueing on one
    decided: list[str] = []
    for gate_id, default in due:
        try:
            result = decide(
                DecisionRequest(
                    gate_id=gate_id,
                    decision=default,
                    signer=Signer(DEADLINE_ACTOR, DEADLINE_SIGNER_EMAIL),
                    door=Door.SYSTEM,
                    comment="no decision by the deadline: the safe default (UPG-10)",
                    source_ref=f"system:deadline:{gate_id}",
                    at=clock(),
                )
            )
        except DecisionRefused as refused:  # a person (or another keeper) decided first
            log.info("deadline of gate %s: %s", gate_id, refused.reason)
            continue
        if result.replayed:  # another keeper recorded this very default first
            continue
        decided.append(gate_id)
        log.warning("deadline of gate %s passed: %s", gate_id, result.message)
    return decided


def seconds_to_next_deadline(clock: Clock = utc_now) -> float | None:
    with session_scope() as session:
        nearest = session.execute(
            select(func.min(Gate.deadline)).where(
                Gate.status == GateStatus.OPEN.value, Gate.default_decision.is_not(None)
            )
        ).scalar_one_or_none()
    if nearest is None:
        return None
    return (nearest - clock()).total_seconds()


def run_forever(stop: threading.Event, poll_seconds: float) -> None:
    """Wake at the next deadline (or every poll, to see new gates) and enforce what is due."""
    while not stop.is_set():
        try:
            enforce_deadlines()
            wait = seconds_to_next_deadline()
        except Exception as exc:  # a passing database outage must not stop the enforcer
            log.warning("deadline pass failed: %s", exc)
            wait = None
        pause = poll_seconds if wait is None else min(poll_seconds, max(0.0, wait) + 0.001)
        stop.wait(pause)
