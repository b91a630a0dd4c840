"""When a service of the embedded stack may be started again after it exits (issue #10, item 1).

One service exiting — a deployments process brought down by a bad run, a web process killed
by the OOM killer — used to stop every other service with it, 4–8 s later. Now the stack starts
it again, after a back-off that doubles with each restart (so a service that cannot start does
not spin on 2 shared cores), and gives up only when it keeps exiting: more than ``limit``
restarts within ``window_seconds`` means something is wrong that a restart will not fix, and
siteflow stops and says which service and where its log is.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class RestartPolicy:
    limit: int = 5
    window_seconds: float = 600.0
    first_delay: float = 1.0
    max_delay: float = 30.0
    _recent: deque[float] = field(default_factory=deque)

    def _forget_old(self, now: float) -> None:
        while self._recent and now - self._recent[0] > self.window_seconds:
            self._recent.popleft()

    def allows(self, now: float) -> bool:
        """May the service be started once more (it has not used up its restarts)?"""
        self._forget_old(now)
        return len(self._recent) < self.limit

    def delay(self, now: float) -> float:
        """How long to wait before the next start: 1, 2, 4 … seconds, at most max_delay."""
        self._forget_old(now)
        return min(self.max_delay, self.first_delay * 2.0 ** len(self._recent))

    def record(self, now: float) -> int:
        """Count a restart; returns how many there were within the window, this one included."""
        self._forget_old(now)
        self._recent.append(now)
        return len(self._recent)
