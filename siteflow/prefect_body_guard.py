"""Text Prefect cannot store faithfully is refused at Prefect's own door (issue #10, item 1).

siteflow checks every form before it reaches Prefect, and the deployments' parameter schemas
carry the same limits — but a client holding the Prefect credential may send
``enforce_parameter_schema: false`` or POST ``/api/flow_runs/`` directly. A lone UTF-16
surrogate (``"\\ud800"`` in JSON) is then stored by Prefect and breaks every later read of
the run ("surrogates not allowed"): the served deployments' scheduled-runs query fails until the
runner gives up and the deployments process exits. A NUL character is refused by PostgreSQL's
text and jsonb types, so the same request would store on SQLite and fail on PostgreSQL.

This ASGI wrapper reads each request body that writes (POST, PUT, PATCH), however it is split
into messages and whatever encoding of JSON it uses, and answers 422,
naming the place in the body, when any string in it holds a lone surrogate or a NUL — before
Prefect parses or stores anything. Everything else passes unchanged: what is valid text is the
flow's and siteflow's forms' business (a run with a control character in a name is refused by
the flow itself, Failed with the field named). Installed by :mod:`siteflow.prefect_server`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

WRITES = frozenset({"POST", "PUT", "PATCH"})


def _bad_character(text: str) -> str | None:
    """What in one string Prefect cannot keep, described for a person, or None."""
    for char in text:
        code = ord(char)
        if 0xD800 <= code <= 0xDFFF:
            return f"a lone UTF-16 surrogate (U+{code:04X})"
        if code == 0:
            return "a NUL character (U+0000)"
    return None


def _place(path: list[str | int]) -> str:
    return ".".join(str(p) for p in path) or "the body"


def first_unstorable(value: Any, path: list[str | int] | None = None) -> str | None:
    """The first string (key or value) that holds unstorable text, as "WHAT at PLACE"."""
    where = path or []
    if isinstance(value, str):
        bad = _bad_character(value)
        return f"{bad} at {_place(where)}" if bad else None
    if isinstance(value, dict):
        for key, item in value.items():
            bad = _bad_character(key)
            if bad:
                return f"{bad} in a key under {_place(where)}"  # the key itself is not echoed
            found = first_unstorable(item, [*where, key])
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = first_unstorable(item, [*where, index])
            if found:
                return found
    return None


def problem(body: bytes) -> str | None:
    """Why this JSON body must not reach Prefect, or None (also for bodies that are not JSON:
    Prefect answers those itself). Any encoding ``json.loads`` accepts is read — UTF-8 with or
    without a byte-order mark, UTF-16 and UTF-32 — as Prefect's framework reads it too. Clean
    text, nearly every request, is recognised in one pass: encoding the decoded text fails only
    where a surrogate is, and a NUL is a plain search in it."""
    if not body.strip():
        return None
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    try:
        text = json.dumps(parsed, ensure_ascii=False)  # control characters come out escaped
        text.encode("utf-8")
        if "\\u0000" not in text:  # a NUL, or a written "\u0000": the walk tells which
            return None
    except UnicodeEncodeError:
        pass
    except RecursionError:  # nested past Python's limit: Prefect's own parser refuses it too
        return None
    try:
        return first_unstorable(parsed)
    except RecursionError:
        return None


def _refusal(what: str) -> bytes:
    return json.dumps(
        {
            "detail": f"refused: the request holds {what}. Prefect cannot store such text; send "
            "valid Unicode text without NUL characters. Nothing was stored.",
            "exception_message": "Invalid request received.",
        }
    ).encode()


class UnstorableTextGuard:
    """ASGI middleware around Prefect's server app (HTTP writes with a JSON body only)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in WRITES:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: let Prefect see it
                await self.app(scope, _replay([message], receive), send)
                return
            chunks.append(message.get("body", b""))
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        what = problem(body)
        if what is not None:
            payload = _refusal(what)
            await send(
                {
                    "type": "http.response.start",
                    "status": 422,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(payload)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": payload})
            return
        whole = {"type": "http.request", "body": body, "more_body": False}
        await self.app(scope, _replay([whole], receive), send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A receive that hands the buffered messages to the app, then the client's own (which
    tells of a real disconnect, as Starlette's streaming responses listen for)."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
