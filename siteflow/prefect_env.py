"""The Prefect settings siteflow's processes share, derived from siteflow's own settings."""

from __future__ import annotations

import os

from pydantic import SecretStr

from siteflow.settings import Settings, get_settings


def prefect_environment(settings: Settings | None = None) -> dict[str, str]:
    s = settings or get_settings()
    own = {  # a secret is passed on as itself, never as its masked repr
        f"SITEFLOW_{k.upper()}": str(v.get_secret_value() if isinstance(v, SecretStr) else v)
        for k, v in s.model_dump().items()
        if v is not None
    }
    return own | {
        "PREFECT_HOME": str(s.prefect_home),
        "PREFECT_API_URL": s.resolved_prefect_api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOCAL_STORAGE_PATH": str(s.home / "results"),
        "PREFECT_RUNNER_POLL_FREQUENCY": str(max(1, int(s.runner_poll_seconds))),
        "PREFECT_SERVER_API_HOST": s.prefect_host,
        "PREFECT_SERVER_API_PORT": str(s.prefect_port),
        "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.5",
    }


def apply_prefect_environment(settings: Settings | None = None) -> None:
    """Point this process at siteflow's Prefect server (before any Prefect client is made)."""
    s = settings or get_settings()
    s.prefect_home.mkdir(parents=True, exist_ok=True)
    for key, value in prefect_environment(s).items():
        if key == "PREFECT_API_URL" or key not in os.environ:
            os.environ[key] = value
