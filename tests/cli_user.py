"""A staff member at the CLI, as on their own machine: an account, `siteflow login`, commands.

The subprocess gets no database or Prefect settings — only the web service's address and a
config directory of its own — so it can only act through the web API with its token.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import update

from models.staff import StaffUser
from siteflow.db import session_scope
from siteflow.identity.passwords import hash_password
from siteflow.identity.roles import StaffRole
from siteflow.identity.users import DuplicateEmail, NewUser, add_user
from siteflow.settings import get_settings

PASSWORD = "correct horse battery staple 7"


def staff(name: str, email: str, role: StaffRole = StaffRole.PM) -> None:
    """The account, made as `siteflow users add --password-stdin` makes it (once per database);
    one the demo signers made earlier without a password gets the test password."""
    try:
        add_user(NewUser(name=name, email=email, roles=[role]), PASSWORD, "host-admin:test")
    except DuplicateEmail:
        with session_scope() as session:
            session.execute(
                update(StaffUser)
                .where(StaffUser.email == email.lower(), StaffUser.password_hash.is_(None))
                .values(password_hash=hash_password(PASSWORD))
            )


def run(config: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The real `siteflow` command as a user on another host would run it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SITEFLOW_", "PREFECT_"))}
    env |= {
        "SITEFLOW_CONFIG_DIR": str(config),
        "SITEFLOW_PUBLIC_URL": get_settings().resolved_public_url,
        "SITEFLOW_HOME": str(config / "home"),  # a home of its own: nothing of the server's
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "siteflow.cli", *args],
        env=env,
        input=stdin,
        text=True,
        capture_output=True,
        timeout=120,
    )


def login(config: Path, email: str) -> subprocess.CompletedProcess[str]:
    return run(config, "login", "--email", email, "--password-stdin", stdin=PASSWORD + "\n")


def logged_in(config: Path, name: str, email: str, role: StaffRole = StaffRole.PM) -> Path:
    """`config`, holding a fresh token of this person's account (made if needed)."""
    staff(name, email, role)
    out = login(config, email)
    assert out.returncode == 0, out.stderr
    return config
