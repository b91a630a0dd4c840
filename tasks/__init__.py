"""Prefect tasks: one side effect each, idempotent by a natural key in siteflow's tables.

Flows re-run from the top when a suspended run resumes (docs/architecture.md on suspend), so every
task here first looks for what it would create and returns that instead of creating twice.
"""

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from prefect import Task, task
from prefect.cache_policies import NO_CACHE

P = ParamSpec("P")
R = TypeVar("R")


def side_effect(name: str) -> Callable[[Callable[P, R]], Task[P, R]]:
    """Task decorator for siteflow: never served from Prefect's cache — a cached `read-gate`
    would hand the flow a stale answer — because idempotency lives in our own tables."""

    return task(name=name, cache_policy=NO_CACHE, persist_result=False)
