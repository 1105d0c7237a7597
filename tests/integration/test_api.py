"""The HTTP API over a real store (SQLite and PostgreSQL), without Temporal: ingest must
never need it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from leadflow.bootstrap import open_store
from leadflow.settings import Settings

ADMIN = {"Authorization": "Bearer lf_test_admin"}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def capture(email: str, **extra: Any) -> dict[str, Any]:
    return {"type": "lead.captured", "data": {"email": email, "source": "website"}, **extra}


def total_events(client: TestClient) -> int:
    store = client.app.state.store  # type: ignore[attr-defined]
    return int(store.event_log.max_position())


def key_with(settings: Settings, scope: str) -> dict[str, str]:
    store = open_store(settings)
    try:
        return {"Authorization": f"Bearer {store.keys.create([scope])}"}
    finally:
        store.close()


def test_capture_then_read_the_lead_and_its_stream(client: TestClient) -> None:
    posted = client.post("/v1/events", json=capture(" Ann@Example.com"), headers=ADMIN)
    assert posted.status_code == 202
    body = posted.json()
    assert body["new_lead"] is True and body["duplicate"] is False and body["sequence"] == 1
    lead_id = body["lead_id"]
    follow = {
        "type": "lead.followed_up",
        "lead_id": lead_id,
        "data": {"rep_id": "rep-a", "kind": "call"},
    }
    assert client.post("/v1/events", json=follow, headers=ADMIN).json()["sequence"] == 2

    lead = client.get(f"/v1/leads/{lead_id}", headers=ADMIN).json()
    assert (lead["email"], lead["source"], lead["followups_count"]) == (
        "ann@example.com",
        "website",
        1,
    )
    events = client.get(f"/v1/leads/{lead_id}/events", headers=ADMIN).json()["events"]
    assert [(e["sequence"], e["type"]) for e in events] == [
        (1, "lead.captured"),
        (2, "lead.followed_up"),
    ]
    assert events[1]["data"]["kind"] == "call"


def test_keys_and_scopes(client: TestClient, settings: Settings) -> None:
    assert client.post("/v1/events", json=capture("a@x.io")).status_code == 401
    bad = client.post(
        "/v1/events", json=capture("a@x.io"), headers={"Authorization": "Bearer nope"}
    )
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "unauthenticated"
    reader = key_with(settings, "read")
    forbidden = client.post("/v1/events", json=capture("a@x.io"), headers=reader)
    assert forbidden.status_code == 403
    ingest = key_with(settings, "ingest")
    lead_id = client.post("/v1/events", json=capture("a@x.io"), headers=ingest).json()["lead_id"]
    assert client.get(f"/v1/leads/{lead_id}", headers=ingest).status_code == 403
    assert client.get(f"/v1/leads/{lead_id}", headers=reader).status_code == 200


def test_bad_input_names_the_field_and_writes_nothing(client: TestClient) -> None:
    before = total_events(client)
    response = client.post(
        "/v1/events",
        json={"type": "lead.captured", "data": {"email": "not-an-email", "source": ""}},
        headers=ADMIN,
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_event"
    assert {d["path"] for d in error["details"]} == {"/data/email", "/data/source"}

    decided = client.post(
        "/v1/events",
        json={
            "type": "lead.assigned",
            "lead_id": "6f1c1b7e-2a5d-4c44-9a7b-0c1f5b1f0c11",
            "data": {},
        },
        headers=ADMIN,
    )
    assert decided.status_code == 422 and decided.json()["error"]["details"][0]["path"] == "/type"

    malformed = client.post("/v1/events", content=b"{not json", headers=ADMIN)
    assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "malformed_json"
    assert total_events(client) == before


def test_unknown_lead_is_404_and_conflicts_are_409(client: TestClient) -> None:
    missing = "6f1c1b7e-2a5d-4c44-9a7b-0c1f5b1f0c11"
    assert client.get(f"/v1/leads/{missing}", headers=ADMIN).status_code == 404
    follow = {"type": "lead.followed_up", "lead_id": missing, "data": {"rep_id": "r"}}
    assert client.post("/v1/events", json=follow, headers=ADMIN).status_code == 404

    lead_id = client.post("/v1/events", json=capture("a@x.io"), headers=ADMIN).json()["lead_id"]
    before = total_events(client)
    claim = {"type": "lead.claimed", "lead_id": lead_id, "data": {"rep_id": "rep-a"}}
    response = client.post("/v1/events", json=claim, headers=ADMIN)
    assert response.status_code == 409 and response.json()["error"]["code"] == "lead_not_in_pool"
    sql = {"type": "lead.qualified", "lead_id": lead_id, "data": {"stage": "SQL"}}
    assert client.post("/v1/events", json=sql, headers=ADMIN).status_code == 202
    mql = {"type": "lead.qualified", "lead_id": lead_id, "data": {"stage": "MQL"}}
    back = client.post("/v1/events", json=mql, headers=ADMIN)
    assert back.status_code == 409 and back.json()["error"]["code"] == "stage_would_move_backward"
    assert total_events(client) == before + 1


def test_idempotency_by_event_id_and_header(client: TestClient) -> None:
    first = client.post(
        "/v1/events", json=capture("a@x.io", event_id="web-1"), headers=ADMIN
    ).json()
    again = client.post(
        "/v1/events", json=capture("a@x.io", event_id="web-1"), headers=ADMIN
    ).json()
    assert again == {**first, "duplicate": True}
    keyed = {**ADMIN, "Idempotency-Key": "retry-7"}
    one = client.post("/v1/events", json=capture("b@x.io"), headers=keyed).json()
    two = client.post("/v1/events", json=capture("b@x.io"), headers=keyed).json()
    assert two == {**one, "duplicate": True}
    reused = client.post("/v1/events", json=capture("c@x.io"), headers=keyed)
    assert reused.status_code == 409 and reused.json()["error"]["code"] == "idempotency_key_reused"


def test_batch_answers_in_order_and_is_validated_whole(client: TestClient) -> None:
    events = [capture(f"user{i}@x.io") for i in range(5)] + [capture("user0@x.io")]
    response = client.post("/v1/events/batch", json={"events": events}, headers=ADMIN)
    assert response.status_code == 202
    results = response.json()["results"]
    assert [r["new_lead"] for r in results] == [True] * 5 + [False]
    assert results[5]["lead_id"] == results[0]["lead_id"]

    before = total_events(client)
    bad = [capture("ok@x.io"), {"type": "lead.captured", "data": {"source": "web"}}]
    rejected = client.post("/v1/events/batch", json={"events": bad}, headers=ADMIN)
    assert rejected.status_code == 422
    assert rejected.json()["error"]["details"] == [
        {"path": "/events/1/data", "message": "email or phone is required"}
    ]
    conflict = [
        capture("ok@x.io"),
        {"type": "lead.claimed", "lead_id": results[0]["lead_id"], "data": {"rep_id": "r"}},
    ]
    refused = client.post("/v1/events/batch", json={"events": conflict}, headers=ADMIN)
    assert refused.status_code == 409
    assert refused.json()["error"]["details"][0]["path"] == "/events/1"
    assert total_events(client) == before


def test_size_limits(client: TestClient) -> None:
    before = total_events(client)
    too_many = {"events": [capture(f"u{i}@x.io") for i in range(1001)]}
    response = client.post("/v1/events/batch", json=too_many, headers=ADMIN)
    assert response.status_code == 413 and response.json()["error"]["code"] == "batch_too_large"
    huge = capture("a@x.io")
    huge["data"]["attributes"] = {"blob": "x" * (1024 * 1024)}
    response = client.post("/v1/events", content=json.dumps(huge), headers=ADMIN)
    assert response.status_code == 413 and response.json()["error"]["code"] == "body_too_large"
    assert total_events(client) == before


def test_without_temporal_the_api_is_ready_but_degraded_naming_what_is_down(
    client: TestClient,
) -> None:
    """The API can still do its job (append) while Temporal is away: ready, degraded."""
    assert client.get("/livez").json() == {"status": "ok"}
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "degraded"
    assert body["checks"] == {"database": "up", "temporal": "down", "worker": "down"}
