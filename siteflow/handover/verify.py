"""Check a handover package (ENG-29) on its own, without siteflow's database.

A package holds when: it is a zip; ``manifest.json`` is well-formed and ``manifest.sig`` is a
valid Ed25519 signature of its exact bytes by a key of the keyring; every file it lists is
present once, with its size and SHA-256; no file is there that it does not list; the audit
report's chain head is the manifest's, and that head's checkpoint signature holds; each
document's stored HTML has the SHA-256 the audit chain recorded. Every problem names the file.

The keyring is the one given (``--keyring``: the audit keys' public keyring as the contractor
published it) or else the copy inside the package. The latter catches any change made without
the private key; someone who re-signs with a key of their own must also replace the keyring,
which changes the key id the verdict names — compare it with the one you were given.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from siteflow import audit_checkpoints, audit_keys
from siteflow.handover.manifest import (
    MANIFEST,
    SIGNATURE,
    FileKind,
    Manifest,
    ManifestFile,
    ManifestSignature,
    sha256,
    signed_message,
)

MAX_MEMBER_BYTES = 512 * 1024 * 1024  # a listed size above this is refused before it is read


@dataclass(frozen=True)
class Problem:
    path: str
    what: str

    def __str__(self) -> str:
        return f"{self.path}: {self.what}"


@dataclass
class Verdict:
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    manifest: Manifest | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_package(path: Path, keyring: audit_keys.Keyring | None = None) -> Verdict:
    verdict = Verdict()
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        verdict.problems.append(Problem(path.name, f"not a readable zip archive ({exc})"))
        return verdict
    with archive:
        _check(archive, keyring, verdict)
    return verdict


def _check(archive: zipfile.ZipFile, given: audit_keys.Keyring | None, verdict: Verdict) -> None:
    members: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        if info.filename in members:
            verdict.problems.append(Problem(info.filename, "in the archive twice: which one is meant?"))
        members[info.filename] = info
    manifest_bytes = _read(archive, members, MANIFEST, verdict, "the package has no manifest")
    if manifest_bytes is None:
        return
    manifest = _parse_manifest(manifest_bytes, verdict)
    if manifest is None:
        return
    verdict.manifest = manifest
    contents: dict[str, bytes] = {}
    for entry in manifest.files:
        data = _listed(archive, members, entry, verdict)
        if data is not None:
            contents[entry.path] = data
    listed = {f.path for f in manifest.files} | {MANIFEST, SIGNATURE}
    for name in sorted(set(members) - listed):
        verdict.problems.append(
            Problem(name, "not listed in the manifest: added after the package was built")
        )
    keyring, source = _keyring(given, manifest, contents, verdict)
    _check_signature(archive, members, manifest_bytes, keyring, source, verdict)
    _check_chain(manifest, contents, keyring, verdict)


def _read(
    archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], name: str, verdict: Verdict, missing: str
) -> bytes | None:
    info = members.get(name)
    if info is None:
        verdict.problems.append(Problem(name, f"missing: {missing}"))
        return None
    if info.file_size > MAX_MEMBER_BYTES:
        verdict.problems.append(Problem(name, f"{info.file_size} bytes: larger than any package file"))
        return None
    try:
        return archive.read(info)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:  # e.g. a CRC error
        verdict.problems.append(Problem(name, f"cannot be read from the archive ({exc})"))
        return None


def _parse_manifest(data: bytes, verdict: Verdict) -> Manifest | None:
    try:
        body = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        verdict.problems.append(Problem(MANIFEST, f"not well-formed JSON ({exc})"))
        return None
    try:
        return Manifest.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        verdict.problems.append(Problem(MANIFEST, f"not a well-formed manifest: {where}: {first['msg']}"))
        return None


def _listed(
    archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], entry: ManifestFile, verdict: Verdict
) -> bytes | None:
    info = members.get(entry.path)
    if info is None:
        verdict.problems.append(Problem(entry.path, "missing: listed in the manifest but not in the package"))
        return None
    if info.file_size != entry.size:
        verdict.problems.append(
            Problem(
                entry.path,
                f"{info.file_size} bytes, the manifest says {entry.size}: changed after it was built",
            )
        )
        return None
    data = _read(archive, members, entry.path, verdict, "")
    if data is None:
        return None
    if sha256(data) != entry.sha256:
        verdict.problems.append(
            Problem(
                entry.path, "SHA-256 does not match the manifest: the file was changed after it was built"
            )
        )
        return None
    return data


def _keyring(
    given: audit_keys.Keyring | None, manifest: Manifest, contents: dict[str, bytes], verdict: Verdict
) -> tuple[audit_keys.Keyring | None, str]:
    if given is not None:
        return given, "the keyring given"
    inside = next((f for f in manifest.files if f.kind is FileKind.KEYRING), None)
    if inside is None or inside.path not in contents:
        return None, ""
    try:
        return audit_keys.parse_keyring(
            contents[inside.path].decode("utf-8")
        ), "the keyring inside the package"
    except (ValueError, KeyError, TypeError) as exc:
        verdict.problems.append(Problem(inside.path, f"not a keyring ({exc})"))
        return None, ""


def _check_signature(
    archive: zipfile.ZipFile,
    members: dict[str, zipfile.ZipInfo],
    manifest_bytes: bytes,
    keyring: audit_keys.Keyring | None,
    source: str,
    verdict: Verdict,
) -> None:
    raw = _read(archive, members, SIGNATURE, verdict, "the manifest is not signed")
    if raw is None:
        return
    try:
        sig = ManifestSignature.model_validate_json(raw)
    except ValidationError as exc:
        verdict.problems.append(Problem(SIGNATURE, f"not a well-formed signature ({exc.errors()[0]['msg']})"))
        return
    if sig.manifest_sha256 != sha256(manifest_bytes):
        verdict.problems.append(
            Problem(MANIFEST, "changed after it was built: its SHA-256 is not the one signed in manifest.sig")
        )
        return
    if keyring is None:
        verdict.problems.append(Problem(SIGNATURE, "no keyring to check the signature with: give --keyring"))
        return
    try:
        at = datetime.fromisoformat(sig.signed_at)
    except ValueError:
        verdict.problems.append(Problem(SIGNATURE, f"signed_at {sig.signed_at!r} is not a time"))
        return
    wrong = keyring.problem(sig.key_id, signed_message(sig.manifest_sha256, sig.signed_at), sig.signature, at)
    if wrong:
        verdict.problems.append(Problem(SIGNATURE, wrong))
        return
    verdict.notes.append(f"manifest signed by key {sig.key_id} at {sig.signed_at}, checked against {source}")
    if source == "the keyring inside the package":
        verdict.notes.append(
            "compare that key id with the audit key your contractor published (or give --keyring)"
        )


def _check_chain(
    manifest: Manifest, contents: dict[str, bytes], keyring: audit_keys.Keyring | None, verdict: Verdict
) -> None:
    """The parts must agree with each other: the audit report covers the manifest's head, the
    head's checkpoint is genuine, each document's stored HTML is the version the chain holds."""
    head = manifest.audit_chain
    audit = next((f for f in manifest.files if f.kind is FileKind.AUDIT_JSON), None)
    if audit is None:
        verdict.problems.append(Problem(MANIFEST, "lists no audit report (audit-json)"))
    elif audit.path in contents:
        try:
            report: Any = json.loads(contents[audit.path])
            chain = report["chain"]
            documents = {d["id"]: d["sha256"] for d in report["documents"]}
        except (ValueError, KeyError, TypeError) as exc:
            verdict.problems.append(Problem(audit.path, f"not an audit report ({exc})"))
            return
        if (chain.get("records"), chain.get("head")) != (head.seq, head.hash):
            verdict.problems.append(
                Problem(
                    audit.path, f"covers record #{chain.get('records')}, the manifest's head is #{head.seq}"
                )
            )
        for f in manifest.files:
            if f.document is not None and documents.get(f.document.document_id) != f.document.sha256:
                verdict.problems.append(Problem(f.path, "not a document version of the audit report"))
    for f in manifest.files:
        html = contents.get(f.path) if f.kind is FileKind.DOCUMENT_HTML else None
        if html is not None and f.document is not None and sha256(html) != f.document.sha256:
            verdict.problems.append(
                Problem(f.path, "not the stored document whose SHA-256 the audit chain holds")
            )
    if keyring is not None and head.key_id and head.signature and head.signed_at:
        try:
            at = datetime.fromisoformat(head.signed_at)
        except ValueError:
            verdict.problems.append(
                Problem(MANIFEST, f"the chain head's signed_at {head.signed_at!r} is not a time")
            )
            return
        wrong = keyring.problem(
            head.key_id,
            audit_checkpoints.signed_message(head.stream, head.seq, head.hash, head.signed_at),
            head.signature,
            at,
        )
        if wrong:
            verdict.problems.append(Problem(MANIFEST, f"the chain head's checkpoint: {wrong}"))
        else:
            verdict.notes.append(
                f"audit chain of {head.stream}: head record #{head.seq} {head.hash}, checkpoint signed by "
                f"{head.key_id}; `siteflow audit verify {head.stream}` on the host checks it is still there"
            )
