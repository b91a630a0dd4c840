"""The generic top-level names resolve to this repository (docs/architecture.md on shadowing)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", ["models", "tasks", "flows", "deployments", "siteflow"])
def test_top_level_package_is_ours(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__file__ is not None
    assert Path(module.__file__).resolve().parent == ROOT / name


def test_models_never_import_prefect() -> None:
    pattern = re.compile(r"^\s*(from|import)\s+prefect\b", re.MULTILINE)
    for path in (ROOT / "models").glob("*.py"):
        assert not pattern.search(path.read_text(encoding="utf-8")), f"{path.name} imports prefect"


def test_every_deployment_loads_with_a_module_entrypoint() -> None:
    from deployments import all_deployments

    deployments = all_deployments()
    assert [d.name for d in deployments] == [
        "engineering-project",
        "version-upgrade",
        "nightly-upgrade-window",
        "upgrade-window",
        "incident",
    ]
    nightly = deployments[2]  # starts on its own every night, in the site's zone
    assert [s.schedule.cron for s in nightly.schedules] == ["0 1 * * *"]  # type: ignore[union-attr]
    assert [s.schedule.timezone for s in nightly.schedules] == ["Asia/Shanghai"]  # type: ignore[union-attr]
    for d in deployments:
        assert d.entrypoint is not None and "/" not in d.entrypoint and ".py" not in d.entrypoint
        module, attr = d.entrypoint.rsplit(".", 1)
        assert callable(getattr(importlib.import_module(module), attr))
