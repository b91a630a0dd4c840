"""The one credential in front of Prefect's API (issue #10, item 2).

Prefect's open-source server has no users, only one shared basic-auth string
(``PREFECT_SERVER_API_AUTH_STRING``; every client sends the same as ``PREFECT_API_AUTH_STRING``,
docs/architecture.md "Identity"). Without it anyone who reaches the port reads every contact's name, email
and phone from flow-run parameters, and ``DELETE /api/flow_runs/{id}`` deletes a run. So the
embedded default always has one:

- given: ``SITEFLOW_PREFECT_AUTH_STRING`` (``user:password``, the form Prefect's UI asks for);
- else kept in ``SITEFLOW_HOME/prefect-api-auth`` (mode 0600), made on first use by whichever
  siteflow process needs it first — the stack, normally — and read by every later one.

For an external Prefect API (``SITEFLOW_PREFECT_API_URL``) siteflow cannot choose the server's
credential, so it never makes one up: it uses the setting or the file if someone put it there,
and the stack refuses an API that answers without one (:func:`siteflow.stack.Stack.start`).
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
from pathlib import Path

from siteflow.settings import Settings

FILE_NAME = "prefect-api-auth"
USER = "siteflow"


def credential_file(settings: Settings) -> Path:
    return settings.home / FILE_NAME


def _create(path: Path) -> None:
    """Write a fresh credential atomically: two processes starting at once agree on one, and
    nobody ever reads a half-written file (it appears, complete, under its name or not at all)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(f"{USER}:{secrets.token_urlsafe(32)}\n")
        with contextlib.suppress(FileExistsError):  # another process got there first: theirs
            os.link(draft, path)
    finally:
        draft.unlink(missing_ok=True)


def prefect_auth_string(settings: Settings) -> str | None:
    """The ``user:password`` string for Prefect's API; None only for an external API that
    siteflow was given no credential for."""
    if settings.prefect_auth_string is not None:
        return settings.prefect_auth_string.get_secret_value()
    path = credential_file(settings)
    if not path.exists():
        if settings.prefect_api_url is not None:
            return None
        _create(path)
    if path.stat().st_mode & 0o077:  # someone loosened it: the credential is for this user alone
        path.chmod(0o600)
    return path.read_text(encoding="ascii").strip()


def basic_auth_header(auth_string: str | None) -> dict[str, str]:
    """The header Prefect's server checks (for the few plain-HTTP calls siteflow makes to it)."""
    if not auth_string:
        return {}
    return {"Authorization": "Basic " + base64.b64encode(auth_string.encode()).decode()}
