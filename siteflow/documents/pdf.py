"""Every document version as a PDF form (issue #12), rendered with WeasyPrint.

``render_pdf(document_id) -> bytes`` is the one entry point other code calls (the gate mails,
the CLI, the workspace, the handover package). It reads the version's :class:`PrintView`
(typed body, project data, signatures with their doors, verification code) and renders the
template beside this module: title in Chinese with English beside it, sites and named people,
the body, a signature block per party with who signed, when and through which door, a stamp
area and date lines on the papers the customer stamps (ENG-13, ENG-31, ENG-24), and the
verification code with its QR code on every page. The acceptance certificate's copies
(ENG-31: three) are numbered copies in one PDF, each starting on a page of its own —
one file to print, mail and hash.

The PDF is made from the stored version and is not itself hashed into the trail: the version's
SHA-256 (of its stored HTML) is printed on it, and the verify page answers for that version.
A PDF is made again whenever asked for (its signature blocks fill in as the version is
signed), so two PDFs of one version differ only in what has been signed since.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from siteflow.db import session_scope
from siteflow.documents.fonts import require_cjk_font
from siteflow.documents.print_view import PrintView, UnknownDocument, print_view

__all__ = ["UnknownDocument", "render_pdf", "render_view"]

TEMPLATES = Path(__file__).parent / "templates"


@lru_cache(maxsize=1)
def _env() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(view: PrintView) -> str:
    """The print HTML of a view (what WeasyPrint lays out)."""
    return _env().get_template("document.pdf.html.j2").render(v=view)


def render_view(view: PrintView) -> bytes:
    """The PDF of a view. Raises :class:`~siteflow.documents.fonts.CjkFontMissing` (with how to
    install the font) rather than print Chinese as empty boxes."""
    require_cjk_font()
    from weasyprint import HTML  # imported here: loading pango costs ~0.5 s, not at CLI start

    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    pdf: bytes | None = HTML(string=render_html(view), base_url=str(TEMPLATES)).write_pdf()
    assert pdf is not None
    return pdf


def render_pdf(document_id: str) -> bytes:
    """The PDF of one document version (`documents.id`), as it stands now: signatures
    recorded so far, its verification code (made on first use). Raises
    :class:`UnknownDocument` for an id that is not a version."""
    with session_scope() as session:  # a write scope: the version's code may be made now
        view = print_view(session, document_id)
    return render_view(view)
