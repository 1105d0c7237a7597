"""Bounds at the door, over HTTP on the real SQLite and PostgreSQL stores: hostile input is
refused with a 4xx that names the field and the limit, nothing is appended, and what is
accepted at the limits is processed by the read side (the reports keep answering)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from leadflow.bootstrap import Store, projections
from leadflow.settings import Settings
from projections.projector import Projector

ADMIN = {"Authorization": "Bearer lf_test_admin"}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def store_of(client: TestClient) -> Store:
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    return store


def log_size(client: TestClient) -> int:
    return int(store_of(client).event_log.max_position())


def capture(email: str, **data: Any) -> dict[str, Any]:
    return {"type": "lead.captured", "data": {"email": email, "source": "website", **data}}


def post_raw(client: TestClient, path: str, body: str) -> Any:
    """Post text as the body, UTF-8, exactly as written (no re-encoding by the client)."""
    headers = {**ADMIN, "Content-Type": "application/json"}
    return client.post(path, content=body.encode("utf-8", "surrogatepass"), headers=headers)


def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


def paths(error: dict[str, Any]) -> dict[str, str]:
    return {d["path"]: d["message"] for d in error["details"]}


def new_lead(client: TestClient, email: str = "ann@example.com") -> str:
    response = client.post("/v1/events", json=capture(email), headers=ADMIN)
    assert response.status_code == 202, response.text
    lead_id: str = response.json()["lead_id"]
    return lead_id


def test_a_megabyte_of_chinese_attributes_is_refused_with_its_encoded_size(
    client: TestClient,
) -> None:
    before = log_size(client)
    # 340,000 characters: 1,020,000 bytes of UTF-8, under the 1 MiB body limit, but
    # 2,040,008 bytes once Temporal escapes them (over its 2 MiB blob limit with the rest).
    body = json.dumps(
        capture("ann@example.com", attributes={"k": "中" * 340_000}), ensure_ascii=False
    )
    error = error_of(post_raw(client, "/v1/events", body), 422)
    assert error["code"] == "invalid_event"
    found = paths(error)
    assert "2,040,008 bytes once encoded" in found["/data/attributes"]
    assert "at most 16,384" in found["/data/attributes"]
    assert "at most 65,536" in found["/data"]
    assert log_size(client) == before


def test_a_body_nested_100000_deep_is_400_not_500(client: TestClient) -> None:
    before = log_size(client)
    deep = "[" * 100_000 + "]" * 100_000
    for route in ("/v1/events", "/v1/events/batch"):
        error = error_of(post_raw(client, route, deep), 400)
        assert error["code"] == "json_too_deep"
        assert "more than 64 deep" in error["message"]
    assert log_size(client) == before


def objects(depth: int) -> dict[str, Any]:
    """Objects nested `depth` deep: {"n": {"n": ... {}}}."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"n": value}
    return value


def test_a_body_nested_past_64_deep_is_400_on_other_routes_too(client: TestClient) -> None:
    response = client.post("/v1/rulesets/validate", json=objects(70), headers=ADMIN)
    assert error_of(response, 400)["code"] == "json_too_deep"

    # The body, its rules, a rule and its conditions are 3 levels above the conditions.
    def ruleset(conditions_depth: int) -> dict[str, Any]:
        rule = {"id": "r", "when": ["lead.captured"], "conditions": objects(conditions_depth)}
        return {"name": "deep", "rules": [rule]}

    at_limit = client.post("/v1/rulesets/validate", json=ruleset(61), headers=ADMIN)
    assert at_limit.status_code == 200 and at_limit.json()["valid"] is False
    past = client.post("/v1/rulesets/validate", json=ruleset(62), headers=ADMIN)
    assert error_of(past, 400)["code"] == "json_too_deep"


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_literals_are_malformed_json(client: TestClient, literal: str) -> None:
    lead_id = new_lead(client)
    before = log_size(client)
    body = f'{{"type": "lead.won", "lead_id": "{lead_id}", "data": {{"amount": {literal}}}}}'
    error = error_of(post_raw(client, "/v1/events", body), 400)
    assert error["code"] == "malformed_json"
    assert "numbers must be finite" in error["message"]
    assert log_size(client) == before


