"""The API's reference pages: `/docs` (Swagger UI) and `/redoc` (ReDoc), both reading
`/openapi.json`, with their scripts and styles served by leadflow itself
(`api/console/static/vendor/`, see its README): they work on a machine with no network.

No request from these pages may leave the host: no CDN, no web fonts, no favicon from
elsewhere, no online validator badge; their Content-Security-Policy says so to the browser.
"""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import APIRouter
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

from api.console import STATIC_URL

VENDOR_URL = f"{STATIC_URL}/vendor"
OPENAPI_URL = "/openapi.json"
TITLE = "leadflow API"

router = APIRouter(include_in_schema=False)


_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def _with_policy(page: HTMLResponse) -> HTMLResponse:
    """The page with a Content-Security-Policy: scripts from this origin and the page's own
    inline start-up script (by its hash), connections to this origin only. Both UIs set
    styles inline (React style attributes, styled-components), and ReDoc's search runs in
    a worker it makes from a blob."""
    body = bytes(page.body).decode()
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(body)
    )
    page.headers["Content-Security-Policy"] = (
        f"default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
        "worker-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )
    page.headers["Referrer-Policy"] = "no-referrer"
    page.headers["X-Content-Type-Options"] = "nosniff"
    return page


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    return _with_policy(
        get_swagger_ui_html(
            openapi_url=OPENAPI_URL,
            title=f"{TITLE} · Swagger UI",
            swagger_js_url=f"{VENDOR_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{VENDOR_URL}/swagger-ui.css",
            swagger_favicon_url="data:,",
            # No badge from the online validator (a request to validator.swagger.io).
            swagger_ui_parameters={"validatorUrl": None},
        )
    )


@router.get("/redoc")
async def redoc() -> HTMLResponse:
    return _with_policy(
        get_redoc_html(
            openapi_url=OPENAPI_URL,
            title=f"{TITLE} · ReDoc",
            redoc_js_url=f"{VENDOR_URL}/redoc.standalone.js",
            redoc_favicon_url="data:,",
            with_google_fonts=False,
        )
    )
