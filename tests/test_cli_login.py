"""The CLI acts as its user, proven by a personal token (issue #9 item 3).

Real `siteflow` subprocesses against the real web service over HTTP: `login` keeps a token
(0600) in the user's config directory; `gates decide` signs as that user and nobody else (it
has no option to name a signer); logout, an expired token, a disabled account and a copied
token after logout are all refused; a PM starts a project as themselves and gets its links.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import select, update

from flows.signoffs import two_party_signoff
from models.gate import GateAttempt, GateDecision
from models.staff import ApiToken
from siteflow.db import session_scope
from siteflow.identity.roles import StaffRole
from siteflow.identity.users import disable_user
from tests.cli_user import login, run, staff
from tests.conftest import SQLITE_ONLY
from tests.test_approval_links import serve_web
from tests.test_decisions import CHEN, LI, WANG, add_document, add_project, open_, project_form
from tests.test_engineering_e2e import ROOT


@pytest.fixture
def web(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    yield from serve_web(monkeypatch)


def two_party() -> str:
    return open_(
        two_party_signoff("env-acceptance", "ENG-10", "Environment acceptance", add_document(doc_key="env"))
    )


@SQLITE_ONLY  # the web layer; both backends run in the decision tests
def test_login_keeps_a_private_token_and_decide_signs_as_its_owner(web: str, tmp_path: Path) -> None:
    add_project(project_form())
    staff(WANG.name, WANG.email, StaffRole.SUPERVISOR)
    gate_id = two_party()
    config = tmp_path / "wang"

    out = login(config, WANG.email)
    assert out.returncode == 0, out.stderr
    creds = config / "credentials.json"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600 and stat.S_IMODE(config.stat().st_mode) == 0o700
    token = json.loads(creds.read_text())["token"]
    assert token not in out.stdout + out.stderr  # never printed
    with session_scope() as session:  # only its hash is kept
        assert session.execute(select(ApiToken.token_sha256)).scalar_one() != token
    assert WANG.email in run(config, "whoami").stdout

    # no option names a signer
    forged = run(
        config, "gates", "decide", gate_id, "--decision", "sign", "--by", f"{CHEN.name} <{CHEN.email}>"
    )
    assert forged.returncode == 2 and "No such option" in forged.stderr

    signed = run(config, "gates", "decide", gate_id, "--decision", "sign", "--comment", "grounding checked")
    assert signed.returncode == 0, signed.stderr
    assert f"by {WANG}" in signed.stdout and "still waiting for the customer side" in signed.stdout
    with session_scope() as session:
        row = session.execute(select(GateDecision).where(GateDecision.gate_id == gate_id)).scalar_one()
        assert (row.signer_email, row.door, row.proof, row.party) == (
            WANG.email,
            "cli",
            "token",
            "contractor",
        )

    # the customer's side is not the supervisor's to fill: refused, and the refusal recorded
    again = run(config, "gates", "decide", gate_id, "--decision", "sign")
    assert again.returncode == 2 and "refused:" in again.stderr
    with session_scope() as session:
        refused = session.execute(select(GateAttempt).where(GateAttempt.accepted.is_(False))).scalars().all()
        assert [(a.door, a.proof) for a in refused] == [("cli", "token")]


@SQLITE_ONLY  # the web layer; both backends run in the decision tests
def test_logout_expiry_and_disabling_end_the_token(web: str, tmp_path: Path) -> None:
    add_project(project_form())
    staff(WANG.name, WANG.email, StaffRole.SUPERVISOR)
    gate_id = two_party()
    config = tmp_path / "wang"
    assert login(config, WANG.email).returncode == 0
    copy = (config / "credentials.json").read_text()

    out = run(config, "logout")
    assert out.returncode == 0 and "token revoked" in out.stdout
    assert "not logged in" in run(config, "gates", "decide", gate_id, "--decision", "sign").stderr
    (config / "credentials.json").write_text(copy)  # a copy kept from before the logout
    os.chmod(config / "credentials.json", 0o600)
    revoked = run(config, "gates", "decide", gate_id, "--decision", "sign")
    assert revoked.returncode == 1 and "token was not accepted" in revoked.stderr

    assert login(config, WANG.email).returncode == 0
    with session_scope() as session:
        session.execute(
            update(ApiToken)
            .where(ApiToken.revoked_at.is_(None))
            .values(expires_at=datetime.now(UTC) - timedelta(1))
        )
    assert "token was not accepted" in run(config, "gates", "decide", gate_id, "--decision", "sign").stderr

    assert login(config, WANG.email).returncode == 0
    disable_user(WANG.email, "host-admin:test")
    assert "token was not accepted" in run(config, "gates", "decide", gate_id, "--decision", "sign").stderr
    assert login(config, WANG.email).returncode == 1  # and no new one
    with session_scope() as session:
        assert session.execute(select(GateDecision)).first() is None


@SQLITE_ONLY  # the web layer; both backends run in the decision tests
def test_credentials_readable_by_others_are_refused(web: str, tmp_path: Path) -> None:
    add_project(project_form())
    staff(WANG.name, WANG.email, StaffRole.SUPERVISOR)
    config = tmp_path / "wang"
    assert login(config, WANG.email).returncode == 0
    os.chmod(config / "credentials.json", 0o644)
    out = run(config, "whoami")
    assert out.returncode == 1 and "readable by others" in out.stderr


@SQLITE_ONLY  # the web layer; both backends run in the decision tests
def test_the_decision_api_needs_a_token(web: str) -> None:
    add_project(project_form())
    gate_id = two_party()
    body = {"decision": "sign"}
    assert httpx.post(f"{web}/api/gates/{gate_id}/decisions", json=body).status_code == 401
    bad = {"Authorization": "Bearer sft_" + "x" * 43}
    assert httpx.post(f"{web}/api/gates/{gate_id}/decisions", json=body, headers=bad).status_code == 401
    wrong = httpx.post(f"{web}/api/tokens", json={"email": LI.email, "password": "guess"})
    assert wrong.status_code == 401 and "token" not in wrong.json()


def test_a_pm_starts_a_project_as_themselves(stack_factory: Any, tmp_path: Path) -> None:
    handle = stack_factory("sqlite")
    raw = yaml.safe_load((ROOT / "examples" / "project.yaml").read_text(encoding="utf-8"))
    raw["code"] = f"CLI-{int(time.time()) % 1000000}"
    pm = next(c for c in raw["contacts"] if c["role"] == "pm")
    engineer = next(c for c in raw["contacts"] if c["role"] == "engineer")
    form_file = tmp_path / "project.yaml"
    form_file.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with handle.active():
        for person, role in ((pm, StaffRole.PM), (engineer, StaffRole.ENGINEER)):
            staff(person["name"], person["email"], role)
        pm_config, engineer_config = tmp_path / "pm", tmp_path / "engineer"
        assert login(pm_config, pm["email"]).returncode == 0
        assert login(engineer_config, engineer["email"]).returncode == 0

        refused = run(engineer_config, "projects", "start", str(form_file))
        assert refused.returncode == 1 and "needs the pm, office or admin role" in refused.stderr

        started = run(pm_config, "projects", "start", str(form_file), "--wait")
        assert started.returncode == 0, started.stderr
        assert f"/projects/{raw['code']}" in started.stdout and "/runs/flow-run/" in started.stdout
        assert "waiting at gate survey-readiness-r1" in started.stdout


@SQLITE_ONLY  # the web layer; both backends run in the decision tests
def test_a_token_signs_as_its_owner_whatever_the_request_names(web: str, tmp_path: Path) -> None:
    """Forgery through the API: a body naming the customer as the signer signs nothing of theirs."""
    add_project(project_form())
    staff(WANG.name, WANG.email, StaffRole.SUPERVISOR)
    gate_id = two_party()
    config = tmp_path / "wang"
    assert login(config, WANG.email).returncode == 0
    token = json.loads((config / "credentials.json").read_text())["token"]
    body = {"decision": "sign", "signer": str(CHEN), "signer_email": CHEN.email, "signer_name": CHEN.name}
    answer = httpx.post(
        f"{web}/api/gates/{gate_id}/decisions", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 200 and answer.json()["signed_as"] == str(WANG)
    with session_scope() as session:
        row = session.execute(select(GateDecision).where(GateDecision.gate_id == gate_id)).scalar_one()
        assert (row.signer_email, row.party) == (WANG.email, "contractor")  # never the customer's slot
