"""``siteflow handover``: build and verify the handover package (竣工资料, ENG-29).

Building is a host command, like ``siteflow audit``: it reads siteflow's database and signs
with the audit key, so it runs where both are (the workspace offers the same package to
signed-in staff, ``/projects/CODE/handover.zip``). Verifying needs neither: anyone holding the
zip (and, ideally, the contractor's published keyring) can run it.

Exit codes: 0 built / verified; 1 refused or not verified (each problem names its file).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from siteflow.handover.package import DocumentRenderer

VERIFIED = "竣工资料包校验通过 / handover package verified"
NOT_VERIFIED = "竣工资料包校验失败 / handover package does NOT verify"


def handover(
    first: Annotated[str, typer.Argument(help="Project code to build the package of; or 'verify'")],
    package: Annotated[Path | None, typer.Argument(help="After 'verify': the package (.zip)")] = None,
    output: Annotated[Path | None, typer.Option(help="Where to write the package (.zip)")] = None,
    keyring: Annotated[
        Path | None,
        typer.Option(help="With verify: the audit keys' public keyring.json as the contractor published it"),
    ] = None,
) -> None:
    """`siteflow handover CODE --output FILE.zip` builds a finished project's handover package
    (ENG-29: final documents as PDF, audit report as PDF and JSON, memos, signed manifest);
    `siteflow handover verify FILE.zip [--keyring keyring.json]` checks one."""
    from siteflow.commands.terminal import console, fail

    if first == "verify":
        if package is None:
            raise fail("usage: siteflow handover verify FILE.zip [--keyring keyring.json]")
        _verify(package, keyring)
        return
    if output is None:
        raise fail(f"usage: siteflow handover {first} --output FILE.zip")
    from siteflow.db import migrate
    from siteflow.handover import audit_pdf
    from siteflow.handover.package import HandoverRefused, build_package
    from siteflow.identity.audit import host_admin

    migrate()
    try:
        built = build_package(first, document_renderer(), audit_pdf.render, built_by=host_admin(), via="cli")
    except HandoverRefused as exc:
        raise fail(str(exc)) from None
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.name}.partial")
    partial.write_bytes(built.data)
    os.replace(partial, output)  # a reader never sees half a package
    m = built.manifest
    console.print(
        f"wrote {output}: {len(m.files)} files, manifest SHA-256 {built.manifest_sha256}\n"
        f"  audit chain of {m.project.code}: record #{m.audit_chain.seq} {m.audit_chain.hash} "
        f"(checkpoint by {m.audit_chain.key_id})\n"
        f"  check it with: siteflow handover verify {output}",
        markup=False,
        highlight=False,
    )


def _verify(package: Path, keyring_file: Path | None) -> None:
    from siteflow import audit_keys
    from siteflow.commands.terminal import console, err, fail
    from siteflow.handover.verify import verify_package

    keyring = None
    if keyring_file is not None:
        try:
            keyring = audit_keys.parse_keyring(keyring_file.read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise fail(f"{keyring_file} is not a keyring.json ({exc})") from None
    if not package.is_file():
        raise fail(f"{package} does not exist")
    verdict = verify_package(package, keyring)
    if not verdict.ok:
        err.print(f"{NOT_VERIFIED}: {package}", markup=False, highlight=False)
        for problem in verdict.problems:
            err.print(f"  - {problem}", markup=False, highlight=False)
        raise typer.Exit(1)
    assert verdict.manifest is not None
    m = verdict.manifest
    console.print(
        f"{VERIFIED}: {package} — {m.project.code}, {len(m.files)} files intact, "
        f"built {m.built_at.isoformat()}",
        markup=False,
        highlight=False,
    )
    for note in verdict.notes:
        console.print(f"  {note}", markup=False, highlight=False)


def document_renderer() -> DocumentRenderer:
    """The documents' own PDF layout (:mod:`siteflow.documents.pdf`), not a second one."""
    from siteflow.documents.pdf import render_pdf

    return render_pdf
