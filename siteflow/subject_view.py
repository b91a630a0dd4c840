"""What a project's or an upgrade window's page shows, read from our tables (issue #9 item 2).

The page is the audit report (`siteflow.audit_report.build`: phases, gates, signatures,
documents, the hash chain and its verification) shaped for people: every time on the site's
clock with the UTC instant beside it, every signature with how it was made (its door and
proof, `GateDecision.provenance`: "identity not verified", "recorded by X from a paper signed
by Y"), every document with its stored HTML to view in the page and to download. It is only a
read model: who may see it is decided by the web layer (COM-6, `siteflow.web.access`).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import select

from models.document import Document
from siteflow import audit_report
from siteflow.db import read_scope
from siteflow.queries import list_windows
from siteflow.site_time import site_time, subject_zone

BODY_RE = re.compile(r"<body[^>]*>(.*)</body>", re.DOTALL | re.IGNORECASE)


def document_body(html: str) -> str:
    """A stored document's body, to show inside a page (its own ``<html>``, ``<head>`` and page
    style stay out of ours); the whole text when it has no body element."""
    found = BODY_RE.search(html)
    return found.group(1) if found else html


def subject_page(subject: str) -> dict[str, Any]:
    """The page's content; raises `audit_report.UnknownSubject` for an unknown subject."""
    report = audit_report.build(subject, with_prefect=False)
    zone = subject_zone(subject)

    def when(value: datetime | str | None) -> str:
        return site_time(value, zone, seconds=True)  # the trail's records come seconds apart

    gates = [
        {
            **g,
            "opened": when(g["opened_at"]),
            "decided": when(g["decided_at"]),
            "due": when(g["deadline"]),
            "signatures": [{**s, "when": when(s["at"])} for s in g["signatures"]],
            "refused": [{**a, "when": when(a["at"])} for a in g["attempts"] if not a["accepted"]],
        }
        for g in report["gates"]
    ]
    with read_scope() as session:
        stored = {
            d.id: d.content
            for d in session.execute(select(Document).where(Document.subject == subject)).scalars()
        }
    documents = [
        {**d, "signed": when(d["signed_at"]), "body": document_body(stored.get(d["id"], ""))}
        for d in report["documents"]
    ]
    phases = [{**p, "began": when(p["started"]), "ended": when(p["completed"])} for p in report["phases"]]
    events = [{**e, "when": when(e["at"])} for e in report["events"]]
    window = next(iter(list_windows(subject)), None)
    return {
        "header": report["project"],
        "zone": zone or "UTC",
        "window": None
        if window is None
        else {**window.model_dump(), "starts": when(window.starts_at), "ends": when(window.deadline)},
        "phases": phases,
        "gates": gates,
        "documents": documents,
        "memos": report["memos"],
        "chain": report["chain"],
        "events": events,
    }
