"""The kinds of text siteflow accepts: one vocabulary for every form, file, page and API body.

Every text that enters siteflow — a deployment's parameters (the Prefect UI's *Custom run*,
Prefect's API), gate data from the workspace, mailed links, the CLI's ``--data`` and plan
files — is one of these kinds, so it is checked in one place before it reaches Prefect or the
database (issue #10 item 1):

- valid Unicode only: no lone UTF-16 surrogate (``"\\ud800"`` parsed from JSON), which Prefect
  stores and then cannot serialise — every later read of the run answers 500 and the served
  deployments give up ("Service exceeded error threshold");
- no control characters (NUL, ESC of ANSI escapes, C1 codes …) except newline and tab in the
  kinds that hold several lines;
- a maximum length per kind (a 400 KB phone number is refused);
- codes exactly as typed or refused: ``"P-2026-001\\n"`` is not stripped into another code.

Each refusal names the field in plain words and says what to type ("Project code: use A–Z,
0–9 and '-', 3–32 characters"), never a regular expression, and never echoes the bad
characters (a message goes into logs, the gate's refusal record and Prefect's run state).

The same limits go into the JSON schema the Prefect UI's form and Prefect's server use
(``maxLength``, ``minLength``, ``pattern``): a deployment enforces its parameter schema when
a run is created, so Prefect refuses a bad form itself (HTTP 409) before it stores the run.
The schema patterns are written for both Python's ``re`` (Prefect's server, via jsonschema)
and ECMAScript (the UI): ``(?![\\s\\S])`` ends them, since ``$`` in Python also matches before
a final newline, and a surrogate pair is allowed as a pair (JavaScript strings are UTF-16).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, get_args

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler, ValidationError, ValidationInfo
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

_END = r"(?![\s\S])"  # end of the text, in Python and ECMAScript alike ($ is not, in Python)
_PAIR = r"[\ud800-\udbff][\udc00-\udfff]"  # an astral character as JavaScript sees it
_ONE_LINE_BAD = r"\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff"
_MULTI_LINE_BAD = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff"  # tab, newline, CR kept

_CONTROL_NAMES = {0x00: "NUL", 0x1B: "ESC (an ANSI escape)", 0x7F: "DEL", 0x09: "TAB"}


def _schema_pattern(bad: str) -> str:
    return f"^(?:[^{bad}]|{_PAIR})*{_END}"


def _describe(char: str) -> str:
    """A character named without printing it (it may be a terminal escape or unencodable)."""
    point = ord(char)
    if 0xD800 <= point <= 0xDFFF:
        return "a broken character (an unpaired UTF-16 surrogate)"
    if char in "\n\r\u2028\u2029":
        return "a line break"
    name = _CONTROL_NAMES.get(point) or unicodedata.name(char, "") or f"U+{point:04X}"
    return f"the control character {name}"


def plain_field(name: str | None) -> str:
    """``contract_items`` → "Contract items": how a refusal names a field."""
    words = (name or "text").replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def safe_text(text: str, limit: int = 120) -> str:
    """Text from outside, fit to be shown, logged or stored in a message: unsafe characters
    escaped (``\\x1b``, ``\\ud800``), cut to ``limit`` characters."""
    shown = text if len(text) <= limit else text[:limit] + "…"
    if _UNSAFE_IN_MESSAGE.search(shown) is None:
        return shown
    return _UNSAFE_IN_MESSAGE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), shown)


_UNSAFE_IN_MESSAGE = re.compile(f"[{_ONE_LINE_BAD}]")


@dataclass(frozen=True)
class TextKind:
    """One kind of text: how long, one line or several, and — for codes — which characters.

    Used as ``Annotated[str, TextKind(...)]``; the check runs before pydantic's own (and before
    a model's ``str_strip_whitespace``), on the text exactly as it was sent.
    """

    max_length: int
    min_length: int = 1
    multi_line: bool = False
    label: str | None = None  # the field's name in a refusal; else the field's own name, in words
    shape: str | None = None  # a code's characters, as a regular expression (without anchors)
    shape_words: str = ""  # the same, as a person reads it: "use A–Z, 0–9 and '-'"

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.with_info_before_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        out = handler(schema)
        out["maxLength"] = self.max_length
        if self.min_length:
            out["minLength"] = self.min_length
        out["pattern"] = self.schema_pattern
        return out

    @property
    def schema_pattern(self) -> str:
        if self.shape is not None:
            return f"^{self.shape}{_END}"
        return _schema_pattern(_MULTI_LINE_BAD if self.multi_line else _ONE_LINE_BAD)

    def check(self, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str):
            return value  # not text: pydantic's own check says so
        field = self.label or plain_field(info.field_name)
        self.refusal(value, field)
        return value.replace("\r\n", "\n").replace("\r", "\n") if self.multi_line else value

    def refusal(self, value: str, field: str) -> None:
        """Raise, in plain words naming `field`, when `value` is not text of this kind."""
        if len(value) > self.max_length:
            raise _refused(
                f"{field} is too long: at most {self.max_length} characters (this has {len(value)})"
            )
        bad = (_MULTI_BAD if self.multi_line else _ONE_BAD).search(value)
        if bad is not None:
            what = _describe(bad.group())
            if what == "a line break" or bad.group() == "\t":  # a tab is refused in one-line kinds only
                raise _refused(f"{field} must be one line: remove {what} (at character {bad.start() + 1})")
            raise _refused(f"{field} holds {what} at character {bad.start() + 1}: remove it")
        if self.shape is not None:
            if _SHAPES.setdefault(self.shape, re.compile(self.shape)).fullmatch(value) is None:
                raise _refused(f"{field}: {self.shape_words}")
            return
        if self.min_length and len(value.strip()) < self.min_length:
            raise _refused(
                f"{field} is empty: fill it in"
                if self.min_length == 1
                else f"{field} is too short: at least {self.min_length} characters"
            )


_ONE_BAD = re.compile(f"[{_ONE_LINE_BAD}]")
_MULTI_BAD = re.compile(f"[{_MULTI_LINE_BAD}]")
_SHAPES: dict[str, re.Pattern[str]] = {}


def _refused(message: str) -> PydanticCustomError:
    """Pydantic's error type 'text' with the message as it is shown (no "Value error, ")."""
    return PydanticCustomError("text", message)


