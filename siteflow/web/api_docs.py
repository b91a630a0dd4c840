"""The API's browser (/api/docs): Swagger UI served from this host, not from a CDN.

Why: every page answers with a Content-Security-Policy that loads nothing from other hosts
(`siteflow.web.security_headers`), and a browser page pulling scripts from a CDN would both
break under it and let that CDN run code next to a signed-in session. The Swagger UI files
come from the `swagger-ui-bundle-v2` package; the initializer is ours (no inline script), so
the page runs under ``script-src 'self'``. Like the description it reads (/api/openapi.json),
it needs a signed-in user or a token (COM-6).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response
from swagger_ui_bundle import swagger_ui_path

router = APIRouter()

OPENAPI = "/api/openapi.json"
ASSETS = {  # the only files served from the bundle, with their media types
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui-standalone-preset.js": "text/javascript",
    "favicon-32x32.png": "image/png",
}
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>siteflow API</title>
<link rel="stylesheet" href="/api/docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="/api/docs/assets/favicon-32x32.png"></head>
<body><div id="swagger-ui"></div>
<script src="/api/docs/assets/swagger-ui-bundle.js"></script>
<script src="/api/docs/assets/swagger-ui-standalone-preset.js"></script>
<script src="/api/docs/init.js"></script></body></html>
"""
INIT = f"""window.onload = function () {{
  window.ui = SwaggerUIBundle({{
    url: "{OPENAPI}", dom_id: "#swagger-ui", deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset], layout: "StandaloneLayout"
  }});
}};
"""


@router.get("/api/docs", include_in_schema=False, response_class=HTMLResponse)
def api_docs() -> HTMLResponse:
    return HTMLResponse(PAGE, headers={"Content-Security-Policy": DOCS_CSP, "Cache-Control": "no-store"})


@router.get("/api/docs/init.js", include_in_schema=False)
def api_docs_init() -> Response:
    return Response(INIT, media_type="text/javascript", headers={"Content-Security-Policy": DOCS_CSP})


@router.get("/api/docs/assets/{name}", include_in_schema=False)
def api_docs_asset(name: str) -> Response:
    media = ASSETS.get(name)
    if media is None:
        return Response(status_code=404)
    return FileResponse(
        str(swagger_ui_path / name),
        media_type=media,
        headers={"Content-Security-Policy": DOCS_CSP, "Cache-Control": "private, max-age=86400"},
    )
