"""The flow's view of a project's records: pass through what is done, do what is not.

Every method first looks in the progress read at the start of this (re-)run and returns
what is already recorded; only new work becomes a task run. The tasks stay idempotent on
their own, so a stale view can cost a task run but never a duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from flows.gate_wait import await_gate
from models.document import DocumentStatus
from models.document_body import DocumentBody
from models.gate_spec import GateSpec
from models.project_input import ProjectIn, Role
from tasks.documents import DocumentRead, body_digest, issue_document, render_summary, sign_document
from tasks.gates import GateRead
from tasks.progress import DocumentState, Progress, load_progress
from tasks.project_records import PHASES, enter_phase, notify, record_memo, send_invite

NOT_INVITED = frozenset({Role.OFFICE, Role.REMOTE_SUPPORT, Role.PRODUCT_MANAGER})
"""Told of what concerns them by notice; they do not come to site visits (COM-3)."""


@dataclass
class Ledger:
    project: ProjectIn
    progress: Progress

    @classmethod
    def load(cls, project: ProjectIn) -> Ledger:
        return cls(project, load_progress(project.code))

    @property
    def code(self) -> str:
        return self.project.code

    def decided(self, gate_key: str) -> bool:
        """Whether this gate was decided before this (re-)run: a replayed round, not a live one."""
        return gate_key in self.progress.closed_gates

    def began(self, gate_key: str) -> bool:
        """Whether this gate was opened (decided or not) before this (re-)run."""
        return gate_key in self.progress.opened_gates or gate_key in self.progress.closed_gates

    def gate(self, spec: GateSpec, document_md: str = "") -> GateRead:
        done = self.progress.closed_gates.get(spec.key)
        if done is not None:
            return done
        choices = {  # the gate's form offers the project's own sites and contract items
            "site_id": tuple(s.site_id for s in self.project.sites),
            "item_code": tuple(i.item_code for i in self.project.contract_items),
        }
        return await_gate(self.code, spec, document_md, choices)

    def issue(self, doc_key: str, body: DocumentBody) -> DocumentRead:
        body_sha = body_digest(body)
        known = next((d for d in self.progress.documents.get(doc_key, []) if d.body_sha256 == body_sha), None)
        if known is not None:
            return DocumentRead(
                id=known.id,
                subject=self.code,
                kind=known.kind,
                doc_key=doc_key,
                version=known.version,
                title=known.title,
                sha256=known.sha256,
                status=known.status,
                summary_md=render_summary(body, known.version, known.sha256),
            )
        doc = issue_document(doc_key, body)
        self.progress.documents.setdefault(doc_key, []).append(
            DocumentState(
                id=doc.id,
                kind=doc.kind,
                title=doc.title,
                version=doc.version,
                sha256=doc.sha256,
                body_sha256=body_sha,
                status=doc.status,
            )
        )
        return doc

    def sign(self, doc: DocumentRead, signers: list[str]) -> None:
        if doc.status != DocumentStatus.SIGNED.value:
            sign_document(doc.id, signers)

    def notify(self, dedup_key: str, recipients: list[str], title: str, text: str) -> None:
        if any(f"{dedup_key}:{r}" not in self.progress.notices for r in recipients):
            notify(self.code, dedup_key, recipients, title, text)

    def invite(self, key: str, summary: str, first_day: date, last_day: date, description: str = "") -> None:
        """A calendar invite to every contact who comes on site (COM-3); sent again only when moved.

        Call it for the live round only (see :meth:`decided`): a replay passing through earlier
        rounds would otherwise move the invite back through every date it ever had."""
        if self.progress.invites.get(key) == (first_day, last_day):
            return
        people = [(c.name, c.email) for c in self.project.contacts if c.role not in NOT_INVITED]
        where = "; ".join(f"{s.name}, {s.address}" for s in self.project.sites)
        send_invite(self.code, key, summary, first_day, last_day, people, description, where)

    def memo(
        self,
        memo_key: str,
        kind: str,
        description: str,
        owner: str,
        resolution_date: date | None,
        document_id: str | None,
    ) -> None:
        if memo_key not in self.progress.memos:
            record_memo(self.code, memo_key, kind, description, owner, resolution_date, document_id)

    def phase(self, phase: str) -> None:
        if PHASES.index(phase) > PHASES.index(self.progress.phase):
            enter_phase(self.code, phase)
            self.progress.phase = phase
