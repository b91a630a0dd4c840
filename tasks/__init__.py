"""Prefect tasks: one side effect each, idempotent by a natural key in siteflow's tables.

Flows re-run from the top when a suspended run resumes (DESIGN.md on suspend), so every
task here first looks for what it would create and returns that instead of creating twice.
"""

from functools import partial

from prefect import task
from prefect.cache_policies import NO_CACHE

side_effect = partial(task, cache_policy=NO_CACHE, persist_result=False)
"""Task decorator for siteflow: never served from Prefect's cache — a cached `read-gate`
would hand the flow a stale answer — because idempotency lives in our own tables."""
