"""What every `siteflow` command prints and reads: the consoles (made at first use), the one
way to fail with an exit code, structured files, a refused form's message, and table columns.

Moved here from `siteflow/cli.py` so that command groups in their own modules share them
without importing the CLI (an import circle); `siteflow.cli` re-exports them under their old
names. Imports nothing heavy at module level (tests/test_cli_startup.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from pydantic import ValidationError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table


class _Out:
    """A rich Console made at its first use: importing rich costs tens of milliseconds that
    `gates decide` should not spend before its decision is recorded."""

    def __init__(self, stderr: bool = False) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    @property
    def rich(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr)
        return self._console

    def print(self, *objects: Any, **options: Any) -> None:
        self.rich.print(*objects, **options)


console = _Out()
err = _Out(stderr=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print the error and return the exit to raise: ``raise fail("…", code=2)``."""
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def load_structured(path: Path) -> Any:
    """YAML or JSON, with a clear message for a missing or unparsable file."""
    import yaml

    if not path.exists():
        raise fail(f"{path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise fail(f"{path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}") from None


def validation_message(exc: ValidationError) -> str:
    """A refused form's problems, each naming its field (escaped: a bad character is not
    printed to the terminal)."""
    from models.text_kinds import problems

    lines = [f"  - {line}" for line in problems(exc)]
    return "the form is not valid (nothing was started):\n" + "\n".join(lines)


def id_column(table: Table, header: str) -> None:
    """A column of ids a user copies into the next command (window ids, project codes,
    element names): never wrapped or cut, so on a narrow terminal the other columns wrap."""
    table.add_column(header, no_wrap=True)


def text_columns(table: Table, *headers: str) -> None:
    for header in headers:
        table.add_column(header, overflow="fold")