def test_hostile_values_are_422_naming_the_field(client: TestClient) -> None:
    lead_id = new_lead(client)
    before = log_size(client)
    cases = [
        (
            f'{{"type": "lead.won", "lead_id": "{lead_id}", "data": {{"amount": 1e30}}}}',
            "/data/amount",
            "must be from 0 to 1,000,000,000,000",
        ),
        (
            f'{{"type": "lead.won", "lead_id": "{lead_id}", "data": {{"amount": 0.00001}}}}',
            "/data/amount",
            "must have at most 4 decimal places",
        ),
        (
            json.dumps(capture("b@example.com", attributes={"score": 1})).replace("1}", "1e400}"),
            "/data/attributes/score",
            "must be a finite number",
        ),
        (
            json.dumps(capture("b@example.com", name="Ann\x00")),
            "/data/name",
            "contains a NUL character",
        ),
        (
            '{"type": "lead.captured", "data": {"email": "b@example.com", "source": "web",'
            ' "attributes": {"k\\ud800": {"v": ["\\udc00"]}}}}',
            "/data/attributes/k\ufffd",
            "the key contains a lone UTF-16 surrogate",
        ),
        (
            json.dumps({**capture("b@example.com"), "occurred_at": "0001-01-01T00:00:00+08:00"}),
            "/occurred_at",
            "must be from 1970-01-01T00:00:00Z to ",
        ),
        (
            json.dumps({**capture("b@example.com"), "occurred_at": "9999-12-31T23:59:59-08:00"}),
            "/occurred_at",
            "a day past the server's clock",
        ),
    ]
    for body, path, message in cases:
        error = error_of(post_raw(client, "/v1/events", body), 422)
        assert error["code"] == "invalid_event"
        assert message in paths(error)[path], (body[:80], error)
    assert log_size(client) == before


def test_a_batch_names_each_bad_item_and_writes_none(client: TestClient) -> None:
    before = log_size(client)
    events = [
        capture("ok@example.com"),
        capture("two@example.com", company="Acme\x00"),
        capture("three@example.com", attributes={"deep": [[[[[1]]]]]}),
        capture("four@example.com", attributes={"n": 2**53}),
    ]
    response = client.post("/v1/events/batch", json={"events": events}, headers=ADMIN)
    error = error_of(response, 422)
    assert error["code"] == "invalid_event"
    assert set(paths(error)) == {
        "/events/1/data/company",
        "/events/2/data/attributes/deep/0/0/0/0",
        "/events/3/data/attributes/n",
    }
    assert log_size(client) == before


def test_a_recapture_may_not_grow_the_lead_attributes_past_the_bound(client: TestClient) -> None:
    first = {f"a{i}": i for i in range(150)}
    posted = client.post(
        "/v1/events", json=capture("ann@example.com", attributes=first), headers=ADMIN
    )
    assert posted.status_code == 202
    lead_id = posted.json()["lead_id"]
    before = log_size(client)

    more = {f"b{i}": i for i in range(51)}
    refused = client.post(
        "/v1/events", json=capture("ann@example.com", attributes=more), headers=ADMIN
    )
    error = error_of(refused, 409)
    assert error["code"] == "lead_attributes_full"
    assert paths(error) == {
        "/data/attributes": "with this capture the lead's attributes would hold 201 keys in all "
        "(nested objects included); at most 200"
    }
    # In a batch too, after a first item that adds to the same lead.
    batch = [
        capture("ann@example.com", attributes={"b0": 0}),
        capture("ann@example.com", attributes=more),
    ]
    refused = client.post("/v1/events/batch", json={"events": batch}, headers=ADMIN)
    error = error_of(refused, 409)
    assert error["code"] == "lead_attributes_full"
    assert error["details"][0]["path"] == "/events/1"
    assert log_size(client) == before

    # A touch that fills the lead up to the bound, and one that adds nothing, are taken.
    fill = {f"b{i}": i for i in range(50)}
    assert (
        client.post(
            "/v1/events", json=capture("ann@example.com", attributes=fill), headers=ADMIN
        ).status_code
        == 202
    )
    again = client.post(
        "/v1/events", json=capture("ann@example.com", attributes=first), headers=ADMIN
    )
    assert again.status_code == 202
    lead = client.get(f"/v1/leads/{lead_id}/events", headers=ADMIN).json()["events"]
    assert len(lead) == 3


