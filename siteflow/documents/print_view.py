"""What a printed document shows, read from siteflow's tables into one typed view.

The PDF template renders only this view: the version's typed body (the same data its HTML
was rendered from), the project's sites and named people, and the signatures as the decision
path recorded them — who, when (on the site's clock, UTC beside it) and through which door
(``gate_decisions.door``, the ``door`` of each ``gate.decision`` record in the audit chain).

Named people: the paper names the person, not the role — the office's interface person
(办事处接口人) an acceptance certificate returns to (ENG-31) is printed by name from the
project's contacts. The body itself is not changed for it: it is the hashed content of the
version, and a flow replaying its earlier steps must get the same body back (ENG-15).
"""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.document import Document, DocumentStatus
from models.document_body import DocumentBody, SignatureLine
from models.document_print import DocumentScan
from models.gate import Gate, GateDecision
from models.gate_spec import Door
from models.project_input import ROLE_SIDE, ProjectIn, Role, Side
from models.roster import roster_of
from siteflow.documents import codes
from siteflow.documents.qr import qr_svg
from siteflow.site_time import site_time, zone_of

# Papers the customer stamps (盖章): a stamp area and date lines are printed on them.
STAMPED_KINDS: dict[str, str] = {
    "arrival-certificate": "ENG-13",  # signed and stamped by the customer on site
    "acceptance-certificate": "ENG-31",  # three copies, back to the office's interface person
    "training-record": "ENG-24",  # signed and stamped by the customer
}

ROLE_LABELS: dict[str, tuple[str, str]] = {
    Role.CUSTOMER.value: ("客户代表", "Customer representative"),
    Role.PM.value: ("项目经理", "Project manager"),
    Role.SUPERVISOR.value: ("工程督导", "Supervisor"),
    Role.ENGINEER.value: ("工程师", "Engineer"),
    Role.OFFICE.value: ("办事处接口人", "Office interface person"),
    Role.UPGRADE_GUIDE.value: ("升级指导", "Upgrade guide"),
    Role.OPERATOR.value: ("操作员", "Operator"),
    Role.CONSTRUCTION.value: ("客户建设部", "Customer construction department"),  # ENG-8
    Role.REMOTE_SUPPORT.value: ("远程技术支持", "Remote support"),  # ENG-22
    Role.PRODUCT_MANAGER.value: ("产品经理", "Product manager"),  # ENG-22
    Role.THIRD_PARTY.value: ("第三方负责人", "Third-party lead"),  # COM-4
}
"""Every contact role, as the paper names it (a role without a label would print its id)."""

DOOR_LABELS: dict[str, str] = {
    Door.WEB.value: "工作台（已登录）/ workspace, signed in",
    Door.CLI.value: "命令行（个人令牌）/ CLI, personal token",
    Door.EMAIL.value: "本人邮件链接 / own mailed link",
    Door.PAPER.value: "纸质签字（扫描件）/ paper, scanned",
    Door.SYSTEM.value: "系统默认 / system default",
    Door.PREFECT_UI.value: "Prefect UI",
    Door.DEMO.value: "演示（身份未核实）/ demo, identity not verified",
}

STATUS_LABELS: dict[str, tuple[str, str]] = {
    DocumentStatus.ISSUED.value: ("已发布，待签字", "Issued, not yet signed"),
    DocumentStatus.SIGNED.value: ("已签字", "Signed"),
    DocumentStatus.SUPERSEDED.value: ("已被新版本取代", "Superseded by a newer version"),
}

_SIGNER = re.compile(r"^(?P<name>.*?)\s*<(?P<email>[^>]*)>$")


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class SiteRow(_View):
    site_id: str
    name: str
    address: str


class Person(_View):
    role_zh: str
    role_en: str
    name: str
    email: str
    phone: str


class Signature(_View):
    """One recorded signature, as printed in its block."""

    name: str
    email: str
    role: str
    decision: str
    at: str  # on the site's clock, UTC beside it
    at_utc: datetime | None
    door: str
    door_label: str
    recorded_by: str | None = None
    scan_sha256: str | None = None


class SignatureBlock(_View):
    """A party's block on the paper: its caption, who signed it (maybe nobody yet), and
    whether it carries a stamp area and date lines."""

    party_zh: str
    party_en: str
    signed: list[Signature]
    stamp: bool


class PrintView(_View):
    document_id: str
    subject: str
    kind: str
    doc_key: str
    version: int
    title_zh: str
    title_en: str
    rule: str
    status: str
    status_zh: str
    status_en: str
    sha256: str
    customer: str
    issued_at: str
    signed_at: str | None
    code: str
    code_grouped: str
    verify_url: str
    qr_svg: str
    copies: int
    stamp_rule: str | None
    sites: list[SiteRow]
    people: list[Person]
    office_people: list[Person]
    body: DocumentBody | None
    legacy_html: str | None  # versions issued before the typed body was kept
    blocks: list[SignatureBlock]
    scans: int


class UnknownDocument(LookupError):
    """No document version with that id."""


def _side_of_line(line: SignatureLine) -> Side:
    return (
        Side.CUSTOMER if line.party_zh.startswith("客户") or "Customer" in line.party_en else Side.CONTRACTOR
    )


def _side_of_role(role: str) -> Side | None:
    try:
        return ROLE_SIDE.get(Role(role))
    except ValueError:
        return None


