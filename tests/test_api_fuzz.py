"""The web service fuzzed from its own OpenAPI description with schemathesis (issue #10).

Every operation the description lists, with inputs generated from its schema (and beyond it:
schemathesis also sends what the schema forbids), over real HTTP: without credentials, no
protected operation answers 2xx and none answers 5xx; with a PM's personal token, none
answers 5xx either. The web service runs alone here (no Prefect server), so starting a
project must say that Prefect cannot be reached — a clear answer, not a crash.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import Case
from starlette.routing import compile_path

from siteflow.web.access import OPEN_ROUTES
from tests.conftest import SQLITE_ONLY
from tests.test_approval_links import serve_web
from tests.test_staff_identity import ADMIN, PASSWORD

REVOKE = ("DELETE", "/api/tokens/current")
OPEN = [compile_path(template)[0] for template in OPEN_ROUTES]
EXAMPLES = 12  # per operation and credential; the soak (`benchmarks.input_fuzz`) runs many more


@pytest.fixture
def served(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    """The web service and a PM's token (an admin too, so every operation is reachable)."""
    from siteflow.identity.roles import StaffRole
    from siteflow.identity.users import NewUser, add_user

    monkeypatch.delenv("SITEFLOW_PUBLIC_URL", raising=False)
    monkeypatch.setenv("SITEFLOW_PREFECT_API_URL", "http://127.0.0.1:9/api")  # nothing listens there
    for web in serve_web(monkeypatch):
        pm = NewUser(name="李娜 Li Na", email="li.na@siteflow.example", roles=[StaffRole.PM, StaffRole.ADMIN])
        add_user(pm, PASSWORD, ADMIN)
        token = httpx.post(f"{web}/api/tokens", json={"email": pm.email, "password": PASSWORD}).json()[
            "token"
        ]
        yield web, token


def is_open(path: str) -> bool:
    return any(pattern.match(path) for pattern in OPEN)


@SQLITE_ONLY
def test_no_operation_fails_or_opens_without_credentials(served: tuple[str, str]) -> None:
    web, token = served
    raw = httpx.get(f"{web}/api/openapi.json", headers={"Authorization": f"Bearer {token}"}).json()
    schema = schemathesis.openapi.from_dict(raw)
    checked: list[str] = []
    answered: list[int] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def check(case: Case) -> None:
            where = f"{case.method} {case.formatted_path}"
            anonymous = case.call(base_url=web, allow_redirects=False)
            assert anonymous.status_code < 500, f"{where}: {anonymous.text[:300]}"
            if not is_open(case.formatted_path):
                assert not 200 <= anonymous.status_code < 300, f"{where} answered without credentials"
            if (case.method.upper(), case.path) == REVOKE:  # it would end the token used below
                return
            bearer = {"Authorization": f"Bearer {token}"}
            proven = case.call(base_url=web, headers=bearer, allow_redirects=False)
            assert proven.status_code < 500, f"{where} with a token: {proven.text[:300]}"
            answered.append(proven.status_code)

        check()
        checked.append(f"{operation.method.upper()} {operation.path}")
    assert len(checked) >= 15, checked
    assert answered.count(200) >= 10  # the token was let in all along: the proven pass was real
    assert httpx.get(f"{web}/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
