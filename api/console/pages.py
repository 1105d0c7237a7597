"""The console's pages: one HTML shell per page, filled in from `templates/`, no key needed.

Every page loads `static/console.js` (sign-in, API calls, navigation) and its own module;
the only server-side values a page carries are public settings (where the Temporal UI is).
"""

from __future__ import annotations

import html
from functools import cache
from pathlib import Path
from string import Template
from typing import Literal
from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse

from api.deps import SettingsDep
from leadflow.settings import Settings

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
TEMPLATES_DIR = HERE / "templates"
STATIC_URL = "/console/static"

Page = Literal["dashboard", "leads", "lead", "pool", "rulesets", "directory", "quarantine"]
TITLES: dict[Page, str] = {
    "dashboard": "Dashboard",
    "leads": "Leads",
    "lead": "Lead",
    "pool": "Public pool",
    "rulesets": "Rulesets",
    "directory": "Directory",
    "quarantine": "Quarantine",
}

# The scripts come only from this origin, so a value injected into a page cannot run code
# that reads the key out of session storage; nothing may frame the console either.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}

router = APIRouter(include_in_schema=False)


@cache
def _template(name: str) -> Template:
    return Template((TEMPLATES_DIR / name).read_text(encoding="utf-8"))


def render_page(
    page: Page,
    *,
    temporal_ui_url: str,
    namespace: str,
    trace_url: str,
    locale: str,
    time_zone: str,
) -> HTMLResponse:
    """The page's HTML: the shared shell (navigation, sign-in) around the page's own body."""
    body = _template(f"{page}.html").substitute(static=STATIC_URL)
    document = _template("shell.html").substitute(
        title=html.escape(TITLES[page]),
        page=page,
        body=body,
        static=STATIC_URL,
        temporal_ui_url=html.escape(temporal_ui_url.rstrip("/"), quote=True),
        namespace=html.escape(namespace, quote=True),
        trace_url=html.escape(trace_url, quote=True),
        locale=html.escape(locale, quote=True),
        time_zone=html.escape(time_zone, quote=True),
    )
    return HTMLResponse(document, headers=SECURITY_HEADERS)


@router.get("/")
async def home() -> RedirectResponse:
    return RedirectResponse("/dashboard")


@router.get("/dashboard")
async def dashboard(settings: SettingsDep) -> HTMLResponse:
    return render_page("dashboard", **_public(settings))


@router.get("/leads")
async def leads(settings: SettingsDep) -> HTMLResponse:
    return render_page("leads", **_public(settings))


@router.get("/leads/{lead_id}")
async def lead(lead_id: UUID, settings: SettingsDep) -> HTMLResponse:
    # The id is read back from the URL by the page's script; typing it here turns a
    # malformed one into a 422 before any page is served.
    return render_page("lead", **_public(settings))


@router.get("/pool")
async def pool(settings: SettingsDep) -> HTMLResponse:
    return render_page("pool", **_public(settings))


@router.get("/rulesets")
async def rulesets(settings: SettingsDep) -> HTMLResponse:
    return render_page("rulesets", **_public(settings))


@router.get("/directory")
async def directory(settings: SettingsDep) -> HTMLResponse:
    return render_page("directory", **_public(settings))


@router.get("/quarantine")
async def quarantine(settings: SettingsDep) -> HTMLResponse:
    return render_page("quarantine", **_public(settings))


def _public(settings: Settings) -> dict[str, str]:
    """The settings a page may show: public addresses, never keys."""
    return {
        "temporal_ui_url": settings.temporal_ui_url,
        "namespace": settings.temporal_namespace,
        "trace_url": settings.trace_url or "",
        "locale": settings.locale,
        "time_zone": settings.time_zone,
    }