def _signatures(session: Session, doc: Document, zone: str | None) -> list[Signature]:
    rows = session.execute(
        select(GateDecision)
        .join(Gate, Gate.id == GateDecision.gate_id)
        .where(Gate.document_id == doc.id)
        .order_by(GateDecision.decided_at)
    ).scalars()
    found = [
        Signature(
            name=d.signer_name,
            email=d.signer_email,
            role=d.role,
            decision=d.decision,
            at=site_time(d.decided_at, zone),
            at_utc=d.decided_at,
            door=d.door,
            door_label=DOOR_LABELS.get(d.door, d.door),
            recorded_by=d.recorded_by,
            scan_sha256=d.evidence_sha256,
        )
        for d in rows
    ]
    if found or not doc.signed_by:
        return found
    # signed without a gate decision on this version (older rows): the names on the version
    return [_from_signed_by(part.strip(), doc, zone) for part in doc.signed_by.split(";") if part.strip()]


def _from_signed_by(text: str, doc: Document, zone: str | None) -> Signature:
    match = _SIGNER.match(text)
    name, email = (match["name"], match["email"]) if match else (text, "")
    return Signature(
        name=name,
        email=email,
        role="",
        decision="sign",
        at=site_time(doc.signed_at, zone) if doc.signed_at else "",
        at_utc=doc.signed_at,
        door="",
        door_label="—",
    )


def _blocks(body: DocumentBody | None, signed: list[Signature], stamp: bool) -> list[SignatureBlock]:
    """Each signature line of the body with the signatures of its side; signatures of a side
    the body prints no line for (a PM's approval of a plan) get a block of their own."""
    lines = body.signatures if body is not None else []
    blocks: list[SignatureBlock] = []
    used: set[int] = set()
    for line in lines:
        side = _side_of_line(line)
        mine = [i for i, s in enumerate(signed) if i not in used and _side_of_role(s.role) is side]
        used.update(mine)
        blocks.append(
            SignatureBlock(
                party_zh=line.party_zh,
                party_en=line.party_en,
                signed=[signed[i] for i in mine],
                stamp=stamp and side is Side.CUSTOMER,
            )
        )
    rest = [s for i, s in enumerate(signed) if i not in used]
    if rest:
        blocks.append(SignatureBlock(party_zh="签字", party_en="Signed", signed=rest, stamp=False))
    if not blocks and stamp:
        blocks.append(
            SignatureBlock(party_zh="客户代表", party_en="Customer representative", signed=[], stamp=True)
        )
    return blocks


def _people(roster: object) -> list[Person]:
    contacts = getattr(roster, "contacts", [])
    order = list(ROLE_LABELS)
    people = [
        Person(
            role_zh=ROLE_LABELS.get(c.role.value, (c.role.value, c.role.value))[0],
            role_en=ROLE_LABELS.get(c.role.value, (c.role.value, c.role.value))[1],
            name=c.name,
            email=c.email,
            phone=c.phone,
        )
        for c in contacts
    ]
    return sorted(people, key=lambda p: order.index(_role_key(p)) if _role_key(p) in order else len(order))


def _role_key(person: Person) -> str:
    return next((k for k, v in ROLE_LABELS.items() if v == (person.role_zh, person.role_en)), "")


def print_view(session: Session, document_id: str) -> PrintView:
    """The view of one version; its verification code is made now if it has none."""
    doc = session.get(Document, document_id)
    if doc is None:
        raise UnknownDocument(f"no document {document_id}")
    body = DocumentBody.model_validate_json(doc.body_json) if doc.body_json else None
    roster = roster_of(session, doc.subject)
    zone = zone_of(session, doc.subject)
    project = roster if isinstance(roster, ProjectIn) else None
    code = codes.code_for(session, doc.id)
    url = codes.verify_url(code)
    title_zh, _, title_en = doc.title.partition(" / ")
    stamp_rule = STAMPED_KINDS.get(doc.kind)
    people = _people(roster) if roster is not None else []
    scans = len(list(session.execute(select(DocumentScan.id).where(DocumentScan.document_id == doc.id))))
    status_zh, status_en = STATUS_LABELS.get(doc.status, (doc.status, doc.status))
    return PrintView(
        document_id=doc.id,
        subject=doc.subject,
        kind=doc.kind,
        doc_key=doc.doc_key,
        version=doc.version,
        title_zh=body.title_zh if body else title_zh,
        title_en=body.title_en if body else title_en,
        rule=body.rule if body else "",
        status=doc.status,
        status_zh=status_zh,
        status_en=status_en,
        sha256=doc.sha256,
        customer=body.customer if body else (project.customer if project else ""),
        issued_at=site_time(doc.created_at, zone),
        signed_at=site_time(doc.signed_at, zone) if doc.signed_at else None,
        code=code,
        code_grouped=codes.grouped(code),
        verify_url=url,
        qr_svg=qr_svg(url),
        copies=max(1, doc.copies),
        stamp_rule=stamp_rule,
        sites=[SiteRow(site_id=s.site_id, name=s.name, address=s.address) for s in project.sites]
        if project
        else [],
        people=people,
        office_people=[p for p in people if p.role_en == ROLE_LABELS[Role.OFFICE.value][1]],
        body=body,
        legacy_html=None if body else _body_fragment(doc.content),
        blocks=_blocks(body, _signatures(session, doc, zone), stamp_rule is not None),
        scans=scans,
    )


def _body_fragment(html: str) -> str:
    """The inside of a stored HTML document's <body>: our own escaped template's output."""
    start = html.find("<body>")
    end = html.rfind("</body>")
    return html[start + len("<body>") : end] if start >= 0 and end > start else ""
