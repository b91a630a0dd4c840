"""The incident run's clocks in the Prefect UI: a markdown artifact, published again on every
event (INC-4). A keyed artifact keeps its history, so the run's *Artifacts* tab shows the
latest table and every earlier one. Called by the flow's tasks and by the web API after it
records a field event — the run is suspended then, so no task of its own could do it — and by
the gate keeper's pass while no event comes (:class:`ClocksRefresh`), so elapsed and remaining
do not go stale."""

from __future__ import annotations

import logging
import zlib
from datetime import UTC, datetime, timedelta
from uuid import UUID

from siteflow.db import read_scope
from siteflow.incidents.clocks import ClockState, IncidentClocks
from siteflow.incidents.views import clocks_markdown, incident_view

log = logging.getLogger(__name__)


def artifact_key(key: str) -> str:
    """Artifact keys are lower-case letters, digits and dashes (docs/architecture.md)."""
    return f"incident-clocks-{key.lower()}"


def publish_clocks(key: str) -> bool:
    """Publish the clocks of `key` on its run; False when it has no run yet (or Prefect is away:
    the table is a view, the next event or the flow publishes it again)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import ArtifactCreate

    with read_scope() as session:
        view = incident_view(session, key=key, now=datetime.now(UTC))
    if view.flow_run_id is None:
        return False
    try:
        with get_client(sync_client=True) as client:
            client.create_artifact(
                ArtifactCreate(
                    key=artifact_key(key),
                    type="markdown",
                    data=clocks_markdown(view),
                    description=f"SLA clocks of {key} (INC-4)",
                    flow_run_id=UUID(view.flow_run_id),
                )
            )
    except Exception as exc:  # a view: never let Prefect trouble refuse a recorded event
        log.warning("could not publish the clocks of %s: %s", key, exc)
        return False
    return True


class ClocksRefresh:
    """When the keeper publishes an open incident's clocks again without an event (INC-4).

    Due when a running clock crossed a mark (50 %, 75 %, breach) since this keeper last
    published it, or when ``every`` has passed with a clock running; never for an incident
    whose clocks are all stopped, paused or not started (nothing on its table moves). The
    keeper already computes every open incident's clocks for its notices, so deciding costs
    nothing more; only the due ones are published (one Prefect call each). An incident seen
    for the first time — the keeper just started — is placed at a point of the interval fixed
    by its key, so a restart spreads the refreshes of many incidents over one interval instead
    of publishing them all at once. Kept in the keeper's memory: several keepers each refresh
    (a view; harmless), and events publish on their own anyway.
    """

    def __init__(self, every: timedelta) -> None:
        self.every = every
        self._last: dict[str, tuple[datetime, int]] = {}
        self._seen: dict[str, datetime] = {}

    @staticmethod
    def _marks(clocks: IncidentClocks) -> int:
        return sum(m.reached for r in clocks.readings for m in r.marks)

    def due(self, key: str, clocks: IncidentClocks, now: datetime) -> bool:
        self._seen[key] = now
        marks = self._marks(clocks)
        last = self._last.get(key)
        if last is None:
            share = (zlib.crc32(key.encode()) % 1000) / 1000
            last = (now - self.every * share, marks)
            self._last[key] = last
        published_at, marks_then = last
        if marks > marks_then:
            return True
        running = any(r.state is ClockState.RUNNING for r in clocks.readings)
        return running and now - published_at >= self.every

    def next_due(self, key: str, clocks: IncidentClocks, now: datetime, *, stale: bool) -> datetime:
        """When a refresh falls due next while a clock runs (the keeper looks at the incident
        then; a mark crossed is one of its notice times already); far off when none runs."""
        if not any(r.state is ClockState.RUNNING for r in clocks.readings):
            return now + timedelta(days=3650)
        published_at = now if stale else self._last.get(key, (now, 0))[0]
        return max(published_at + self.every, now + timedelta(seconds=1))

    def published(self, key: str, clocks: IncidentClocks, now: datetime) -> None:
        self._last[key] = (now, self._marks(clocks))

    def forget_unseen(self, now: datetime, after: timedelta) -> None:
        """Drop incidents not looked at for ``after``: the keeper looks at every open incident
        at least once in its safety-net interval, so one unseen for longer is closed — found
        without reading every open incident's key on each pass."""
        for key, seen in list(self._seen.items()):
            if now - seen > after:
                del self._seen[key]
                self._last.pop(key, None)
