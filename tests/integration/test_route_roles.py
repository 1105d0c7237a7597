"""The access matrix of docs/access.md, checked on every route (issue #19): each route of
the app is in ROUTES with what it needs, and each caller (a session of every role, a key of
every scope) gets 403 exactly where its scopes fall short. A route added without an entry
fails `test_every_route_has_an_entry`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from people import ADMIN, PEOPLE, create_user, store_of

from api.app import create_app
from leadflow.settings import Settings


@pytest.fixture
def database_url() -> None:
    """One store is enough: the matrix is the API's, not the database's."""
    return None


PUBLIC = "public"  # no key, no session
SESSION = "session"  # any signed-in person, never a key (their own session)

ROUTES: dict[tuple[str, str], str] = {
    ("POST", "/v1/events"): "ingest",
    ("POST", "/v1/events/batch"): "ingest",
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/livez"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/v1/status"): "admin",
    ("GET", "/v1/leads"): "read",
    ("GET", "/v1/words/events"): "read",
    ("GET", "/v1/worklist"): "read",
    ("GET", "/v1/views"): "read",
    ("POST", "/v1/views"): "read",
    ("DELETE", "/v1/views/{view_id}"): "read",
    ("POST", "/v1/leads/reassign"): "ingest",
    ("GET", "/v1/leads/{lead_id}"): "read",
    ("GET", "/v1/leads/{lead_id}/events"): "read",
    ("POST", "/v1/leads/{lead_id}/do-not-contact"): "admin",
    ("POST", "/v1/leads/{lead_id}/do-not-contact/lift"): "admin",
    ("POST", "/v1/leads/{lead_id}/erase"): "admin",
    ("GET", "/v1/leads/{lead_id}/export"): "admin",
    ("GET", "/v1/rulesets/trials"): "read",
    ("POST", "/v1/rulesets/{version}/shadow"): "rules",
    ("POST", "/v1/rulesets/{version}/canary"): "rules",
    ("POST", "/v1/rulesets/{version}/promote"): "rules",
    ("POST", "/v1/rulesets/{version}/stop"): "rules",
    ("GET", "/v1/rulesets/{version}/trial-report"): "read",
    ("GET", "/v1/rulesets/schema"): "read",
    ("POST", "/v1/rulesets/validate"): "read",
    ("POST", "/v1/rulesets/describe"): "read",
    ("POST", "/v1/rulesets"): "rules",
    ("GET", "/v1/rulesets"): "read",
    ("GET", "/v1/rulesets/active"): "read",
    ("GET", "/v1/rulesets/{version}"): "read",
    ("POST", "/v1/rulesets/{version}/activate"): "rules",
    ("POST", "/v1/rulesets/preview-template"): "read",
    ("POST", "/v1/forms/validate"): "read",
    ("POST", "/v1/forms"): "admin",
    ("GET", "/v1/forms"): "read",
    ("GET", "/v1/forms/{form_id}"): "read",
    ("GET", "/v1/forms/{form_id}/versions"): "read",
    ("GET", "/v1/forms/{form_id}/versions/{version}"): "read",
    ("POST", "/v1/forms/{form_id}/versions/{version}/activate"): "admin",
    ("PUT", "/v1/directory"): "admin",
    ("GET", "/v1/directory"): "read",
    ("GET", "/v1/directory/holidays"): "read",
    ("GET", "/v1/notifications"): "read",
    ("GET", "/v1/projections"): "read",
    ("GET", "/v1/reports/sources"): "reports",
    ("GET", "/v1/reports/funnel"): "reports",
    ("GET", "/v1/reports/campaign-roi"): "reports",
    ("GET", "/v1/reports/leaderboard"): "reports",
    ("GET", "/v1/reports/follow-up-efficiency"): "reports",
    ("GET", "/v1/reports/kpis"): "reports",
    ("GET", "/v1/reports/experiments"): "reports",
    ("GET", "/v1/reports/definitions"): "reports",
    ("GET", "/t/o/{message_id}"): PUBLIC,
    ("GET", "/t/c/{message_id}"): PUBLIC,
    ("GET", "/t/u/{message_id}"): PUBLIC,
    ("POST", "/t/u/{message_id}"): PUBLIC,
    ("GET", "/f/{form_id}.js"): PUBLIC,
    ("GET", "/f/{form_id}/qr.{image_format}"): PUBLIC,
    ("GET", "/f/{form_id}"): PUBLIC,
    ("OPTIONS", "/f/{form_id}"): PUBLIC,
    ("POST", "/f/{form_id}"): PUBLIC,
    ("POST", "/v1/replays"): "rules",
    ("POST", "/v1/replays/{replay_id}/cancel"): "rules",
    ("GET", "/v1/replays/{replay_id}"): "read",
    ("POST", "/v1/imports"): "admin",
    ("GET", "/v1/imports"): "admin",
    ("GET", "/v1/imports/{import_id}"): "admin",
    ("GET", "/v1/quarantine"): "admin",
    ("GET", "/v1/quarantine/{item_id}"): "admin",
    ("POST", "/v1/quarantine/{item_id}/retry"): "admin",
    ("POST", "/v1/quarantine/{item_id}/skip"): "admin",
    ("GET", "/v1/keys"): "admin",
    ("POST", "/v1/keys"): "admin",
    ("POST", "/v1/keys/{key_id}/revoke"): "admin",
    ("POST", "/v1/keys/{key_id}/rotate"): "admin",
    ("POST", "/v1/session"): PUBLIC,
    ("GET", "/v1/session/providers"): PUBLIC,
    ("GET", "/auth/{provider}"): PUBLIC,
    ("GET", "/auth/{provider}/callback"): PUBLIC,
    ("GET", "/v1/session"): SESSION,
    ("PATCH", "/v1/session"): SESSION,
    ("DELETE", "/v1/session"): SESSION,
    ("GET", "/v1/users"): "admin",
    ("POST", "/v1/users"): "admin",
    ("GET", "/v1/users/{user_id}"): "admin",
    ("PATCH", "/v1/users/{user_id}"): "admin",
    ("GET", "/v1/users/{user_id}/events"): "admin",
    ("GET", "/"): PUBLIC,
    ("GET", "/dashboard"): PUBLIC,
    ("GET", "/leads"): PUBLIC,
    ("GET", "/leads/{lead_id}"): PUBLIC,
    ("GET", "/pool"): PUBLIC,
    ("GET", "/worklist"): PUBLIC,
    ("GET", "/rulesets"): PUBLIC,
    ("GET", "/directory"): PUBLIC,
    ("GET", "/quarantine"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
}

# What each caller holds, as docs/access.md states it (not read from the code under test).
HOLDS: dict[str, frozenset[str]] = {
    "rep": frozenset({"read", "ingest"}),
    "manager": frozenset({"read", "ingest", "reports", "rules"}),
    "director": frozenset({"read", "ingest", "reports", "rules"}),
    "admin": frozenset({"read", "ingest", "reports", "rules", "admin"}),
    "key:read": frozenset({"read", "reports"}),
    "key:ingest": frozenset({"ingest"}),
    "key:admin": frozenset({"read", "ingest", "reports", "rules", "admin"}),
}
# Path parameters that name nothing: an allowed caller gets a 404 or 422, never a change.
PARAMETERS = {
    "lead_id": "8d1c3f7e-4b0a-4e55-9d6a-0c2f1e9b7a11",
    "version": "999999",
    "image_format": "png",
}


def app_routes(client: TestClient) -> list[tuple[str, str]]:
    found = []
    for context in iter_route_contexts(client.app.routes):  # type: ignore[attr-defined]
        route = context.original_route
        if context.path_format is None:
            continue
        methods = route.methods if isinstance(route, APIRoute) else getattr(route, "methods", None)
        for method in sorted(methods or ()):
            if method != "HEAD":
                found.append((method, context.path_format))
    return found


def url_of(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: PARAMETERS.get(m.group(1), "nothing-here"), path)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_every_route_has_an_entry(client: TestClient) -> None:
    routes = app_routes(client)
    assert sorted(set(routes) - set(ROUTES)) == []
    assert sorted(set(ROUTES) - set(routes)) == []


def test_each_caller_is_refused_exactly_where_the_matrix_says(client: TestClient) -> None:
    store = store_of(client)
    users = {
        role: create_user(client, f"{role}@example.com", role, person)
        for role, person in PEOPLE.items()
    }
    keys = {
        f"key:{scope}": client.post("/v1/keys", json={"scopes": [scope]}, headers=ADMIN).json()[
            "key"
        ]
        for scope in ("read", "ingest", "admin")
    }

    def credentials(caller: str) -> dict[str, str]:
        if caller in keys:
            return {"Authorization": f"Bearer {keys[caller]}"}
        # A fresh session per request: signing out (DELETE /v1/session) ends one.
        user = store.users.get(users[caller]["user_id"])
        opened = store.users.open_session(user, datetime.now(UTC))
        return {
            "Cookie": f"leadflow_session={opened.session_id}",
            "X-CSRF-Token": opened.csrf_token,
        }

    wrong: list[str] = []
    for (method, path), needs in ROUTES.items():
        if needs == PUBLIC:
            continue
        for caller, holds in HOLDS.items():
            client.cookies.clear()
            answered = client.request(
                method,
                url_of(path),
                headers=credentials(caller),
                json={} if method in ("POST", "PUT", "PATCH") else None,
            )
            if needs == SESSION:
                expected_refusal = 401 if caller in keys else None
            else:
                expected_refusal = None if needs in holds else 403
            status = answered.status_code
            refused = status if status in (401, 403) else None
            if refused != expected_refusal:
                wrong.append(f"{caller} {method} {path}: {status} {answered.text[:120]}")
    assert wrong == []


def test_public_routes_need_neither_a_key_nor_a_session(client: TestClient) -> None:
    for (method, path), needs in ROUTES.items():
        if needs != PUBLIC or path == "/readyz":  # /readyz waits on Temporal: not here
            continue
        answered = client.request(method, url_of(path))
        assert answered.status_code not in (401, 403), f"{method} {path}"
