"""The public pool over HTTP, on SQLite and PostgreSQL: claims respect the rep (known,
active, with room), the former owner's cool-down and the daily claim limit; a refused
claim appends nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from leadflow.bootstrap import Store
from leadflow.settings import Settings

ADMIN = {"Authorization": "Bearer lf_test_admin"}
NOW = datetime.now(UTC)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def store_of(client: TestClient) -> Store:
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    return store


def use_pool_policy(client: TestClient, **pool: Any) -> None:
    """No rule assigns anyone, so every captured lead lands in the pool."""
    rulebook = store_of(client).rulebook
    version = rulebook.publish({"name": "pool only", "pool": pool}, "test", NOW)
    rulebook.activate(version, "test", NOW)


def pooled_lead(client: TestClient, email: str) -> str:
    """A captured lead, decided as the workflow would (no Temporal needed here)."""
    posted = client.post(
        "/v1/events",
        json={"type": "lead.captured", "data": {"email": email, "source": "web"}},
        headers=ADMIN,
    ).json()
    store = store_of(client)
    store.event_log.decide(
        UUID(posted["lead_id"]),
        "lead.captured",
        posted["event_id"],
        NOW,
        store.rulebook.active(),
        store.rulebook.directory(),
        {},
    )
    lead_id: str = posted["lead_id"]
    return lead_id


def post(client: TestClient, type_: str, lead_id: str, rep: str) -> Any:
    return client.post(
        "/v1/events",
        json={"type": type_, "lead_id": lead_id, "data": {"rep_id": rep}},
        headers=ADMIN,
    )


def stream_length(client: TestClient, lead_id: str) -> int:
    return len(client.get(f"/v1/leads/{lead_id}/events", headers=ADMIN).json()["events"])


def test_claim_release_and_the_former_owners_cool_down(client: TestClient) -> None:
    use_pool_policy(client, claim_cooldown="P2D")
    lead = pooled_lead(client, "ann@x.io")
    assert client.get(f"/v1/leads/{lead}", headers=ADMIN).json()["in_pool"] is True

    assert post(client, "lead.claimed", lead, "rep-east-1").status_code == 202
    state = client.get(f"/v1/leads/{lead}", headers=ADMIN).json()
    assert (state["owner"], state["in_pool"]) == ("rep-east-1", False)
    taken = post(client, "lead.claimed", lead, "rep-east-2")
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "lead_not_in_pool"
    not_owner = post(client, "lead.released", lead, "rep-east-2")
    assert not_owner.status_code == 409 and not_owner.json()["error"]["code"] == "not_lead_owner"
    assert post(client, "lead.released", lead, "rep-east-1").status_code == 202

    before = stream_length(client, lead)
    again = post(client, "lead.claimed", lead, "rep-east-1")
    assert again.status_code == 409 and again.json()["error"]["code"] == "claim_cooldown"
    unknown = post(client, "lead.claimed", lead, "rep-nobody")
    assert unknown.status_code == 422
    assert unknown.json()["error"]["details"][0]["path"] == "/data/rep_id"
    assert stream_length(client, lead) == before
    assert post(client, "lead.claimed", lead, "rep-east-2").status_code == 202


def test_the_daily_claim_limit(client: TestClient) -> None:
    use_pool_policy(client, daily_claim_limit=2)
    leads = [pooled_lead(client, f"p{i}@x.io") for i in range(3)]
    assert [post(client, "lead.claimed", lead, "rep-west-1").status_code for lead in leads[:2]] == [
        202,
        202,
    ]
    refused = post(client, "lead.claimed", leads[2], "rep-west-1")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "daily_claim_limit_reached"
    # Another rep has their own count.
    assert post(client, "lead.claimed", leads[2], "rep-west-2").status_code == 202


def test_an_inactive_rep_cannot_claim(client: TestClient) -> None:
    use_pool_policy(client)
    directory = client.get("/v1/directory", headers=ADMIN).json()
    for rep in directory["reps"]:
        rep["active"] = rep["id"] != "rep-east-2"
    assert client.put("/v1/directory", json=directory, headers=ADMIN).status_code == 200
    lead = pooled_lead(client, "cy@x.io")
    refused = post(client, "lead.claimed", lead, "rep-east-2")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "rep_inactive"
