"""The CLI's side of the web API: the user's personal token and the calls made with it.

The token lives in the user's config directory (``$XDG_CONFIG_HOME/siteflow/credentials.json``,
else ``~/.config/siteflow/``; ``SITEFLOW_CONFIG_DIR`` overrides both), readable by that user
only (0600 in a 0700 directory), beside the address of the web service it was issued by. It
never appears on a command line, in an environment variable or in a log.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

TIMEOUT = httpx.Timeout(30.0, connect=5.0)


class ApiError(Exception):
    """A call that did not succeed; the message says what happened and what to do."""

    def __init__(self, message: str, status: int | None = None, body: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body or {}


def config_dir() -> Path:
    override = os.environ.get("SITEFLOW_CONFIG_DIR")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "siteflow"


def credentials_path() -> Path:
    return config_dir() / "credentials.json"


@dataclass(frozen=True)
class Credentials:
    url: str
    token: str
    email: str
    expires_at: datetime

    def save(self) -> Path:
        path = credentials_path()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(path.parent, 0o700)
        text = json.dumps(
            {
                "url": self.url,
                "token": self.token,
                "email": self.email,
                "expires_at": self.expires_at.isoformat(),
            }
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(path, 0o600)
        return path


def load_credentials() -> Credentials:
    path = credentials_path()
    try:
        raw = json.loads(path.read_text())
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        raise ApiError("not logged in: run `siteflow login` first") from None
    except (OSError, ValueError):
        raise ApiError(f"{path} is unreadable; run `siteflow login` again") from None
    if mode & 0o077:
        raise ApiError(
            f"{path} is readable by others (mode {mode:o}); run `chmod 600 {path}` or log in again"
        )
    try:
        return Credentials(
            url=raw["url"],
            token=raw["token"],
            email=raw["email"],
            expires_at=datetime.fromisoformat(raw["expires_at"]),
        )
    except (KeyError, TypeError, ValueError):
        raise ApiError(f"{path} is not a siteflow credentials file; run `siteflow login` again") from None


def forget_credentials() -> bool:
    try:
        credentials_path().unlink()
    except FileNotFoundError:
        return False
    return True


def _detail(response: httpx.Response) -> tuple[str, dict[str, Any]]:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase, {}
    if isinstance(body, dict):
        detail = body.get("detail")
        return (detail if isinstance(detail, str) else json.dumps(detail)), body
    return str(body)[:300], {}


def _send(method: str, base: str, path: str, creds: Credentials | None, **request: Any) -> httpx.Response:
    """The request and the reasons every call shares: unreachable, token refused, refused."""
    headers = {"Authorization": f"Bearer {creds.token}"} if creds else {}
    try:
        response = httpx.request(method, f"{base}{path}", headers=headers, timeout=TIMEOUT, **request)
    except httpx.HTTPError as exc:
        raise ApiError(
            f"could not reach siteflow's web service at {base} ({type(exc).__name__}); is siteflow running "
            "(`siteflow up`)? nothing was changed"
        ) from None
    if response.status_code == 401 and creds is not None:
        raise ApiError(
            "your token was not accepted (expired, revoked, or the account is disabled): "
            "run `siteflow login`",
            401,
        )
    if response.status_code >= 400:
        detail, parsed = _detail(response)
        raise ApiError(detail, response.status_code, parsed)
    return response


def call(
    method: str, path: str, body: Any = None, creds: Credentials | None = None, url: str | None = None
) -> Any:
    """One API call; raises ApiError with the server's reason, or why it could not be reached."""
    base = url or (creds.url if creds else None)
    assert base is not None
    response = _send(method, base, path, creds, json=body)
    return response.json() if response.content else None


def call_raw(
    method: str, path: str, creds: Credentials, files: dict[str, tuple[str, bytes, str]] | None = None
) -> httpx.Response:
    """One API call whose answer is not JSON (a PDF) or whose body is a file (a scan);
    raises ApiError like :func:`call`."""
    return _send(method, creds.url, path, creds, files=files)
