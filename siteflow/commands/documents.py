"""`siteflow documents list|pdf|scan`: documents as printed papers (issue #12) — list a project's
versions, save a version's PDF, add the scan of a signed and stamped paper — as yourself, through
siteflow's web (:mod:`siteflow.web.document_prints`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from siteflow.commands.terminal import console, fail, id_column, text_columns

documents_app = typer.Typer(
    help="Documents as printed papers: list versions, save a PDF, add the scan of a signed paper "
    "(as yourself, through siteflow's web; issue #12).",
    no_args_is_help=True,
)


def _documents_of(code: str) -> list[dict[str, Any]]:
    from urllib.parse import quote

    from siteflow.api_client import ApiError, call, load_credentials

    try:
        rows: list[dict[str, Any]] = call(
            "GET", f"/api/documents?subject={quote(code)}", None, load_credentials()
        )
    except ApiError as exc:
        raise fail(str(exc), code=2 if exc.status == 404 else 1) from None
    return rows


def _pick_version(code: str, doc_key: str, version: int | None) -> dict[str, Any]:
    """The version asked for, or the newest; refused with the versions there are."""
    rows = [r for r in _documents_of(code) if r["doc_key"] == doc_key]
    if not rows:
        keys = sorted({r["doc_key"] for r in _documents_of(code)})
        raise fail(
            f"{code} has no document {doc_key!r}; its documents: {', '.join(keys) or 'none yet'}", code=2
        )
    if version is None:
        return max(rows, key=lambda r: r["version"])
    for row in rows:
        if row["version"] == version:
            return row
    have = ", ".join(str(r["version"]) for r in rows)
    raise fail(f"{code} {doc_key} has no version {version}; its versions: {have}", code=2)


@documents_app.command("list")
def documents_list(
    code: Annotated[str, typer.Argument(help="Project code or window id")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Every version of the subject's documents: status, verification code, SHA-256."""
    rows = _documents_of(code)
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD)
    id_column(table, "document")
    text_columns(table, "v", "status", "code", "sha256", "title")
    for r in rows:
        table.add_row(
            r["doc_key"], str(r["version"]), r["status"], r["verification_code"], r["sha256"][:16], r["title"]
        )
    console.print(table)


@documents_app.command("pdf")
def documents_pdf(
    code: Annotated[str, typer.Argument(help="Project code or window id")],
    doc_key: Annotated[str, typer.Argument(help="The document, as `siteflow documents list` names it")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Write the PDF to this file")],
    version: Annotated[int | None, typer.Option(help="A version; default the newest")] = None,
) -> None:
    """Save a version's PDF (what is printed, signed and stamped; copies numbered, ENG-31)."""
    from siteflow.api_client import ApiError, call_raw, load_credentials

    row = _pick_version(code, doc_key, version)
    try:
        response = call_raw("GET", f"/api/documents/{row['id']}/pdf", load_credentials())
    except ApiError as exc:
        raise fail(str(exc)) from None
    output.write_bytes(response.content)
    console.print(
        f"wrote {output}: {row['title']} v{row['version']} ({row['status']}), verification code "
        f"{row['verification_code']}, sha256 {row['sha256']}",
        markup=False,
        highlight=False,
    )


@documents_app.command("scan")
def documents_scan(
    code: Annotated[str, typer.Argument(help="Project code or window id")],
    doc_key: Annotated[str, typer.Argument(help="The document, as `siteflow documents list` names it")],
    file: Annotated[
        Path, typer.Argument(help="The scan of the signed, stamped paper: PDF, JPEG or PNG, ≤ 10 MB")
    ],
    version: Annotated[
        int | None, typer.Option(help="The version the paper is of; default the newest")
    ] = None,
) -> None:
    """Keep the scan of a signed, stamped paper beside its version, as yourself (recorded in the
    audit trail with its SHA-256). Exit 2 when refused (wrong type, too large, not yours)."""
    from siteflow.api_client import ApiError, call_raw, load_credentials

    if not file.is_file():
        raise fail(f"{file} does not exist", code=2)
    row = _pick_version(code, doc_key, version)
    content = file.read_bytes()
    try:
        response = call_raw(
            "POST",
            f"/api/documents/{row['id']}/scans",
            load_credentials(),
            files={"scan": (file.name, content, "application/octet-stream")},
        )
    except ApiError as exc:
        if exc.status in (403, 404, 413, 415, 422):
            raise fail(f"refused: {exc}; nothing was recorded", code=2) from None
        raise fail(str(exc)) from None
    out = response.json()
    said = "recorded" if out["new"] else "already on file"
    console.print(
        f"{said}: scan sha256 {out['sha256']} ({out['media_type']}, {out['size']} bytes) beside "
        f"{code} {out['doc_key']} v{out['version']}",
        markup=False,
        highlight=False,
    )
