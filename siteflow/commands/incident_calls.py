"""The incidents' web API as the logged-in user, for every `siteflow incidents …` and
`siteflow problems …` command: exit 2 when refused (nothing changed), 1 when siteflow could
not be asked. Loads the API client only when called (the CLI's start stays fast)."""

from __future__ import annotations

from typing import Any

from siteflow.commands.terminal import fail


def incident_call(method: str, path: str, body: Any = None) -> Any:
    """One incidents API call as the logged-in user: exit 2 when refused (nothing changed), 1
    when siteflow could not be asked."""
    from siteflow.api_client import ApiError, call, load_credentials

    try:
        return call(method, path, body, load_credentials())
    except ApiError as exc:
        problems = "".join(f"\n  - {p}" for p in exc.body.get("problems", []))
        if exc.status in (404, 409, 422):
            raise fail(f"refused: {exc}{problems}\nnothing was changed", code=2) from None
        raise fail(str(exc)) from None
