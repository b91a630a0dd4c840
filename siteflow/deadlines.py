"""The deadline enforcer: at a gate's deadline, its default decision as `system:deadline`.

UPG-10: rollback goes ahead at the deadline when nobody decided. docs/architecture.md: never a pause
timeout (that marks the run Failed); the default goes through the one decision path, so it
is recorded, audited and resumes the run like any other decision. It fires late rather than
early (a deadline is only acted on once the clock has passed it), and never twice: the
decision slot is unique, so several keepers racing on one gate record one decision.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import func, select

from models.gate import Gate, GateStatus
from siteflow.clock import Clock, utc_now
from siteflow.db import session_scope
from siteflow.decisions import DecisionResult, apply_deadline_defaults
from siteflow.settings import get_settings

log = logging.getLogger(__name__)


BATCH = 250  # gates per transaction: large enough for a night's elements in a few writes,
# small enough that several keepers share a big night instead of one holding it all


def _grace() -> timedelta:
    return timedelta(seconds=get_settings().deadline_grace_seconds)


def enforce_deadlines(clock: Clock = utc_now, grace: timedelta | None = None) -> list[DecisionResult]:
    """Record the default of every open gate whose deadline has passed; returns what was recorded.

    The default waits `grace` past the deadline (SITEFLOW_DEADLINE_GRACE_SECONDS): a person's
    decision stamped before the deadline but still on its way wins, and one stamped after it is
    refused by the decision path itself (:func:`siteflow.decisions.gate_has_passed`).
    """
    grace = _grace() if grace is None else grace
    now = clock()
    with session_scope() as session:
        due = list(
            session.execute(
                select(Gate.id).where(
                    Gate.status == GateStatus.OPEN.value,
                    Gate.default_decision.is_not(None),
                    Gate.deadline.is_not(None),
                    Gate.deadline <= now - grace,
                )
            ).scalars()
        )
    random.shuffle(due)  # several keepers then mostly take different gates instead of queueing on one
    decided: list[DecisionResult] = []
    for first in range(0, len(due), BATCH):
        results = apply_deadline_defaults(due[first : first + BATCH], clock())
        for result in results:
            log.warning(
                "deadline of gate %s (%s) passed: %s", result.gate_key, result.subject, result.message
            )
        decided += results
    return decided


def seconds_to_next_deadline(clock: Clock = utc_now, grace: timedelta | None = None) -> float | None:
    with session_scope() as session:
        nearest = session.execute(
            select(func.min(Gate.deadline)).where(
                Gate.status == GateStatus.OPEN.value, Gate.default_decision.is_not(None)
            )
        ).scalar_one_or_none()
    if nearest is None:
        return None
    return (nearest + (_grace() if grace is None else grace) - clock()).total_seconds()


def run_forever(
    stop: threading.Event, poll_seconds: float, resume: Callable[[str], object] | None = None
) -> None:
    """Wake at the next deadline (or every poll, to see new gates) and enforce what is due;
    `resume` is called with each run whose gate was decided here (the gate keeper resumes it)."""
    while not stop.is_set():
        try:
            decided = enforce_deadlines()
            wait = seconds_to_next_deadline()
        except Exception as exc:  # a passing database outage must not stop the enforcer
            log.warning("deadline pass failed: %s", exc)
            decided, wait = [], None
        if resume is not None:
            for run_id in sorted({r.flow_run_id for r in decided if r.flow_run_id}):
                try:
                    resume(run_id)
                except Exception as exc:  # the keeper's resume pass tries again
                    log.warning("could not resume run %s after its deadline: %s", run_id, exc)
        pause = poll_seconds if wait is None else min(poll_seconds, max(0.0, wait) + 0.001)
        stop.wait(pause)
