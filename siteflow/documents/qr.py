"""The QR code printed on a document and shown on its verify page, as inline SVG.

Inline SVG, not an image file or a ``data:`` URI: the web's Content-Security-Policy loads no
images but its own (``img-src 'self'``), and an ``<svg>`` element in the page is markup, not a
fetch, so it shows under that policy; WeasyPrint draws the same markup into the PDF.
"""

from __future__ import annotations

import segno


def qr_svg(url: str, scale: int = 3) -> str:
    """An ``<svg>`` element (no XML declaration) encoding `url`, error correction M (a stamp
    or a fold over part of it still scans), with a quiet zone of 2 modules."""
    code = segno.make(url, error="m", micro=False)
    svg: str = code.svg_inline(scale=scale, border=2, dark="#000", light="#fff")
    return svg
