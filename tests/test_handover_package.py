"""The handover package (竣工资料, ENG-29) of a real finished project, and ENG-8's copies.

One sample project runs to its acceptance certificate on the real stack (Prefect server,
served deployment, SQLite, the SMTP catcher, the relay), every gate answered through the
decision path as the demo's scripted people answer it (`siteflow.demo`). A second one, whose
form names no construction-department contact, runs beside it through its survey. Then:

- ENG-29: `siteflow handover CODE --output` builds the package (the real CLI, the documents'
  own PDF renderer, the audit report as PDF); `siteflow handover verify` passes it; one changed
  byte in a document PDF, the audit JSON or the manifest fails naming that file; an extra file
  is refused; a project not yet accepted gets no package. ENG-28: the memos are in it.
- ENG-8: the construction-department contact receives the copies of the survey and environment
  acceptance reports in the catcher; without one, the customer contacts do and the PM is told.
"""

from __future__ import annotations

import email
import email.policy
import io
import json
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest

from models.project_input import ProjectIn, Role
from tests.conftest import StackHandle
from tests.test_engineering_e2e import cli, sample_form, wait_for_open_gate

pytestmark = pytest.mark.e2e


@dataclass
class Finished:
    handle: StackHandle
    form: ProjectIn  # completed, with a construction-department contact
    bare: ProjectIn  # no construction-department contact: driven past its survey


def _drive(form: ProjectIn, through_survey: ProjectIn) -> None:
    """Answer ``form``'s gates until it completes, and ``through_survey``'s while it is in its
    survey (it then waits at its installation readiness: not accepted, ENG-29)."""
    from siteflow.demo import answer_open_gates
    from siteflow.queries import list_projects

    deadline = time.monotonic() + 600
    while True:
        assert time.monotonic() < deadline, "the project did not complete within 10 minutes"
        states = {p.code: p for p in list_projects()}
        assert all(p.state != "failed" for p in states.values() if p.code in (form.code, through_survey.code))
        if states[form.code].state == "completed":
            return
        answered = answer_open_gates(form, say=lambda m: None)
        if states[through_survey.code].phase == "survey":
            answered += answer_open_gates(through_survey, say=lambda m: None)
        if not answered:
            time.sleep(0.3)


def _all_sent(timeout: float = 60) -> None:
    from sqlalchemy import select

    from models.outbox import OutboxMessage
    from siteflow.db import session_scope

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope() as session:
            statuses = set(session.execute(select(OutboxMessage.status)).scalars())
        if statuses <= {"sent"}:
            return
        time.sleep(0.5)
    raise AssertionError(f"outbox not drained: {statuses}")


@pytest.fixture(scope="module")
def finished(stack_factory: Any) -> Iterator[Finished]:
    from siteflow.launch import start_project

    handle: StackHandle = stack_factory("sqlite")
    stamp = int(time.time()) % 100000
    form = sample_form(f"HO-{stamp}")
    raw = form.model_dump(mode="json")
    raw["code"] = f"HB-{stamp}"
    raw["contacts"] = [c for c in raw["contacts"] if c["role"] != Role.CONSTRUCTION.value]
    bare = ProjectIn.model_validate(raw)
    assert form.contacts_with(Role.CONSTRUCTION) and not bare.contacts_with(Role.CONSTRUCTION)
    with handle.active():
        start_project(form)
        start_project(bare)
        _drive(form, through_survey=bare)
        _all_sent()
    yield Finished(handle, form, bare)


def _mails(handle: StackHandle) -> list[EmailMessage]:
    return [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in sorted(handle.settings.mail_dir.glob("*.eml"))
    ]


def _to(msg: EmailMessage) -> str:
    return str(msg["To"]).lower()


# --- ENG-8 ---------------------------------------------------------------------------------


