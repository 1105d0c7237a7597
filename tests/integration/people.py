"""Test helpers for people who sign in (issue #19): create users through the admin API and
sign them in, leads placed with owners and teams by the real decision step."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from fastapi.testclient import TestClient

from leadflow.bootstrap import Store, projections
from projections.projector import Projector

ADMIN = {"Authorization": "Bearer lf_test_admin"}
PASSWORD = "correct horse battery"
# One person of each role in the demo directory (rules/default_directory.json).
PEOPLE = {
    "rep": "rep-east-1",
    "manager": "mgr-east",
    "director": "dir-sales",
    "admin": None,
}


def create_user(
    client: TestClient, login: str, role: str, person_id: str | None, **more: Any
) -> dict[str, Any]:
    body = {"login": login, "role": role, "person_id": person_id, "password": PASSWORD, **more}
    created = client.post("/v1/users", json=body, headers=ADMIN)
    assert created.status_code == 201, created.text
    user: dict[str, Any] = created.json()
    return user


def sign_in(client: TestClient, login: str, password: str = PASSWORD) -> str:
    """Sign `login` in on `client` (its cookie jar keeps the session); the CSRF token."""
    answered = client.post("/v1/session", json={"login": login, "password": password})
    assert answered.status_code == 200, answered.text
    token: str = answered.json()["csrf_token"]
    return token


def store_of(client: TestClient) -> Store:
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    return store


def placed_lead(client: TestClient, email: str, region: str, source: str = "website") -> UUID:
    """A lead captured by key and decided by the active ruleset (east website leads go to
    rep-east-1, other east leads to team east, west leads to team west)."""
    body = {"type": "lead.captured", "data": {"email": email, "source": source, "region": region}}
    posted = client.post("/v1/events", json=body, headers=ADMIN)
    assert posted.status_code == 202, posted.text
    store = store_of(client)
    lead_id = UUID(posted.json()["lead_id"])
    store.event_log.decide(
        lead_id,
        "lead.captured",
        posted.json()["event_id"],
        datetime.now(UTC),
        store.rulebook.active(),
        store.rulebook.directory(),
        {},
    )
    return lead_id


def project(client: TestClient) -> None:
    store = store_of(client)
    Projector(store.event_log, store.engine, projections()).catch_up()