def code(label: str, shape: str, words: str, max_length: int, min_length: int = 1) -> TextKind:
    """A code: exactly these characters, as typed (nothing stripped)."""
    return TextKind(max_length, min_length, label=label, shape=shape, shape_words=words)


# --- the vocabulary -----------------------------------------------------------------------

ProjectCode = Annotated[
    str,
    code(
        "Project code",
        r"[A-Z0-9][A-Z0-9-]{2,31}",
        "use A–Z, 0–9 and '-', 3–32 characters, starting with a letter or digit (e.g. GD-2026-017)",
        32,
        3,
    ),
]
WindowId = Annotated[
    str,
    code(
        "Window id",
        r"[A-Z0-9][A-Z0-9-]{2,39}",
        "use A–Z, 0–9 and '-', 3–40 characters, starting with a letter or digit (e.g. UPG-2026-1127-GZ)",
        40,
        3,
    ),
]
SiteCode = Annotated[
    str,
    code(
        "Site code",
        r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}",
        "use letters A–Z, digits, '-' and '_', 1–32 characters, starting with a letter or digit",
        32,
    ),
]
ItemCode = Annotated[
    str,
    code(
        "Contract item code",
        r"[A-Za-z0-9][A-Za-z0-9._/-]{0,63}",
        "use letters A–Z, digits and '-', '_', '.', '/', 1–64 characters, starting with a letter or digit",
        64,
    ),
]
ElementName = Annotated[
    str,
    code(
        "Element name",
        r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}",
        "use letters A–Z, digits and '-', '_', '.', 1–64 characters, starting with a letter or digit",
        64,
    ),
]
StepId = Annotated[
    str,
    code(
        "Step id",
        r"[a-z0-9][a-z0-9-]{0,63}",
        "use lower-case a–z, digits and '-', 1–64 characters, starting with a letter or digit",
        64,
    ),
]
IncidentKey = Annotated[
    str,
    code(
        "Incident key",
        r"[A-Z][A-Z0-9]{1,9}-[0-9]{4}-[0-9]{1,8}",
        "use a prefix of capital letters and digits, the year and a number, e.g. INC-2026-0042",
        24,
        8,
    ),
]
ContractCode = Annotated[
    str,
    code(
        "Contract code",
        r"[A-Za-z0-9][A-Za-z0-9._/-]{0,63}",
        "use letters A–Z, digits and '-', '_', '.', '/', 1–64 characters, starting with a letter or digit",
        64,
    ),
]
ReasonCode = Annotated[
    str,
    code(
        "Reason code",
        r"[a-z0-9][a-z0-9-]{0,47}",
        "use lower-case a–z, digits and '-', 1–48 characters (e.g. customer-room-closed)",
        48,
    ),
]
Phone = Annotated[
    str,
    code(
        "Phone",
        r"[+0-9 ()./-]{0,32}",
        "use digits, spaces and + - ( ) . /, at most 32 characters (e.g. +86 20 8888 0000)",
        32,
        0,
    ),
]

