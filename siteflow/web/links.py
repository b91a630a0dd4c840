"""Addresses of the staff workspace's pages, for mails, CLI output and the Prefect UI.

One place names them, so a link printed by `projects start`, written into a Prefect gate
form or mailed to a colleague always points at the page that exists. Every page behind these
addresses asks for a signed-in user (COM-6); a link is only an address, never a credential.
"""

from __future__ import annotations

from urllib.parse import quote

from siteflow.settings import get_settings


def _url(path: str) -> str:
    return f"{get_settings().resolved_public_url}{path}"


def workspace_home() -> str:
    return _url("/")


def inbox() -> str:
    """ "Waiting on me": the gates the signed-in person may decide."""
    return _url("/inbox")


def gate_page(gate_id: str) -> str:
    return _url(f"/gates/{quote(gate_id, safe='')}")


def project_page(code: str) -> str:
    return _url(f"/projects/{quote(code, safe='')}")


def window_page(window_id: str) -> str:
    return _url(f"/windows/{quote(window_id, safe='')}")
