"""A whole engineering project on real parts: Prefect server, served deployment, SQLite and
PostgreSQL, every gate answered through the decision path (docs/process.md §1, ENG-1 … ENG-31).

The two backends run side by side to keep the suite short. The SQLite stack is stopped and
started again while its project waits at a gate (issue #2: the gate is still there and
answering it finishes the project). Side effects are counted afterwards: a suspended run
re-runs from the top at every resume, so each must still have happened exactly once.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import yaml
from sqlalchemy import func, select

from models.project_input import ProjectIn, Role
from tests.cli_user import logged_in
from tests.cli_user import run as user_cli
from tests.conftest import StackHandle

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.e2e


def sample_form(code: str) -> ProjectIn:
    raw = yaml.safe_load((ROOT / "examples" / "project.yaml").read_text(encoding="utf-8"))
    raw["code"] = code
    return ProjectIn.model_validate(raw)


def with_third_party(form: ProjectIn) -> ProjectIn:
    """COM-4: the same project with a third party sharing the installation work."""
    raw = form.model_dump(mode="json")
    raw["third_party"] = {
        "company": "南方电力工程 Southern Power Works",
        "shared_work": "DC power and cabling",
    }
    raw["contacts"].append(
        {"name": "孙悦 Sun Yue", "email": "sun.yue@power-works.example", "role": "third-party"}
    )
    return ProjectIn.model_validate(raw)


def flow_run_state(run_id: str) -> str:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(UUID(run_id))
    assert run.state is not None
    return run.state.type.value


def wait_for_open_gate(code: str, key_prefix: str, timeout: float = 60) -> Any:
    from siteflow.queries import list_gates

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        gates = [g for g in list_gates(code) if g.key.startswith(key_prefix)]
        if gates:
            return gates[0]
        time.sleep(0.3)
    raise AssertionError(f"gate {key_prefix}* of {code} did not open within {timeout}s")


def wait_paused(run_id: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if flow_run_state(run_id) == "PAUSED":
            return
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not pause")


def report_crashed(run_id: str) -> None:
    """What the runner reports when it sees a suspended run's process killed on its way out."""
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed

    with get_client(sync_client=True) as client:
        client.set_flow_run_state(UUID(run_id), Crashed(message="Process exited with status code: -15"))
    assert flow_run_state(run_id) == "CRASHED"


def ui_resume(run_id: str, answer: dict[str, Any]) -> str:
    """What the Prefect UI's Resume button does: resume with the form's input. Prefect answers
    REJECT "schema not found" to a press that comes between a re-run's pause and its form being
    stored (a loaded machine shows it): a person presses again, and so does this."""
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + 30
    with get_client(sync_client=True) as client:
        while True:
            response = client.resume_flow_run(UUID(run_id), run_input=answer)
            caught = response.status.value == "REJECT" and "schema not found" in str(response.details)
            if not caught or time.monotonic() > deadline:
                return str(response.status.value)
            time.sleep(0.5)


