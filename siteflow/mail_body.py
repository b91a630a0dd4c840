"""A mail's two bodies — readable plain text and HTML — from the one text in the outbox.

The outbox row's ``body_text`` is Markdown (CommonMark with tables): the notices carry the
documents' summaries (``tasks/templates/document.md.j2``), which are Markdown so the Prefect
UI can show them. Sent as they were, a customer read ``###`` and ``| --- |`` in the final
acceptance certificate (issue #9). So every mail is multipart/alternative:

- the HTML part is rendered by markdown-it-py (tables on, line breaks kept). Raw HTML in the
  source is *not* passed through: whatever a person typed — a comment, a name, a leftover
  issue — arrives as text, ``<script>`` as ``&lt;script&gt;``; link targets other than
  http(s)/mailto are refused by markdown-it's link check;
- the text part is rendered from the same parse: headings underlined, emphasis and code marks
  dropped, tables aligned in columns (CJK characters count double) or, when too wide for a
  mail reader, turned into a list of ``header: value`` lines — no pipes, no hashes.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup
from rich.cells import cell_len

TEXT_WIDTH = 78  # a table wider than this reads better as a list in a plain-text mail

_STYLES = {
    "table": "border-collapse:collapse;margin:.4em 0 1em",
    "th": "border:1px solid #999;padding:.25em .6em;text-align:left;background:#f3f3f3",
    "td": "border:1px solid #999;padding:.25em .6em;text-align:left;vertical-align:top",
    "h1": "font-size:1.3em",
    "h2": "font-size:1.2em",
    "h3": "font-size:1.1em",
}


_MARKDOWN_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]<>|#&"})


def literal(text: object) -> str:
    """What a person typed (a comment, a name, a leftover issue), as Markdown that shows it
    exactly: never a link, a heading, emphasis or a table cell break. Every writer of a mail
    or a document summary quotes people through this; the HTML renderer escapes raw HTML on
    top of it."""
    return str(text).translate(_MARKDOWN_SPECIAL)


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False, "breaks": True, "linkify": False}).enable("table")


def html_fragment(markdown: str) -> Markup:
    """The HTML of a mail's body (no <html> around it), with inline styles: mail readers
    drop style sheets."""
    md = _parser()
    tokens = md.parse(markdown)
    for token in tokens:
        style = _STYLES.get(token.tag) if token.nesting == 1 else None
        if style:
            own = token.attrGet("style")  # a column's alignment
            token.attrSet("style", f"{style};{own}" if own else style)
    return Markup(md.renderer.render(tokens, md.options, {}))


def plain_text(markdown: str) -> str:
    """The same body as text a person reads in a plain-text mail reader."""
    lines = markdown.splitlines()
    out: list[str] = []
    _blocks(_parser().parse(markdown), lines, out)
    return "\n".join(out).strip("\n") + "\n"


def _blocks(tokens: Sequence[Token], source: list[str], out: list[str]) -> None:
    """Walk the block tokens once; lists and quotes prefix what their children wrote."""
    lists: list[list[int]] = []  # per open list: [next number or -1 for bullets]
    quote = 0
    marker: list[str] = []  # a list item's "- " or "2. ", waiting for its first line
    i = 0
    while i < len(tokens):
        t = tokens[i]
        indent = "   " * max(0, len(lists) - 1)
        prefix = "> " * quote
        if t.type in ("bullet_list_open", "ordered_list_open"):
            start = t.attrGet("start")
            lists.append([int(start) if start is not None else 1 if t.type == "ordered_list_open" else -1])
        elif t.type in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
            if not lists:
                out.append("")
        elif t.type == "list_item_open":
            number = lists[-1][0]
            if number >= 0:
                lists[-1][0] += 1
            marker[:] = [prefix + indent + ("- " if number < 0 else f"{number}. ")]
        elif t.type == "list_item_close" and marker:
            out.append(marker.pop().rstrip())  # an empty item
        elif t.type == "blockquote_open":
            quote += 1
        elif t.type == "blockquote_close":
            quote -= 1
        elif t.type == "heading_open":
            text = _inline(tokens[i + 1])
            rule = "=" if t.tag in ("h1", "h2") else "-"
            out.extend([prefix + text, prefix + rule * max(3, cell_len(text)), ""])
            i += 2
        elif t.type == "paragraph_open":
            text = _inline(tokens[i + 1])
            rendered = text.split("\n")
            if not lists and not quote and t.map and len(rendered) == t.map[1] - t.map[0]:
                # keep the indentation the writer gave each line ("  Choices: …")
                rendered = [
                    _leading(source[n]) + line for n, line in zip(range(*t.map), rendered, strict=True)
                ]
            if marker:
                head = marker.pop()
                pad = " " * cell_len(head)
                out.extend([head + rendered[0], *(pad + line for line in rendered[1:])])
            else:
                out.extend(prefix + line for line in rendered)
            if not t.hidden:  # a loose paragraph: a blank line after it
                out.append(prefix if quote else "")
            i += 2
        elif t.type in ("fence", "code_block"):
            out.extend(prefix + "    " + line for line in t.content.rstrip("\n").split("\n"))
            out.append("")
        elif t.type == "hr":
            out.extend([prefix + "-" * 20, ""])
        elif t.type == "table_open":
            end = next(j for j in range(i, len(tokens)) if tokens[j].type == "table_close")
            out.extend(prefix + line for line in _table(tokens[i:end]))
            out.append("")
            i = end
        i += 1


def _leading(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" "))]


def _inline(token: Token) -> str:
    """Inline text with its marks dropped; a link keeps its address."""
    parts: list[str] = []
    href: list[tuple[str, int, bool]] = []
    for child in token.children or []:
        if child.type in ("text", "code_inline", "html_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif child.type == "image":
            parts.append(child.content)
        elif child.type == "link_open":
            href.append((str(child.attrGet("href") or ""), len(parts), child.markup == "autolink"))
        elif child.type == "link_close" and href:
            target, at, auto = href.pop()
            label = "".join(parts[at:])
            if auto:  # <someone@example.com>: shown as it was written
                parts[at:] = [f"<{label}>"]
            elif target and target not in (label, f"mailto:{label}"):
                parts.append(f" <{target}>")
    return "".join(parts)


def _table(tokens: Sequence[Token]) -> list[str]:
    rows: list[list[str]] = []
    for t in tokens:
        if t.type == "tr_open":
            rows.append([])
        elif t.type == "inline" and rows:
            rows[-1].append(" ".join(_inline(t).split()))
    if not rows:
        return []
    headers, body = rows[0], rows[1:]
    count = max(len(r) for r in rows)
    rows = [r + [""] * (count - len(r)) for r in rows]
    widths = [max(cell_len(r[c]) for r in rows) for c in range(count)]
    if sum(widths) + 2 * (count - 1) <= TEXT_WIDTH:
        lines = [_row(rows[0], widths), "  ".join("-" * w for w in widths)]
        return lines + [_row(r, widths) for r in rows[1:]]
    # too wide for columns: one line a row, each value named by its header
    return [
        "- " + "; ".join(f"{h}: {v}" for h, v in zip(headers, r, strict=False) if v.strip()) for r in body
    ]


def _row(cells: list[str], widths: list[int]) -> str:
    padded = (cell + " " * (width - cell_len(cell)) for cell, width in zip(cells, widths, strict=True))
    return "  ".join(padded).rstrip()