def test_the_reports_answer_for_values_at_the_limits(client: TestClient) -> None:
    top = 10**12
    first = {
        **capture("ann@example.com", campaign_id="spring"),
        "occurred_at": "1970-01-01T00:00:00Z",
    }
    lead_id = client.post("/v1/events", json=first, headers=ADMIN).json()["lead_id"]
    for type_, data in (
        ("lead.reassigned", {"rep_id": "rep-a"}),
        ("lead.qualified", {"stage": "MQL"}),
        ("lead.opportunity_opened", {"amount": "999999999999.9999"}),
        ("lead.won", {"amount": top, "currency": "CNY"}),
    ):
        body = {"type": type_, "lead_id": lead_id, "data": data}
        assert client.post("/v1/events", json=body, headers=ADMIN).status_code == 202
    spend = {
        "type": "campaign.spend_recorded",
        "data": {
            "campaign_id": "spring",
            "amount": "0.0001",
            "period_start": "1970-01-01",
            "period_end": "2100-12-31",
        },
    }
    assert client.post("/v1/events", json=spend, headers=ADMIN).status_code == 202
    store = store_of(client)
    Projector(store.event_log, store.engine, projections()).catch_up()

    def rows(report: str) -> list[dict[str, Any]]:
        response = client.get(f"/v1/reports/{report}", headers=ADMIN)
        assert response.status_code == 200, (report, response.text)
        found: list[dict[str, Any]] = response.json()["rows"]
        return found

    assert rows("kpis")[0]["revenue"] == top
    [rep] = rows("leaderboard")
    assert (rep["id"], rep["won_count"], rep["won_amount"]) == ("rep-a", 1, top)
    months = rows("campaign-roi")
    assert (months[0]["period_start"], months[-1]["period_start"]) == ("1970-01-01", "2100-12-01")
    assert [m["revenue"] for m in months if m["revenue"]] == [top]
    assert rows("funnel")[-1] == {"stage": "won", "count": 1, "step_rate": 1.0}


@pytest.mark.parametrize(
    ("method", "path", "named"),
    [
        ("GET", "/v1/leads?owner=%00", "/owner"),
        ("GET", "/v1/quarantine?stage=east%00", "/stage"),
        ("GET", "/v1/quarantine/%00", "/item_id"),
        ("POST", "/v1/quarantine/%00/retry", "/item_id"),
        ("POST", "/v1/quarantine/%00/skip", "/item_id"),
        ("GET", "/v1/replays/%00", "/replay_id"),
        ("POST", "/v1/replays/%00/cancel", "/replay_id"),
        ("POST", "/v1/keys/%00/revoke", "/key_id"),
        ("POST", "/v1/keys/%00/rotate", "/key_id"),
        ("GET", "/t/c/message?u=https://example.com/%00", "/u"),
    ],
)
def test_a_nul_in_a_path_or_query_parameter_is_422_naming_it(
    client: TestClient, method: str, path: str, named: str
) -> None:
    """PostgreSQL refuses NUL in text: these were 500s there."""
    before = log_size(client)
    error = error_of(client.request(method, path, headers=ADMIN), 422)
    assert error["code"] == "invalid_request"
    assert named in paths(error) and "NUL" in paths(error)[named]
    assert log_size(client) == before