Name = Annotated[str, TextKind(200)]
"""A person's, customer's, site's or document's name: one line, 1–200 characters."""

Label = Annotated[str, TextKind(100)]
"""A short one-line value: a model, version, qualification, part, time zone … (1–100)."""

OptionalLabel = Annotated[str, TextKind(100, min_length=0)]
"""A short one-line value that may be left empty: a serial number (0–100)."""

Line = Annotated[str, TextKind(400)]
"""One line of prose: an address, a finding, a requirement (1–400 characters)."""

OptionalLine = Annotated[str, TextKind(400, min_length=0)]
"""One line that may be left empty (0–400 characters)."""

Text = Annotated[str, TextKind(4000, multi_line=True)]
"""Several lines that must be filled in: a reason, a scope, a summary (1–4000 characters)."""

Note = Annotated[str, TextKind(4000, min_length=0, multi_line=True)]
"""Several lines that may be left empty: notes, comments (0–4000 characters)."""

Command = Annotated[str, TextKind(2000, multi_line=True)]
"""A command run on a network element, as the runbook gives it (1–2000 characters)."""

Pattern = Annotated[str, TextKind(1000, min_length=0)]
"""An expected-output regular expression of a runbook (0–1000 characters, one line)."""

EMAIL_RE = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


@dataclass(frozen=True)
class _EmailKind(TextKind):
    def refusal(self, value: str, field: str) -> None:
        super().refusal(value, field)
        if EMAIL_RE.match(value.strip()) is None:
            raise _refused(f"{field} is not an email address: write it as name@example.com")


Email = Annotated[str, _EmailKind(254, min_length=3)]
"""An email address: one line, at most 254 characters (RFC 5321), name@domain."""


def text_problem(kind: Any, value: str, field: str) -> str | None:
    """Why `value` is not text of `kind` (one of the kinds above), naming `field`; None when it
    is. For texts that arrive outside a model: a decision's comment, a form field."""
    checker = next(m for m in get_args(kind)[1:] if isinstance(m, TextKind))
    try:
        checker.refusal(value, field)
    except PydanticCustomError as exc:
        return exc.message()
    return None


def problems(exc: ValidationError) -> list[str]:
    """A refused form's problems, one line each ("contacts.1.phone: Phone is too long …"),
    fit to show, log and store: a path or message holding bad characters is escaped (an
    unknown field's name is the sender's text too)."""
    return problem_lines(exc.errors(include_url=False, include_input=False))


def problem_lines(errors: Iterable[Mapping[str, Any]]) -> list[str]:
    """`problems` for error details from elsewhere (FastAPI's refused request bodies)."""
    lines: list[str] = []
    for error in errors:
        where = ".".join(safe_text(str(p), 60) for p in error["loc"])
        message = safe_text(str(error["msg"]).removeprefix("Value error, "), 300)
        lines.append(f"{where}: {message}" if where else message)
    return lines
