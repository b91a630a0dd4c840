"""The Prefect settings siteflow's processes share, derived from siteflow's own settings.

Every process siteflow starts (server, served deployments, gate keeper, web, relay, CLI) gets
these, so they all reach the same server with the same credential (issue #10, item 2).
"""

from __future__ import annotations

import os

from pydantic import SecretStr

from siteflow.prefect_credential import prefect_auth_string
from siteflow.settings import Settings, get_settings

OURS = ("PREFECT_API_URL", "PREFECT_API_AUTH_STRING", "PREFECT_SERVER_API_AUTH_STRING")
"""Always siteflow's, whatever the environment says: the address and the credential go together,
and a credential left in the shell for another server would only get a 401."""


def prefect_environment(settings: Settings | None = None) -> dict[str, str]:
    s = settings or get_settings()
    own = {  # a secret is passed on as itself, never as its masked repr
        f"SITEFLOW_{k.upper()}": str(v.get_secret_value() if isinstance(v, SecretStr) else v)
        for k, v in s.model_dump().items()
        if v is not None
    }
    auth = prefect_auth_string(s)
    credential = {"PREFECT_API_AUTH_STRING": auth, "PREFECT_SERVER_API_AUTH_STRING": auth} if auth else {}
    return (
        own
        | {
            "PREFECT_HOME": str(s.prefect_home),
            "PREFECT_API_URL": s.resolved_prefect_api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOCAL_STORAGE_PATH": str(s.home / "results"),
            "PREFECT_RUNNER_POLL_FREQUENCY": str(max(1, int(s.runner_poll_seconds))),
            "PREFECT_SERVER_API_HOST": s.prefect_host,
            "PREFECT_SERVER_API_PORT": str(s.prefect_port),
            "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.5",
        }
        | credential
    )


def apply_prefect_environment(settings: Settings | None = None) -> None:
    """Point this process at siteflow's Prefect server (before any Prefect client is made)."""
    s = settings or get_settings()
    s.prefect_home.mkdir(parents=True, exist_ok=True)
    for key, value in prefect_environment(s).items():
        if key in OURS or key not in os.environ:
            os.environ[key] = value
    os.environ.pop("PREFECT_API_KEY", None)  # it would take precedence over the auth string (401)
