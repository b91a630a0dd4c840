"""The audit report as PDF for the handover package (ENG-29): WeasyPrint on the report's own
HTML (``siteflow/templates/audit.html.j2``), so the PDF and the HTML export say the same.

Landscape A4, and long hashes may break anywhere: the event chain's columns of SHA-256s would
otherwise run off the page. The fonts are the system's (Debian's fonts-noto-cjk: the template
asks for Noto Sans CJK SC), and nothing is fetched: the report loads no other resource.
"""

from __future__ import annotations

PRINT_CSS = """
@page { size: A4 landscape; margin: 1.2cm; }
body { margin: 0; font-size: 9pt; }
code { word-break: break-all; }
table { width: 100%; }
"""


def _no_fetch(url: str, *args: object, **kwargs: object) -> dict[str, object]:
    raise ValueError(f"the audit report loads nothing from outside ({url} refused)")


def render(html: str) -> bytes:
    """The audit report's HTML as PDF bytes."""
    from weasyprint import CSS, HTML  # ~1 s to import: only when a package is built

    pdf = HTML(string=html, url_fetcher=_no_fetch).write_pdf(stylesheets=[CSS(string=PRINT_CSS)])
    assert pdf is not None  # write_pdf without a target returns the bytes
    return bytes(pdf)
