"""Rulesets and the directory over HTTP, on SQLite and PostgreSQL (SPEC §5, §6)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from leadflow.settings import Settings
from store.rulebook import default_directory_document, default_ruleset_document

ADMIN = {"Authorization": "Bearer lf_test_admin"}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def east_to(rep: str) -> dict[str, Any]:
    """The default ruleset with east website leads routed to `rep`."""
    ruleset = copy.deepcopy(default_ruleset_document())
    ruleset["name"] = f"east to {rep}"
    [rule] = [r for r in ruleset["rules"] if r["id"] == "east-website"]
    rule["actions"][0]["params"]["rep"] = rep
    return ruleset


def test_first_start_installs_the_demo_directory_and_the_default_ruleset(
    client: TestClient,
) -> None:
    listing = client.get("/v1/rulesets", headers=ADMIN).json()
    assert listing["active_version"] == 1
    assert [(r["version"], r["name"], r["active"]) for r in listing["rulesets"]] == [
        (1, "default", True)
    ]
    active = client.get("/v1/rulesets/active", headers=ADMIN).json()
    assert active["version"] == 1 and active["ruleset"]["name"] == "default"
    directory = client.get("/v1/directory", headers=ADMIN).json()
    assert {r["id"] for r in directory["reps"]} == {
        r["id"] for r in default_directory_document()["reps"]
    }


def test_publish_activate_and_roll_back(client: TestClient) -> None:
    published = client.post("/v1/rulesets", json=east_to("rep-east-2"), headers=ADMIN)
    assert published.status_code == 201 and published.json() == {"version": 2}
    # Published is not active until activated.
    assert client.get("/v1/rulesets/active", headers=ADMIN).json()["version"] == 1
    assert client.post("/v1/rulesets/2/activate", headers=ADMIN).json() == {"active_version": 2}
    active = client.get("/v1/rulesets/active", headers=ADMIN).json()
    assert active["version"] == 2 and active["name"] == "east to rep-east-2"
    assert active["published_by"] == "bootstrap"
    # Rollback is activating the earlier version.
    assert client.post("/v1/rulesets/1/activate", headers=ADMIN).status_code == 200
    listing = client.get("/v1/rulesets", headers=ADMIN).json()
    assert [(r["version"], r["active"]) for r in listing["rulesets"]] == [(1, True), (2, False)]
    assert (
        client.get("/v1/rulesets/2", headers=ADMIN).json()["ruleset"]["name"]
        == "east to rep-east-2"
    )
    assert client.get("/v1/rulesets/9", headers=ADMIN).status_code == 404
    assert client.post("/v1/rulesets/9/activate", headers=ADMIN).status_code == 404


def test_an_invalid_ruleset_is_refused_with_paths_and_nothing_changes(client: TestClient) -> None:
    bad = east_to("rep-nobody")
    bad["rules"][1]["conditions"]["all"][0]["name"] = "colour"
    bad["timers"][0]["after"] = "tomorrow"
    validated = client.post("/v1/rulesets/validate", json=bad, headers=ADMIN).json()
    assert validated["valid"] is False
    paths = {e["path"] for e in validated["errors"]}
    assert "/rules/1/conditions/all/0/name" in paths
    assert "/timers/0/after" in paths
    assert any(p.startswith("/rules/1/actions/0/params/rep") for p in paths)

    refused = client.post("/v1/rulesets", json=bad, headers=ADMIN)
    assert refused.status_code == 422
    assert {d["path"] for d in refused.json()["error"]["details"]} == paths
    listing = client.get("/v1/rulesets", headers=ADMIN).json()
    assert listing["active_version"] == 1 and len(listing["rulesets"]) == 1

    good = client.post("/v1/rulesets/validate", json=east_to("rep-east-2"), headers=ADMIN).json()
    assert good == {"valid": True, "errors": []}


def test_a_version_naming_a_rep_the_directory_dropped_cannot_be_activated(
    client: TestClient,
) -> None:
    assert client.post("/v1/rulesets", json=east_to("rep-east-2"), headers=ADMIN).status_code == 201
    directory = default_directory_document()
    directory["reps"] = [r for r in directory["reps"] if r["id"] != "rep-east-2"]
    assert client.put("/v1/directory", json=directory, headers=ADMIN).status_code == 200
    refused = client.post("/v1/rulesets/2/activate", headers=ADMIN)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "ruleset_invalid"
    assert client.get("/v1/rulesets/active", headers=ADMIN).json()["version"] == 1


def test_directory_validation(client: TestClient) -> None:
    directory = default_directory_document()
    directory["reps"].append(dict(directory["reps"][0]))
    directory["reps"][1]["team"] = "north"
    refused = client.put("/v1/directory", json=directory, headers=ADMIN)
    assert refused.status_code == 422
    paths = {d["path"] for d in refused.json()["error"]["details"]}
    assert {"/reps/4/id", "/reps/1/team"} <= paths
    # Nothing was stored: the directory is the one from before.
    assert client.get("/v1/directory", headers=ADMIN).json()["reps"][1]["team"] == "east"


def test_only_admins_change_rules(client: TestClient, settings: Settings) -> None:
    from leadflow.bootstrap import open_store

    store = open_store(settings)
    reader = {"Authorization": f"Bearer {store.keys.create(['read'])}"}
    store.close()
    assert (
        client.post("/v1/rulesets", json=east_to("rep-east-2"), headers=reader).status_code == 403
    )
    assert client.post("/v1/rulesets/1/activate", headers=reader).status_code == 403
    assert (
        client.put("/v1/directory", json=default_directory_document(), headers=reader).status_code
        == 403
    )
    assert client.get("/v1/rulesets", headers=reader).status_code == 200


def test_the_schema_is_enough_for_a_rule_builder(client: TestClient) -> None:
    schema = client.get("/v1/rulesets/schema", headers=ADMIN).json()
    variables = {v["name"]: v for v in schema["variables"]}
    assert "equal_to" in variables["source"]["operators"]
    assert "greater_than" in variables["score"]["operators"]
    actions = {a["name"]: a for a in schema["actions"]}
    assert set(actions) >= {"assign_to_rep", "assign_to_team", "notify", "assign_variant"}
    assert "strategy" in actions["assign_to_team"]["params"]["properties"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/rulesets/9223372036854775807"),
        ("POST", "/v1/rulesets/9223372036854775807/activate"),
    ],
)
def test_a_version_past_what_a_store_can_hold_is_an_unknown_version(
    client: TestClient, method: str, path: str
) -> None:
    """2**63 - 1 overflowed the stores' query (500) instead of naming no version."""
    answer = client.request(method, path, headers=ADMIN)
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"]["code"] == "ruleset_not_found"
    assert client.get("/v1/rulesets/active", headers=ADMIN).json()["version"] == 1
