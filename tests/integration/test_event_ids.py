"""Event ids and idempotency keys over the HTTP API (real SQLite and PostgreSQL): keys are
each API key's own, a lead's posted event ids are unique in its stream, and no client can
take the id of a decision still to come."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from domain.events import parse_event
from domain.identity import decided_event_id, idempotency_record_id, legacy_event_id
from domain.lead import IdempotencyRecord
from domain.state import Decision
from leadflow.bootstrap import Store
from leadflow.settings import Settings

ADMIN = {"Authorization": "Bearer lf_test_admin"}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def store_of(client: TestClient) -> Store:
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    return store


def another_ingest_key(client: TestClient) -> dict[str, str]:
    issued = client.post("/v1/keys", json={"scopes": ["ingest"]}, headers=ADMIN)
    assert issued.status_code == 201, issued.text
    return {"Authorization": f"Bearer {issued.json()['key']}"}


def capture(email: str, event_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "lead.captured", "data": {"email": email, "source": "web"}}
    if event_id is not None:
        body["event_id"] = event_id
    return body


def test_two_integrations_may_use_the_same_event_id_for_different_leads(
    client: TestClient,
) -> None:
    crm = another_ingest_key(client)
    web = client.post("/v1/events", json=capture("ann@example.com", "form-42"), headers=ADMIN)
    other = client.post("/v1/events", json=capture("bob@example.com", "form-42"), headers=crm)

    assert (web.status_code, other.status_code) == (202, 202)
    assert other.json()["duplicate"] is False
    assert web.json()["lead_id"] != other.json()["lead_id"]
    # Each key's retry is still its own duplicate.
    again = client.post("/v1/events", json=capture("bob@example.com", "form-42"), headers=crm)
    assert again.json() == {**other.json(), "duplicate": True}


def test_an_event_id_taken_on_a_lead_by_another_key_is_409_and_writes_nothing(
    client: TestClient,
) -> None:
    crm = another_ingest_key(client)
    first = client.post("/v1/events", json=capture("ann@example.com", "visit-1"), headers=ADMIN)
    before = store_of(client).event_log.max_position()

    # The same person, the same id, from another integration: it would touch the same lead.
    clash = client.post("/v1/events", json=capture("ann@example.com", "visit-1"), headers=crm)

    assert clash.status_code == 409
    assert clash.json()["error"]["code"] == "event_id_in_use"
    assert clash.json()["error"]["details"][0]["path"] == "/event_id"
    assert store_of(client).event_log.max_position() == before
    follow = {
        "type": "lead.followed_up",
        "lead_id": first.json()["lead_id"],
        "event_id": "visit-1",
        "data": {"rep_id": "rep-a"},
    }
    assert client.post("/v1/events", json=follow, headers=crm).status_code == 409


def test_a_posted_event_id_may_not_be_in_leadflows_own_namespace(client: TestClient) -> None:
    taken = decided_event_id("decision:whatever:0")
    before = store_of(client).event_log.max_position()
    answer = client.post("/v1/events", json=capture("ann@example.com", taken), headers=ADMIN)
    assert answer.status_code == 422
    assert answer.json()["error"]["details"][0]["path"] == "/event_id"
    assert store_of(client).event_log.max_position() == before


def test_a_retry_of_a_post_answered_before_keys_were_scoped_is_a_duplicate(
    client: TestClient,
) -> None:
    store = store_of(client)
    body = capture("ann@example.com", "old-42")
    # What an older release answered and kept, under the key alone.
    [answered] = store.append(
        [parse_event(body, now=datetime.now(UTC), phone_region="CN")], ["old-42"]
    )
    assert isinstance(
        store.event_log.repository.get(idempotency_record_id("old-42")), IdempotencyRecord
    )

    retried = client.post("/v1/events", json=body, headers=ADMIN)
    assert retried.json() == {**answered.as_dict(), "duplicate": True}
    # The same key for another event is another integration's: not a duplicate of it.
    other = client.post("/v1/events", json=capture("bob@example.com", "old-42"), headers=ADMIN)
    assert other.json()["duplicate"] is False


def test_a_decision_recorded_by_an_older_release_is_found_by_a_retry(store: Store) -> None:
    [lead] = store.append(
        [parse_event(capture("ann@example.com"), now=datetime.now(UTC), phone_region="CN")],
        [None],
    )
    lead_id = UUID(str(lead.lead_id))
    name = f"timer:{lead_id}:first_follow_up:2026-01-01T00:00:00+00:00"
    fired = Decision("lead.timer_fired", {"timer": "first_follow_up"})
    kwargs: dict[str, Any] = {
        "occurred_at": datetime.now(UTC),
        "ruleset_version": 1,
        "caused_by": lead.event_id,
    }
    older = store.event_log.record_once(
        lead_id, fired, event_id=legacy_event_id(decided_event_id(name)), **kwargs
    )

    again = store.event_log.record_once(lead_id, fired, event_id=decided_event_id(name), **kwargs)

    assert again == older
    assert [e.type for e in store.event_log.lead_events(lead_id)] == [
        "lead.captured",
        "lead.timer_fired",
    ]