def cli(handle: StackHandle, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    s = handle.settings
    env = dict(os.environ) | {
        "SITEFLOW_HOME": str(s.home),
        "SITEFLOW_DATABASE_URL": s.resolved_database_url,
        "SITEFLOW_PREFECT_PORT": str(s.prefect_port),
        "COLUMNS": "200",
    }
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.run(
        [sys.executable, "-m", "siteflow.cli", *args], env=env, text=True, capture_output=True, timeout=120
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"siteflow {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def test_full_project_with_restart_on_both_databases(stack_factory: Any, tmp_path: Path) -> None:
    from siteflow import audit_report
    from siteflow.decisions import Signer, decide
    from siteflow.demo import answer_open_gates
    from siteflow.launch import LaunchError, start_project
    from siteflow.queries import list_projects
    from siteflow.stand_in_signers import proven

    handles: dict[str, StackHandle] = {b: stack_factory(b) for b in ("sqlite", "postgresql")}
    forms = {b: sample_form(f"E2E-{b[:2].upper()}-{int(time.time()) % 100000}") for b in handles}
    forms["postgresql"] = with_third_party(forms["postgresql"])  # COM-4 on one of the two
    runs: dict[str, str] = {}
    for backend, handle in handles.items():
        with handle.active():
            runs[backend] = start_project(forms[backend])
            with pytest.raises(LaunchError, match="already exists"):
                start_project(forms[backend])  # a duplicate code is refused before any work

    # The Prefect UI door proves nobody (issue #9): answers naming the engineer, then the customer,
    # are refused and recorded and the gate stays open; the customer's proven decision decides.
    for backend, handle in handles.items():
        with handle.active():
            gate = wait_for_open_gate(forms[backend].code, "survey-readiness-r1")
            customer = forms[backend].contacts[0]
            for n, person in enumerate([forms[backend].contacts_with(Role.ENGINEER)[0], customer], 1):
                wait_paused(runs[backend])
                answer = {"decision": "ready", "signer_name": person.name, "signer_email": person.email}
                assert ui_resume(runs[backend], answer) == "ACCEPT"
                deadline = time.monotonic() + 60
                while True:
                    report = audit_report.build(forms[backend].code, with_prefect=False)
                    attempts = next(g for g in report["gates"] if g["key"] == "survey-readiness-r1")[
                        "attempts"
                    ]
                    if len(attempts) == n or time.monotonic() > deadline:
                        break
                    time.sleep(0.3)
                assert [(a["accepted"], a["door"]) for a in attempts] == [(False, "prefect-ui")] * n
                assert "cannot prove who pressed Resume" in attempts[-1]["reason"]
                assert wait_for_open_gate(forms[backend].code, "survey-readiness-r1").id == gate.id
            wait_paused(runs[backend])
            decide(proven(gate.id, "ready", Signer(customer.name, customer.email)))  # by their link
            wait_for_open_gate(forms[backend].code, "survey-coordination-meeting")

    # Drive both projects; stop and restart the SQLite stack while it waits at a gate.
    restarted = False
    deadline = time.monotonic() + 600
    done: set[str] = set()
    while len(done) < len(handles):
        assert time.monotonic() < deadline, "projects did not complete within 10 minutes"
        progressed = 0
        for backend, handle in handles.items():
            if backend in done:
                continue
            with handle.active():
                state = next(p for p in list_projects() if p.code == forms[backend].code)
                if state.state == "completed":
                    done.add(backend)
                    continue
                assert state.state != "failed", f"{backend} project failed"
                if (
                    backend == "sqlite"
                    and not restarted
                    and state.phase == "installation"
                    and state.waiting_at
                ):
                    wait_paused(runs[backend])
                    # Stopped right after the pause: the run's process may still be exiting, so the
                    # runner can report it Crashed; the gate keeper restores its suspended state.
                    handle.stack.stop()  # type: ignore[attr-defined]
                    waiting_at = state.waiting_at
                    handle.stack.start()  # type: ignore[attr-defined]
                    wait_paused(runs[backend])
                    again = next(p for p in list_projects() if p.code == forms[backend].code)
                    assert again.waiting_at == waiting_at
                    # The same report made on purpose, so the repair is exercised on every run.
                    report_crashed(runs[backend])
                    wait_paused(runs[backend])
                    restarted = True
                progressed += answer_open_gates(forms[backend], say=lambda m: None)
        if not progressed:
            time.sleep(0.3)
    assert restarted

    for backend, handle in handles.items():
        with handle.active():
            code = forms[backend].code
            assert flow_run_state(runs[backend]) == "COMPLETED"
            report = audit_report.build(code)
            assert report["chain"]["verified"], report["chain"]["problems"]
            assert report["prefect_run"]["state"] == "COMPLETED"
            assert [p["state"] for p in report["phases"]] == ["completed"] * 4
            assert all(g["status"] == "decided" and g["signatures"] for g in report["gates"])
            two_party = [g for g in report["gates"] if g["kind"] == "two-party-signoff"]
            cooperation = [g for g in two_party if g["key"].startswith("cooperation-agreement-signoff")]
            assert two_party and all(
                {s["slot"] for s in g["signatures"]}
                == ({"contractor", "third-party"} if g in cooperation else {"customer", "contractor"})
                and len({s["by"] for s in g["signatures"]}) == 2
                for g in two_party
            )
            keys = [g["key"] for g in report["gates"]]
            # COM-7: every visit's checklist before its first work on site
            for access, work in (
                ("site-access-survey-r1", "survey-data-r1"),
                ("site-access-installation", "environment-acceptance-signoff-r1"),
                ("site-access-commissioning", "connection-check"),
            ):
                assert keys.index(access) < keys.index(work), keys
            if backend == "postgresql":  # COM-4: agreed and signed by both leads before the shared work
                assert [g["status"] for g in cooperation] == ["decided"]
                assert keys.index("cooperation-plan") < keys.index("site-access-installation")
                assert {s["role"] for s in cooperation[0]["signatures"]} == {"pm", "third-party"}
            else:
                assert not cooperation and "cooperation-plan" not in keys
            docs = {d["doc_key"]: d for d in report["documents"]}
            cert = docs["acceptance-certificate"]
            assert cert["status"] == "signed" and cert["copies"] == 3 and cert["signed_by"]
            for needed in (
                "survey-plan",
                "survey-report",
                "contract-change-gz-th-01-dc-pdu-63a",
                "survey-memo-gz-th-01-1",
                "environment-acceptance",
                "project-plan",
                "inspection-report",
                "arrival-certificate",
                "reshipment-request-inspection",
                "stop-work-report-1",
                "resume-work-report-1",
                "data-configuration-report",
                "preparation-requirements",
                "milestone-report-first-call-through",
                "reshipment-request-powered-on",
                "training-record",
                "self-test-record",
                "preliminary-acceptance-application",
                "acceptance-test-record",
                "project-memo-1",
                "handover-record",
            ):
                assert needed in docs, f"{needed} missing from {sorted(docs)}"
            arrival = [d for d in report["documents"] if d["doc_key"] == "arrival-certificate"]
            assert [(d["version"], d["status"], bool(d["signed_by"])) for d in arrival] == [
                (1, "superseded", False),
                (2, "signed", True),
            ]  # ENG-15: rejected, corrected, signed
            assert report["memos"] and all(m["status"] == "open" for m in report["memos"])
            assert any(m["kind"] == "project-memo" and m["resolution_date"] for m in report["memos"])

            # exactly-once side effects across every resume and the restart
            kinds = Counter(e["kind"] for e in report["events"])
            opened = Counter(e["payload"]["gate"] for e in report["events"] if e["kind"] == "gate.opened")
            assert opened and max(opened.values()) == 1
            assert kinds["gate.opened"] == len(report["gates"])
            issued = Counter(
                (e["payload"]["doc_key"], e["payload"]["version"])
                for e in report["events"]
                if e["kind"] == "document.issued"
            )
            assert max(issued.values()) == 1 and len(issued) == len(report["documents"])
            assert kinds["project.registered"] == 1 and kinds["project.completed"] == 1
            assert kinds["phase.started"] == 4 and kinds["phase.completed"] == 4
            signed = Counter(
                e["payload"]["document_id"] for e in report["events"] if e["kind"] == "document.signed"
            )
            assert signed and max(signed.values()) == 1
            from models.outbox import OutboxMessage
            from siteflow.db import session_scope

            with session_scope() as session:
                stop_notices = session.scalar(
                    select(func.count()).where(
                        OutboxMessage.subject_ref == code,
                        OutboxMessage.dedup_key.like(f"notice:{code}:customer-stop-1:%"),
                    )
                )
            assert stop_notices == len(forms[backend].contacts_with(Role.PM))  # ENG-16, once each
            for notice in (
                "remote-support-internal-commissioning-done-1",  # ENG-22
                "product-quality-internal-commissioning-done-1",
                "survey-copies",
                "reshipment-inspection",
                "preparation-requirements",
                "reshipment-powered-on",
                "certificate-to-office",
            ):
                assert any(
                    e["payload"]["key"] == notice for e in report["events"] if e["kind"] == "notice.queued"
                )

            # every queued notice reaches the SMTP catcher through the relay, once
            deadline_mail = time.monotonic() + 60
            while time.monotonic() < deadline_mail:
                with session_scope() as session:
                    rows = session.execute(select(OutboxMessage.status, OutboxMessage.message_id)).all()
                if all(r.status == "sent" for r in rows):
                    break
                time.sleep(0.5)
            assert rows and all(r.status == "sent" for r in rows), Counter(r.status for r in rows)
            delivered = [
                email.message_from_bytes(p.read_bytes(), policy=email.policy.default)["Message-ID"]
                for p in handle.settings.mail_dir.glob("*.eml")
            ]
            assert sorted(delivered) == sorted(r.message_id for r in rows)

            # a decision on the finished run is refused and changes nothing
            from siteflow.decisions import DecisionRefused

            last = report["gates"][-1]
            customer = forms[backend].contacts[1]
            with pytest.raises(DecisionRefused, match="already decided"):
                decide(proven(last["id"], "approve", Signer(customer.name, customer.email)))
            assert audit_report.build(code, with_prefect=False)["chain"]["verified"]
            from models.gate import Gate, GateDecision
            from siteflow.db import session_scope

            with session_scope() as session:  # every signature proven (issue #9)
                proofs = set(
                    session.execute(
                        select(GateDecision.proof)
                        .join(Gate, Gate.id == GateDecision.gate_id)
                        .where(Gate.subject == code)
                    ).scalars()
                )
            assert proofs and proofs <= {"token", "mailbox", "session", "paper", "system"}, proofs

    # The CLI on the finished SQLite project, as a user would run it
    sqlite = handles["sqlite"]
    code = forms["sqlite"].code
    listed = json.loads(cli(sqlite, "projects", "list", "--json").stdout)
    assert any(p["code"] == code and p["state"] == "completed" and p["phase"] == "done" for p in listed)
    gates = json.loads(cli(sqlite, "gates", "list", "--project", code, "--all", "--json").stdout)
    assert gates and all(g["status"] == "decided" for g in gates)
    html = tmp_path / "audit.html"
    cli(sqlite, "audit", code, "--format", "html", "--output", str(html))
    assert "验收证书" in html.read_text(encoding="utf-8")
    assert cli(sqlite, "audit", "verify", code).returncode == 0
    pm = next(c for c in forms["sqlite"].contacts if c.role.value == "pm")
    with sqlite.active():  # the PM, logged in on their own machine
        config = logged_in(tmp_path / "pm", pm.name, pm.email)
        refused = user_cli(config, "gates", "decide", gates[0]["id"], "--decision", "ready")
    assert refused.returncode == 2 and "already decided" in refused.stderr


def test_cli_refuses_a_malformed_form(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    raw = yaml.safe_load((ROOT / "examples" / "project.yaml").read_text(encoding="utf-8"))
    raw["sites"] = []
    raw["planned_end"] = "2020-01-01"
    raw["contacts"][0]["role"] = "boss"
    bad.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    env = dict(os.environ) | {"SITEFLOW_HOME": str(tmp_path / "home"), "COLUMNS": "200"}
    proc = subprocess.run(
        [sys.executable, "-m", "siteflow.cli", "projects", "start", str(bad)],
        env=env,
        text=True,
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "nothing was started" in proc.stderr
    assert "sites" in proc.stderr and "contacts.0.role" in proc.stderr
    assert not (tmp_path / "home" / "siteflow.db").exists()
