"""What every HTML page of the web service shares: its headers and its templates.

The pages carry single-use secrets (approval links, password links) or a signed-in user's
view: never cached, never sent on as a referrer, never framed.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from siteflow import site_time
from siteflow.mail_body import html_fragment

TEMPLATES = Path(__file__).parent / "templates"
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'",
}


@lru_cache(maxsize=1)
def env() -> Environment:
    """Templates with the filters every page shares: ``site_time`` (a time on the site's clock,
    UTC beside it), ``site_zone`` (a project's or window's zone, from its code) and ``markdown``
    (a gate's description, which carries a document summary, as HTML — raw HTML escaped)."""
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"])
    )
    site_time.install(environment)
    environment.filters["site_zone"] = site_time.subject_zone
    environment.filters["markdown"] = html_fragment
    return environment


def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = env().get_template(name).render(**context)
    return HTMLResponse(html, status_code=status, headers=HEADERS)