def test_construction_contact_receives_the_report_copies(finished: Finished) -> None:
    """ENG-8: copies of the survey report and the environment acceptance report go to the
    customer's construction department — the contact of role `construction`, by real mail."""
    construction = finished.form.contacts_with(Role.CONSTRUCTION)[0]
    code = finished.form.code
    mails = [m for m in _mails(finished.handle) if f"[{code}]" in str(m["Subject"])]
    theirs = [m for m in mails if construction.email in _to(m)]
    subjects = [str(m["Subject"]) for m in theirs]
    assert any("勘察报告与环境验收报告 / Survey and environment reports" in s for s in subjects), subjects
    assert any("环境验收报告（双方已签字）" in s for s in subjects), subjects  # ENG-10's, signed by both
    survey_copy = next(m for m in theirs if "Survey and environment reports" in str(m["Subject"]))
    text = survey_copy.get_body(preferencelist=("plain",))
    assert text is not None
    body = text.get_content()
    assert "工程勘察报告" in body and "环境验收报告" in body  # both reports' summaries
    assert survey_copy["X-Siteflow-Audit-Witness"]  # mail to the customer's side carries a witness
    customers = {c.email for c in finished.form.contacts_with(Role.CUSTOMER)}
    copies_to = {
        e
        for m in mails
        if "Survey and environment reports" in str(m["Subject"])
        for e in customers
        if e in _to(m)
    }
    assert not copies_to, f"the copies went to the signing customer contacts instead: {copies_to}"


def test_without_a_construction_contact_the_customer_gets_the_copies_and_the_pm_is_told(
    finished: Finished,
) -> None:
    """ENG-8 on a form that names no construction-department contact: nothing is lost (the
    customer contacts get the copies) and the PM is told once what the form lacks."""
    code = finished.bare.code
    with finished.handle.active():
        wait_for_open_gate(code, "installation-readiness", timeout=120)  # its survey is closed
        _all_sent()
    mails = [m for m in _mails(finished.handle) if f"[{code}]" in str(m["Subject"])]
    copies = [m for m in mails if "Survey and environment reports" in str(m["Subject"])]
    assert {c.email for c in finished.bare.contacts_with(Role.CUSTOMER)} == {
        e for m in copies for e in [c.email for c in finished.bare.contacts] if e in _to(m)
    }
    pm = finished.bare.contacts_with(Role.PM)[0]
    told = [m for m in mails if "No construction-department contact (ENG-8)" in str(m["Subject"])]
    assert [pm.email in _to(m) for m in told] == [True]


# --- ENG-29 --------------------------------------------------------------------------------


