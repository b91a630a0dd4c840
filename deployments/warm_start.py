"""Start flow runs from a warm process instead of a fresh interpreter (issue #4: resume latency).

An approval resumes a suspended run, and Prefect's runner starts it again in a new interpreter
(`python -m prefect.engine` for a served deployment) that imports Prefect and our flows before
the flow can run: about two seconds on these machines, for every gate answered. Two changes
make it a fork of a warm process instead:

- the runner is told which flow object each deployment runs (`register`), so it takes its
  in-memory path, as `flow.serve()` does, and calls `run_flow_in_subprocess`. That path
  cloudpickles the flow; a registered flow goes by reference (module and name), so the run
  uses the module the forkserver imported, not a copy of the function with half its globals
  (with postponed annotations the copy could not even validate its own parameters);
- that function's *spawn* becomes a *forkserver* that imported Prefect and our flows once
  (`install`), so each run is forked from that warm state in milliseconds.

Everything else stays Prefect's own code: pickling the call, the control channel, exit codes,
and cancellation by pid. The forkserver and its runs stay in the serve process's group, so
stopping or killing siteflow stops them too. Both hooks are Prefect internals: if a Prefect
upgrade moves them, runs start cold again, which is slower but still right.
"""

from __future__ import annotations

import copyreg
import importlib
import logging
import multiprocessing
import multiprocessing.context
import multiprocessing.forkserver
from types import ModuleType
from typing import Any
from uuid import UUID

import prefect.flow_engine
from prefect import Flow
from prefect.runner import Runner

# What a run imports before it can start: Prefect's engines, every served flow, and what those
# import only on first use (found with py-spy on forked runs: about 0.15 s each otherwise).
PRELOAD = [
    "prefect.flow_engine",
    "prefect.task_engine",
    "prefect.utilities.visualization",
    "deployments.warm_start",
    "flows.engineering_project",
    "flows.version_upgrade",
    "sqlalchemy.dialects.sqlite.pysqlite",
    "sqlalchemy.dialects.postgresql.psycopg",
    "sqlite3",
    "psycopg",
    "encodings.idna",
]

_log = logging.getLogger("siteflow.warm_start")

# Flows started warm, pickled as the module attribute they are: id(flow) → (module, name).
_BY_REFERENCE: dict[int, tuple[str, str]] = {}


class WarmMultiprocessing:
    """`multiprocessing` as `prefect.flow_engine` sees it: spawn means the warm forkserver."""

    def __init__(self, preload: list[str]) -> None:
        self.context = multiprocessing.get_context("forkserver")
        self.context.set_forkserver_preload(preload)
        # Warm now, not on the first approval: the import costs land on siteflow's start.
        multiprocessing.forkserver.ensure_running()

    def get_context(self, method: str | None = None) -> multiprocessing.context.BaseContext:
        if method == "spawn":
            return self.context
        return multiprocessing.get_context(method)

    def __getattr__(self, name: str) -> Any:
        return getattr(multiprocessing, name)


def install(preload: list[str] | None = None) -> None:
    """Make this process's runner start runs warm (call once, before serving)."""
    if not callable(getattr(prefect.flow_engine, "run_flow_in_subprocess", None)) or not isinstance(
        getattr(prefect.flow_engine, "multiprocessing", None), ModuleType
    ):
        # A Prefect that no longer starts runs this way: keep its own start, slower but right.
        _log.warning("prefect.flow_engine has no spawn seam: served runs start cold (~2 s per gate)")
        return
    setattr(prefect.flow_engine, "multiprocessing", WarmMultiprocessing(preload or PRELOAD))  # noqa: B010
    copyreg.pickle(Flow, _reduce_flow)


def register(runner: Runner, deployment_id: UUID, flow: Flow[..., Any]) -> None:
    """Let the runner start this deployment's runs from the flow object it already holds."""
    registry = getattr(runner, "_deployment_registry", None)
    module, name = flow.fn.__module__, flow.fn.__name__
    if getattr(importlib.import_module(module), name, None) is not flow:
        return  # not a module-level flow: a run re-imports it from the deployment's entrypoint
    if registry is None or not callable(getattr(registry, "register_flow", None)):
        _log.warning("the runner has no flow registry: %s runs start cold (~2 s per gate)", name)
        return
    _BY_REFERENCE[id(flow)] = (module, name)
    registry.register_flow(deployment_id, flow)


def _reduce_flow(flow: Flow[..., Any]) -> str | tuple[Any, ...]:
    where = _BY_REFERENCE.get(id(flow))
    if where is None:
        return object.__reduce_ex__(flow, 2)
    return (_import_flow, where)


def _import_flow(module: str, name: str) -> Flow[..., Any]:
    found = getattr(importlib.import_module(module), name)
    assert isinstance(found, Flow)
    return found
