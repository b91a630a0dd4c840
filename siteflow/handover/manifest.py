"""The handover package's manifest (ENG-29): every file with its SHA-256 and size, and what ties
the package to the project's audit chain.

The manifest is signed (Ed25519, the audit chain's current key) over its exact bytes, in
``manifest.sig`` beside it: a hash list alone would let anyone who edits a file edit its hash
too. The chain's head at build time is in the manifest with its own checkpoint signature
(:mod:`siteflow.audit_checkpoints`), so the package names a record that must stay in the chain.
"""

from __future__ import annotations

import enum
import hashlib
import re
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from siteflow import audit_chain

FORMAT = "siteflow-handover/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class FileKind(enum.StrEnum):
    DOCUMENT_PDF = "document-pdf"  # the final version of a document, for people to read and print
    DOCUMENT_HTML = "document-html"  # the stored original whose SHA-256 the audit chain holds
    AUDIT_JSON = "audit-json"
    AUDIT_PDF = "audit-pdf"
    MEMOS_JSON = "memos-json"  # ENG-28: open and closed memos
    KEYRING = "keyring"  # the audit keys' public keyring: verifies the signatures offline


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DocumentRef(Frozen):
    """Which document version a file is, as the audit report lists it."""

    document_id: str
    doc_key: str
    kind: str
    title: str
    version: int = Field(ge=1)
    status: str
    sha256: str = Field(description="SHA-256 of the stored HTML, as in the audit chain")
    signed_by: str | None = None


class ManifestFile(Frozen):
    path: str
    kind: FileKind
    size: int = Field(ge=0)
    sha256: str
    document: DocumentRef | None = None

    @field_validator("path")
    @classmethod
    def _safe_path(cls, value: str) -> str:
        """A relative path inside the package: never absolute, never climbing out of it."""
        parts = value.split("/")
        if not value or value.startswith("/") or "\\" in value or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"{value!r} is not a plain relative path inside the package")
        if value in (MANIFEST, SIGNATURE):
            raise ValueError(f"{value} cannot list itself")
        return value

    @field_validator("sha256")
    @classmethod
    def _hex(cls, value: str) -> str:
        if not SHA256_RE.match(value):
            raise ValueError("sha256 must be 64 lower-case hex digits")
        return value


class ChainHead(Frozen):
    """The audit chain's head that the package's audit report covers, signed as a checkpoint."""

    stream: str
    seq: int = Field(ge=1)
    hash: str
    verified: bool
    signed_at: str | None = None
    key_id: str | None = None
    signature: str | None = None


class ProjectRef(Frozen):
    code: str
    customer: str
    phase: str
    state: str


class Manifest(Frozen):
    format: str
    project: ProjectRef
    built_at: datetime
    built_by: str
    siteflow_version: str
    audit_chain: ChainHead
    files: list[ManifestFile] = Field(min_length=1)

    @field_validator("format")
    @classmethod
    def _format(cls, value: str) -> str:
        if value != FORMAT:
            raise ValueError(f"unknown format {value!r}; this siteflow reads {FORMAT}")
        return value

    @field_validator("files")
    @classmethod
    def _unique(cls, files: list[ManifestFile]) -> list[ManifestFile]:
        paths = [f.path for f in files]
        repeated = sorted({p for p in paths if paths.count(p) > 1})
        if repeated:
            raise ValueError(f"files listed twice: {', '.join(repeated)}")
        return files


class ManifestSignature(Frozen):
    key_id: str
    signed_at: str
    manifest_sha256: str
    signature: str


def signed_message(manifest_sha256: str, signed_at: str) -> bytes:
    """What the manifest's signature covers; the domain tag keeps it apart from a chain
    record's and a checkpoint's, signed by the same key."""
    return audit_chain.canonical(["siteflow-handover-manifest/1", manifest_sha256, signed_at]).encode()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