def _rewrite(
    package: Path, target: Path, change: dict[str, bytes], extra: dict[str, bytes] | None = None
) -> Path:
    """The package as someone who edits it would leave it: re-zipped with new contents."""
    with zipfile.ZipFile(package) as src, zipfile.ZipFile(target, "w") as out:
        for info in src.infolist():
            out.writestr(info, change.get(info.filename, src.read(info)))
        for name, data in (extra or {}).items():
            out.writestr(name, data)
    return target


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def test_handover_package_of_a_finished_project_verifies_and_names_each_changed_file(
    finished: Finished, tmp_path: Path
) -> None:
    """ENG-29: the package holds every document's final version as PDF, the audit report as
    PDF and JSON, the memos (ENG-28) and a signed manifest tied to the audit chain."""
    from siteflow import audit_report
    from siteflow.handover.verify import verify_package

    handle, code = finished.handle, finished.form.code
    package = tmp_path / f"{code}.zip"
    built = cli(handle, "handover", code, "--output", str(package))
    assert "wrote" in built.stdout and package.is_file()
    checked = cli(handle, "handover", "verify", str(package))
    assert "handover package verified" in checked.stdout and "compare that key id" in checked.stdout

    with zipfile.ZipFile(package) as z:
        names = set(z.namelist())
        manifest = json.loads(z.read("manifest.json"))
        memos = json.loads(z.read("memos/memos.json"))
        audit = json.loads(z.read("audit/audit-report.json"))
        pdfs = {n: z.read(n) for n in names if n.endswith(".pdf")}
    listed = {f["path"]: f for f in manifest["files"]}
    assert names == set(listed) | {"manifest.json", "manifest.sig"}
    assert manifest["project"]["code"] == code and manifest["siteflow_version"]
    assert manifest["built_by"].startswith("host-admin:")
    for needed in ("acceptance-certificate", "survey-report", "environment-acceptance", "handover-record"):
        doc = next(
            f for f in manifest["files"] if f["kind"] == "document-pdf" and f["document"]["doc_key"] == needed
        )
        assert doc["document"]["status"] == "signed", doc
    arrival = [
        f["document"]["version"] for f in manifest["files"] if f["path"].startswith("documents/arrival-")
    ]
    assert set(arrival) == {2}  # the final version only: v1 was refused and superseded (ENG-15)
    assert all(data.startswith(b"%PDF-") for data in pdfs.values()) and "audit/audit-report.pdf" in pdfs
    assert memos["open"] and any(m["kind"] == "project-memo" and m["resolution_date"] for m in memos["open"])
    assert all(m["document"] in listed for m in memos["open"])  # each memo's own PDF is in the package
    head = manifest["audit_chain"]
    assert (audit["chain"]["records"], audit["chain"]["head"]) == (head["seq"], head["hash"])
    assert head["signature"] and head["key_id"]
    with handle.active():
        events = audit_report.build(code, with_prefect=False)["events"]
    recorded = [e for e in events if e["kind"] == "handover.built"]
    assert recorded and recorded[-1]["payload"]["records"] == head["seq"]
    assert recorded[-1]["payload"]["manifest_sha256"] in built.stdout

    # one changed byte in each kind of file fails, naming the file
    pdf_name = next(n for n in pdfs if n.startswith("documents/acceptance-certificate"))
    with zipfile.ZipFile(package) as z:
        originals = {n: z.read(n) for n in (pdf_name, "audit/audit-report.json", "manifest.json")}
    at_built_by = originals["manifest.json"].index(b'"built_by": "') + len(b'"built_by": "')
    cases = {
        pdf_name: _flip(originals[pdf_name], len(originals[pdf_name]) // 2),
        "audit/audit-report.json": _flip(originals["audit/audit-report.json"], 40),
        "manifest.json": _flip(originals["manifest.json"], at_built_by),  # still valid JSON
    }
    for n, (name, changed) in enumerate(cases.items()):
        assert changed != originals[name] and len(changed) == len(originals[name])
        bad = _rewrite(package, tmp_path / f"bad-{n}.zip", {name: changed})
        verdict = verify_package(bad)
        assert not verdict.ok and [p.path for p in verdict.problems] == [name], verdict.problems
    manifest_problem = verify_package(tmp_path / "bad-2.zip").problems[0]
    assert "changed after it was built" in manifest_problem.what

    # the CLI says so, bilingual, and exits 1
    refused = cli(handle, "handover", "verify", str(tmp_path / "bad-0.zip"), check=False)
    assert refused.returncode == 1
    assert (
        "竣工资料包校验失败 / handover package does NOT verify" in refused.stderr
        and pdf_name in refused.stderr
    )

    # an extra file is refused, by name
    extra = _rewrite(package, tmp_path / "extra.zip", {}, {"documents/extra.pdf": b"%PDF-1.7 not ours"})
    verdict = verify_package(extra)
    assert [(p.path, "not listed" in p.what) for p in verdict.problems] == [("documents/extra.pdf", True)]

    # a file taken out is named too, and a manifest that is not a manifest
    with zipfile.ZipFile(package) as z:
        kept = {i.filename: z.read(i) for i in z.infolist() if i.filename != "memos/memos.json"}
    gone = tmp_path / "gone.zip"
    with zipfile.ZipFile(gone, "w") as out:
        for name, data in kept.items():
            out.writestr(name, data)
    assert [p.path for p in verify_package(gone).problems] == ["memos/memos.json"]
    broken = _rewrite(
        package, tmp_path / "broken.zip", {"manifest.json": b'{"format": "siteflow-handover/1"}'}
    )
    problems = verify_package(broken).problems
    assert [p.path for p in problems] == ["manifest.json"] and "not a well-formed manifest" in problems[
        0
    ].what


def test_handover_is_refused_before_acceptance_and_offered_on_the_web(
    finished: Finished, tmp_path: Path
) -> None:
    """ENG-29/ENG-30: no package before preliminary acceptance (the project without a
    construction contact is still in installation); the workspace offers the package to who
    may export the trail (COM-6) and records who took it."""
    from siteflow import audit_report
    from siteflow.handover.verify import verify_package
    from tests.cli_user import logged_in

    handle = finished.handle
    early = cli(handle, "handover", finished.bare.code, "--output", str(tmp_path / "early.zip"), check=False)
    assert early.returncode == 1 and "not accepted yet" in early.stderr and "ENG-29" in early.stderr
    assert not (tmp_path / "early.zip").exists()
    unknown = cli(handle, "handover", "NO-SUCH-1", "--output", str(tmp_path / "none.zip"), check=False)
    assert unknown.returncode == 1 and "no project NO-SUCH-1" in unknown.stderr

    code = finished.form.code
    pm = finished.form.contacts_with(Role.PM)[0]
    engineer = finished.form.contacts_with(Role.ENGINEER)[0]
    from siteflow.identity.roles import StaffRole

    with handle.active():
        tokens = {
            who.email: json.loads(
                (logged_in(tmp_path / who.email, who.name, who.email, role) / "credentials.json").read_text()
            )["token"]
            for who, role in ((pm, StaffRole.PM), (engineer, StaffRole.ENGINEER))
        }
    base = f"http://127.0.0.1:{handle.settings.web_port}"
    url = f"{base}/projects/{code}/handover.zip"
    assert httpx.get(url, timeout=30).status_code == 401
    denied = httpx.get(url, headers={"Authorization": f"Bearer {tokens[engineer.email]}"}, timeout=30)
    assert denied.status_code == 403  # an engineer of the project sees it, but exports nothing
    got = httpx.get(url, headers={"Authorization": f"Bearer {tokens[pm.email]}"}, timeout=300)
    assert got.status_code == 200 and got.headers["content-type"] == "application/zip"
    package = tmp_path / "web.zip"
    package.write_bytes(got.content)
    assert verify_package(package).ok
    with zipfile.ZipFile(io.BytesIO(got.content)) as z:
        assert json.loads(z.read("manifest.json"))["built_by"] == pm.email
    with handle.active():
        last = [
            e for e in audit_report.build(code, with_prefect=False)["events"] if e["kind"] == "handover.built"
        ]
    assert (last[-1]["actor"], last[-1]["payload"]["via"]) == (pm.email, "web:token")


def test_each_documents_prefect_artifact_links_its_pdf_and_names_its_code(finished: Finished) -> None:
    """In the Prefect UI a document's artifact (one per document key, its latest version) links
    the printable PDF on siteflow's web and names the verification code printed on it."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactCollectionFilter, ArtifactCollectionFilterKey

    from models.document import Document
    from siteflow.db import read_scope
    from siteflow.documents import codes

    code = finished.form.code
    key = f"{code.lower()}-acceptance-certificate"
    with finished.handle.active():
        with get_client(sync_client=True) as client:
            (artifact,) = client.read_latest_artifacts(
                artifact_filter=ArtifactCollectionFilter(key=ArtifactCollectionFilterKey(any_=[key]))
            )
        with read_scope() as session:
            doc = session.query(Document).filter_by(subject=code, doc_key="acceptance-certificate").one()
            printed = codes.grouped(codes.code_for(session, doc.id))
    markdown = str(artifact.data)
    assert f"/documents/{doc.id}/pdf)" in markdown and "printable PDF" in markdown
    assert f"`{printed}`" in markdown and f"/verify/{printed}" in markdown
