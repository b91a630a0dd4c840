"""The clock deadline logic reads (docs/architecture.md: a clock object is passed in so tests drive it)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)
