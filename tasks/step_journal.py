"""The step journal of one element: every command written before it is sent and completed
after, so a re-run never sends a finished command twice (UPG-5).

Why it batches: on SQLite every commit waits for an fsync (~3 ms here) under the one write
lock, so a window's elements queue behind each other's commits, not behind their commands.
A journal used to take three transactions per command (look up, begin, complete) and three
per evaluated check. Now:

- the element's rows are read once (a read that takes no write lock) when the journal is
  first used, and kept up to date with its own writes;
- a command's *begin* row is committed before the command is sent — the rule — and in the
  same transaction go the writes that were waiting: the previous command's completion, the
  checks evaluated since, the element's phase;
- :meth:`Journal.flush` commits what is still waiting; the element's tasks call it before
  they return, so the flow never acts on a result that is not recorded.

A completion not yet committed when siteflow dies leaves its row ``running``: a re-run
reconciles it by reading the element, exactly as for a kill while the command ran. Another
worker on the same element (a restart while the old run still runs) is told apart by the
journal's unique (stage, item, attempt): whichever writes a row first owns that attempt.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.runbook import Command, Step
from models.upgrade import ElementPhase, JournalEntry, Stage, StepResult
from siteflow.db import read_scope, session_scope
from siteflow.elements import ElementDriver, ElementUnreachable
from tasks.upgrade_records import move_element

Write = Callable[[Session], None]


@dataclass(frozen=True)
class Entry:
    item: str
    result: StepResult
    output: str
    note: str

    @property
    def ok(self) -> bool:
        return self.result in (StepResult.PASSED, StepResult.RECONCILED)


@dataclass
class Row:
    """The latest attempt of one journal item, as this journal last wrote or read it."""

    id: str
    item: str
    attempt: int
    result: StepResult
    output: str
    note: str

    def entry(self) -> Entry:
        return Entry(self.item, self.result, self.output, self.note)

    @property
    def finished(self) -> bool:
        return self.result is not StepResult.RUNNING


def _row(r: JournalEntry) -> Row:
    return Row(r.id, r.item, r.attempt, StepResult(r.result), r.output, r.note)


class Journal:
    """The journal of one element in one window; one instance per task (not thread-safe)."""

    def __init__(
        self, window_id: str, element: str, operator: str, driver: ElementDriver, scale: float
    ) -> None:
        self.window_id, self.element, self.operator = window_id, element, operator
        self.driver, self.scale = driver, scale
        self._rows: dict[tuple[str, str], Row] | None = None
        self._waiting: list[Write] = []

    def timeout(self, cmd: Command) -> float:
        return max(5.0, cmd.est_seconds * 3) * self.scale + 5.0

    # --- what is recorded --------------------------------------------------------------

    def _known(self) -> dict[tuple[str, str], Row]:
        """The element's rows, latest attempt per item, read on first use."""
        if self._rows is None:
            self._rows = {}
            with read_scope() as session:
                for r in session.execute(
                    select(JournalEntry)
                    .where(JournalEntry.window_id == self.window_id, JournalEntry.element == self.element)
                    .order_by(JournalEntry.attempt)
                ).scalars():
                    self._rows[(r.stage, r.item)] = _row(r)
        return self._rows

    def _reread(self, stage: Stage, item: str) -> Row | None:
        """The latest attempt as the database has it now (another worker wrote one)."""
        with read_scope() as session:
            r = session.execute(
                select(JournalEntry)
                .where(
                    JournalEntry.window_id == self.window_id,
                    JournalEntry.element == self.element,
                    JournalEntry.stage == stage.value,
                    JournalEntry.item == item,
                )
                .order_by(JournalEntry.attempt.desc())
                .limit(1)
            ).scalar_one_or_none()
            row = _row(r) if r is not None else None
        if row is not None:
            self._known()[(stage.value, item)] = row
        return row

    def started(self, stage: Stage, item: str) -> bool:
        return (stage.value, item) in self._known()

    # --- writes ----------------------------------------------------------------------------

    def phase(self, phase: ElementPhase, **fields: Any) -> None:
        """Move the element forward with the next journal write (or :meth:`flush`)."""
        self._waiting.append(lambda s: move_element(s, self.window_id, self.element, phase, **fields))

    def flush(self) -> None:
        """Commit every write still waiting, in one transaction."""
        if self._waiting:
            with session_scope() as session:
                for write in self._waiting:
                    write(session)
            self._waiting.clear()

    def _complete(self, row: Row, result: StepResult, output: str, note: str = "") -> Entry:
        row.result, row.output, row.note = result, output[-20000:], note
        at = datetime.now(UTC)

        def write(session: Session) -> None:
            found = session.get(JournalEntry, row.id)
            assert found is not None
            found.result, found.output, found.note, found.ended_at = result.value, row.output, note, at

        self._waiting.append(write)
        return row.entry()

    def _begin(self, stage: Stage, cmd: Command, item: str, attempt: int) -> Row | None:
        """Commit the attempt's row, with every write waiting; None when another worker holds
        this attempt (it is theirs to finish)."""
        new = JournalEntry(
            window_id=self.window_id,
            element=self.element,
            stage=stage.value,
            item=item,
            attempt=attempt,
            title=cmd.title,
            operator=self.operator,
            command=cmd.command,
            expected=cmd.expect,
        )
        with session_scope() as session:
            for write in self._waiting:
                write(session)
            try:
                with session.begin_nested():  # a clash undoes the new row only
                    session.add(new)
            except IntegrityError:
                new_row = None
            else:
                new_row = _row(new)
        self._waiting.clear()
        if new_row is not None:
            self._known()[(stage.value, item)] = new_row
        return new_row

    # --- the journal's two operations ----------------------------------------------------

    def check(self, stage: Stage, item: str, title: str, ok: bool, note: str) -> Entry:
        """An evaluated item (no command), recorded once, with the next write."""
        prev = self._known().get((stage.value, item))
        if prev is not None and prev.finished:
            return prev.entry()
        result = StepResult.PASSED if ok else StepResult.FAILED
        if prev is not None:  # left running by an older siteflow: settle it
            return self._complete(prev, result, "", note)
        row = Row("", item, 1, result, "", note)
        self._known()[(stage.value, item)] = row
        ended = datetime.now(UTC)

        def write(session: Session) -> None:
            entry = JournalEntry(
                window_id=self.window_id,
                element=self.element,
                stage=stage.value,
                item=item,
                attempt=1,
                title=title,
                operator=self.operator,
                command="-",
                expected="",
                result=result.value,
                note=note,
                ended_at=ended,
            )
            try:
                with session.begin_nested():
                    session.add(entry)
            except IntegrityError:
                pass  # another worker recorded it first; the check is the same

        self._waiting.append(write)
        return row.entry()

    async def run(self, stage: Stage, cmd: Command, item: str | None = None) -> Entry:
        item = item or cmd.id
        prev = self._known().get((stage.value, item))
        attempt = 1
        if prev is not None and prev.finished:
            return prev.entry()  # done before: never run twice (UPG-5)
        if prev is not None:  # interrupted half-way: reconcile by reading the element (UPG-5)
            reconciled = await self._reconcile(prev, cmd)
            if reconciled is not None:
                return reconciled
            attempt = prev.attempt + 1
        row = self._begin(stage, cmd, item, attempt)
        if row is None:
            latest = self._reread(stage, item)
            assert latest is not None
            return latest.entry()
        try:
            result = await self.driver.run(cmd, self.timeout(cmd))
        except (TimeoutError, ElementUnreachable) as exc:
            return self._complete(row, StepResult.FAILED, "", str(exc))
        outcome = StepResult.PASSED if result.ok else StepResult.FAILED
        note = "" if result.ok else f"output does not match the expected {cmd.expect!r}"
        return self._complete(row, outcome, result.output, note)

    async def _reconcile(self, prev: Row, cmd: Command) -> Entry | None:
        """Settle an interrupted attempt; None means: run it again as a new attempt."""
        if not isinstance(cmd, Step):  # a read-only command: reading again is harmless
            self._complete(prev, StepResult.FAILED, prev.output, "interrupted; read again")
            return None
        if cmd.verify is None:
            note = "interrupted, and the runbook gives no way to read back its effect: roll back"
            return self._complete(prev, StepResult.FAILED, prev.output, note)
        try:
            check = await self.driver.run(cmd.verify, self.timeout(cmd.verify))
        except (TimeoutError, ElementUnreachable) as exc:
            note = f"interrupted, and its effect could not be read back ({exc}): roll back"
            return self._complete(prev, StepResult.FAILED, prev.output, note)
        if check.ok:
            note = f"interrupted; found applied on the element ({cmd.verify.command!r})"
            return self._complete(prev, StepResult.RECONCILED, check.output, note)
        self._complete(prev, StepResult.FAILED, check.output, "interrupted before it took effect; run again")
        return None
