"""Who sees which leads through the API, on real SQLite and PostgreSQL (issue #19): a rep
their own and the pool, a manager their team's, a director everything; a lead outside the
scope answers 404 like an unknown one, on every route that returns a lead or its data."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from people import ADMIN, create_user, placed_lead, project, sign_in

from api.app import create_app
from leadflow.settings import Settings


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def leads(client: TestClient) -> dict[str, UUID]:
    """rep-east-1's own lead, another east rep's, a west lead, and one in the pool."""
    own = placed_lead(client, "own@example.com", "east")  # rule east-website: rep-east-1
    east = placed_lead(client, "east@example.com", "east", source="fair")  # team east
    west = placed_lead(client, "west@example.com", "west")  # team west
    pooled = placed_lead(client, "pool@example.com", "west")
    # Round robin may have given the east lead to rep-east-1: it goes to the other east rep.
    moved = client.post(
        "/v1/events",
        json={"type": "lead.reassigned", "lead_id": str(east), "data": {"rep_id": "rep-east-2"}},
        headers=ADMIN,
    )
    assert moved.status_code == 202, moved.text
    owner = client.get(f"/v1/leads/{pooled}", headers=ADMIN).json()["owner"]
    released = client.post(
        "/v1/events",
        json={"type": "lead.released", "lead_id": str(pooled), "data": {"rep_id": owner}},
        headers=ADMIN,
    )
    assert released.status_code == 202, released.text
    project(client)
    found = {"own": own, "east": east, "west": west, "pool": pooled}
    states = {name: client.get(f"/v1/leads/{i}", headers=ADMIN).json() for name, i in found.items()}
    assert states["own"]["owner"] == "rep-east-1"
    assert states["east"]["team"] == "east" and states["east"]["owner"] != "rep-east-1"
    assert states["west"]["team"] == "west"
    assert states["pool"]["in_pool"] is True
    return found


def visible(client: TestClient, leads: dict[str, UUID]) -> dict[str, int]:
    return {name: client.get(f"/v1/leads/{i}").status_code for name, i in leads.items()}


def listed(client: TestClient, leads: dict[str, UUID], **filters: str) -> list[str]:
    page = client.get("/v1/leads", params={"limit": 2, **filters})
    assert page.status_code == 200, page.text
    ids = [item["lead_id"] for item in page.json()["items"]]
    while page.json()["next_cursor"] is not None:
        page = client.get(
            "/v1/leads", params={"limit": 2, **filters, "cursor": page.json()["next_cursor"]}
        )
        ids += [item["lead_id"] for item in page.json()["items"]]
    names = {str(i): name for name, i in leads.items()}
    return sorted(names[i] for i in ids)


def test_a_rep_reads_their_own_leads_and_the_pool_and_nothing_else(
    client: TestClient, leads: dict[str, UUID]
) -> None:
    create_user(client, "li@example.com", "rep", "rep-east-1")
    sign_in(client, "li@example.com")
    assert visible(client, leads) == {"own": 200, "east": 404, "west": 404, "pool": 200}
    assert listed(client, leads) == ["own", "pool"]
    assert listed(client, leads, in_pool="false") == ["own"]
    assert listed(client, leads, team="west") == ["pool"]
    for hidden in ("east", "west"):
        lead_id = leads[hidden]
        events = client.get(f"/v1/leads/{lead_id}/events")
        assert events.status_code == 404
        assert events.json()["error"]["code"] == "lead_not_found"
        notes = client.get("/v1/notifications", params={"lead_id": str(lead_id)})
        assert notes.status_code == 404
    assert client.get(f"/v1/leads/{leads['own']}/events").status_code == 200
    unknown = client.get("/v1/leads/8d1c3f7e-4b0a-4e55-9d6a-0c2f1e9b7a11")
    # An unknown lead and a hidden one answer alike: ids do not leak.
    hidden = client.get(f"/v1/leads/{leads['west']}")
    assert unknown.status_code == hidden.status_code == 404
    assert unknown.json()["error"]["code"] == hidden.json()["error"]["code"]


def test_a_manager_reads_their_teams_leads_and_the_pool(
    client: TestClient, leads: dict[str, UUID]
) -> None:
    create_user(client, "liu@example.com", "manager", "mgr-east")
    sign_in(client, "liu@example.com")
    assert visible(client, leads) == {"own": 200, "east": 200, "west": 404, "pool": 200}
    assert listed(client, leads) == ["east", "own", "pool"]


def test_a_director_and_a_key_read_every_lead(client: TestClient, leads: dict[str, UUID]) -> None:
    create_user(client, "sun@example.com", "director", "dir-sales")
    sign_in(client, "sun@example.com")
    assert visible(client, leads) == {"own": 200, "east": 200, "west": 200, "pool": 200}
    assert listed(client, leads) == ["east", "own", "pool", "west"]
    client.cookies.clear()
    page = client.get("/v1/leads", headers=ADMIN)
    assert len(page.json()["items"]) == 4
