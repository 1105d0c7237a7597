"""`POST /v1/rulesets/describe` (issue #18): a candidate in words against the active or a
given version, on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from leadflow.bootstrap import open_store
from leadflow.settings import Settings
from store.rulebook import default_ruleset_document

ADMIN = {"Authorization": "Bearer lf_test_admin"}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def east_to(rep: str) -> dict[str, Any]:
    ruleset = copy.deepcopy(default_ruleset_document())
    [rule] = [r for r in ruleset["rules"] if r["id"] == "east-website"]
    rule["actions"][0]["params"]["rep"] = rep
    return ruleset


def test_a_candidate_against_the_active_version_in_words(client: TestClient) -> None:
    answer = client.post(
        "/v1/rulesets/describe", json={"candidate": east_to("rep-east-2")}, headers=ADMIN
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["base_version"] == 1
    assert body["changes"] == [
        {
            "kind": "changed",
            "subject": "rule",
            "id": "east-website",
            "before": body["changes"][0]["before"],
            "after": body["changes"][0]["after"],
            "differences": ["assigns to Zhang Min instead of Li Wei"],
        }
    ]
    assert "assign to Li Wei" in body["changes"][0]["before"]
    assert "assign to Zhang Min" in body["changes"][0]["after"]
    sentences = {s["id"]: s["sentence"] for s in body["candidate"]}
    assert sentences["reclaim"].startswith("The reclaim timer runs out 48 hours")
    assert len(body["base"]) == len(body["candidate"])


def test_a_candidate_against_a_named_version(client: TestClient) -> None:
    assert client.post("/v1/rulesets", json=east_to("rep-east-2"), headers=ADMIN).status_code == 201
    answer = client.post(
        "/v1/rulesets/describe",
        json={"candidate": default_ruleset_document(), "base_version": 2},
        headers=ADMIN,
    ).json()
    assert answer["base_version"] == 2
    assert answer["changes"][0]["differences"] == ["assigns to Li Wei instead of Zhang Min"]
    # Against itself: nothing changes.
    same = client.post(
        "/v1/rulesets/describe",
        json={"candidate": default_ruleset_document(), "base_version": 1},
        headers=ADMIN,
    ).json()
    assert same["changes"] == []


def test_an_invalid_candidate_is_named_by_path_under_candidate(client: TestClient) -> None:
    refused = client.post(
        "/v1/rulesets/describe", json={"candidate": east_to("rep-nobody")}, headers=ADMIN
    )
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["code"] == "invalid_ruleset"
    [rule_index] = [
        i for i, r in enumerate(default_ruleset_document()["rules"]) if r["id"] == "east-website"
    ]
    assert [d["path"] for d in error["details"]] == [
        f"/candidate/rules/{rule_index}/actions/0/params/rep"
    ]


def test_an_unknown_base_version_is_404(client: TestClient) -> None:
    answer = client.post(
        "/v1/rulesets/describe",
        json={"candidate": default_ruleset_document(), "base_version": 99},
        headers=ADMIN,
    )
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "ruleset_not_found"


def test_describing_needs_a_read_key(client: TestClient, settings: Settings) -> None:
    body = {"candidate": default_ruleset_document()}
    assert client.post("/v1/rulesets/describe", json=body).status_code == 401
    store = open_store(settings)
    ingest = {"Authorization": f"Bearer {store.keys.create(['ingest'])}"}
    reader = {"Authorization": f"Bearer {store.keys.create(['read'])}"}
    store.close()
    assert client.post("/v1/rulesets/describe", json=body, headers=ingest).status_code == 403
    assert client.post("/v1/rulesets/describe", json=body, headers=reader).status_code == 200
