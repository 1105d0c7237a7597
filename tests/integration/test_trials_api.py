"""Ruleset trials over HTTP and on the store, on SQLite and PostgreSQL (docs/trials.md):
starting, stopping and promoting shadows and canaries, every refusal naming what is wrong,
shadow decisions recorded beside the real ones (once, however often retried; a failing
shadow never failing the decision) and the trial report read from them.

Triggers are decided here by `EventLog.decide`, the store path the decisions activity
takes; tests/integration/test_trials.py runs the same through real workflows."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from domain.events import parse_event
from leadflow.bootstrap import Store, open_store
from leadflow.settings import Settings
from replay.whatif import WhatIf, answer
from rules.evaluate import Checkpoint
from rules.model import Ruleset
from store.decisions import TrialRulesets
from store.rulebook import default_directory_document, default_ruleset_document
from store.shadow_decisions import shadow_decisions

ADMIN = {"Authorization": "Bearer lf_test_admin"}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def store(client: TestClient, settings: Settings) -> Iterator[Store]:
    """The same database as the API's (opened after it installed the defaults)."""
    opened = open_store(settings)
    yield opened
    opened.close()


def east_to(rep: str) -> dict[str, Any]:
    """The default ruleset with east website leads routed to `rep`."""
    ruleset = copy.deepcopy(default_ruleset_document())
    ruleset["name"] = f"east to {rep}"
    [rule] = [r for r in ruleset["rules"] if r["id"] == "east-website"]
    rule["actions"][0]["params"]["rep"] = rep
    return ruleset


def publish(client: TestClient, document: dict[str, Any]) -> int:
    answer = client.post("/v1/rulesets", json=document, headers=ADMIN)
    assert answer.status_code == 201, answer.text
    version: int = answer.json()["version"]
    return version


def capture_and_decide(
    store: Store, email: str, region: str, budget: Any = None
) -> tuple[UUID, str]:
    """Capture a website lead and decide its capture as the decisions activity does."""
    event = parse_event(
        {
            "type": "lead.captured",
            "data": {"email": email, "source": "website", "region": region},
        },
        now=datetime.now(UTC),
        phone_region="CN",
    )
    [appended] = store.append([event], [event.event_id])
    decide(store, appended.lead_id, appended.event_id, budget)
    return appended.lead_id, appended.event_id


def decide(store: Store, lead_id: UUID, cause_id: str, budget: Any = None) -> Any:
    rulebook = store.rulebook
    trials, rulesets = rulebook.trial_rulesets()
    return store.event_log.decide(
        lead_id,
        "lead.captured",
        cause_id,
        datetime.now(UTC),
        rulebook.active(),
        rulebook.directory(),
        {},
        trials=TrialRulesets(trials, rulesets, budget),
    )


def shadow_rows(store: Store) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(shadow_decisions)).mappings()]


def test_a_shadow_is_reported_and_changes_nothing(client: TestClient, store: Store) -> None:
    version = publish(client, east_to("rep-east-2"))
    started = client.post(f"/v1/rulesets/{version}/shadow", headers=ADMIN)
    assert started.status_code == 200, started.text
    assert started.json()["mode"] == "shadow" and started.json()["version"] == version
    listing = client.get("/v1/rulesets", headers=ADMIN).json()
    assert [(r["version"], r["mode"]) for r in listing["rulesets"]] == [
        (1, "active"),
        (version, "shadow"),
    ]
    trials = client.get("/v1/rulesets/trials", headers=ADMIN).json()
    assert trials["active_version"] == 1
    assert [(t["mode"], t["version"], t["started_by"]) for t in trials["trials"]] == [
        ("shadow", version, "bootstrap")
    ]

    east = [capture_and_decide(store, f"e{i}@x.io", "east")[0] for i in range(3)]
    west, _ = capture_and_decide(store, "w@x.io", "west")

    # The real decisions: the active version's, nothing of the shadow on the leads.
    for lead in east:
        state = store.event_log.lead_state(lead)
        assert state.owner == "rep-east-1"
        versions = {e.ruleset_version for e in store.event_log.lead_events(lead) if e.caused_by}
        assert versions == {1}
    rows = shadow_rows(store)
    assert len(rows) == 4 and {r["mode"] for r in rows} == {"shadow"}
    assert {r["lead_id"]: r["agrees"] for r in rows} == {
        **{str(lead): False for lead in east},
        str(west): True,
    }

    report = client.get(f"/v1/rulesets/{version}/trial-report", headers=ADMIN).json()
    assert (report["mode"], report["triggers_compared"]) == ("shadow", 4)
    assert (report["agreeing"], report["disagreeing"], report["failures"]) == (1, 3, 0)
    assert report["by_trigger"] == [{"trigger": "lead.captured", "count": 3}]
    [move] = report["assignment_moves"]
    assert (move["from_owner"], move["to_owner"], move["count"]) == ("rep-east-1", "rep-east-2", 3)
    assert set(move["example_lead_ids"]) == {str(lead) for lead in east}
    # A window that ends before the decisions holds none of them.
    early = client.get(f"/v1/rulesets/{version}/trial-report?to=2020-01-01", headers=ADMIN).json()
    assert early["triggers_compared"] == 0
    bad = client.get(f"/v1/rulesets/{version}/trial-report?from=yesterday", headers=ADMIN)
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["path"] == "/from"

    # Stopped: no more rows; the report stays readable.
    stopped = client.post(f"/v1/rulesets/{version}/stop", headers=ADMIN)
    assert stopped.status_code == 200 and stopped.json()["trials"] == []
    capture_and_decide(store, "late@x.io", "east")
    assert len(shadow_rows(store)) == 4
    after = client.get(f"/v1/rulesets/{version}/trial-report", headers=ADMIN).json()
    assert (after["mode"], after["trial"], after["disagreeing"]) == (None, None, 3)


def test_shadow_rows_are_written_once_and_a_failing_shadow_fails_nothing(
    client: TestClient, store: Store
) -> None:
    version = publish(client, east_to("rep-east-2"))
    assert client.post(f"/v1/rulesets/{version}/shadow", headers=ADMIN).status_code == 200

    def spent() -> Checkpoint:
        def checkpoint() -> None:
            raise TimeoutError("the shadow's budget is spent")

        return checkpoint

    lead, cause = capture_and_decide(store, "ann@x.io", "east", budget=spent)
    # The real decision happened, under the active version.
    assert store.event_log.lead_state(lead).owner == "rep-east-1"
    [row] = shadow_rows(store)
    assert row["agrees"] is False and "budget is spent" in row["error"]
    assert row["other_decisions"] == "[]"
    # A retried activity finds its decisions and writes no second row.
    again = decide(store, lead, cause)
    assert [e.type for e in again.events] == ["lead.assigned", "lead.task_created"]
    assert len(shadow_rows(store)) == 1
    report = client.get(f"/v1/rulesets/{version}/trial-report", headers=ADMIN).json()
    assert report["failures"] == 1


def test_canary_decides_its_share_of_new_leads_and_promote_makes_it_active(
    client: TestClient, store: Store
) -> None:
    version = publish(client, east_to("rep-east-2"))
    started = client.post(f"/v1/rulesets/{version}/canary", json={"share": 0.5}, headers=ADMIN)
    assert started.status_code == 200, started.text
    assert (started.json()["mode"], started.json()["share"]) == ("canary", 0.5)
    owners = {}
    for i in range(12):
        lead, _ = capture_and_decide(store, f"c{i}@x.io", "east")
        owners[lead] = store.event_log.lead_state(lead).owner
    canary_leads = [lead for lead, owner in owners.items() if owner == "rep-east-2"]
    assert 0 < len(canary_leads) < 12
    for lead, owner in owners.items():
        versions = {e.ruleset_version for e in store.event_log.lead_events(lead) if e.caused_by}
        assert versions == ({version} if owner == "rep-east-2" else {1})
    rows = shadow_rows(store)
    assert {r["lead_id"] for r in rows} == {str(lead) for lead in canary_leads}
    assert {(r["mode"], r["version_used"], r["other_version"]) for r in rows} == {
        ("canary", version, 1)
    }
    report = client.get(f"/v1/rulesets/{version}/trial-report", headers=ADMIN).json()
    assert report["mode"] == "canary" and report["disagreeing"] == len(canary_leads)
    [move] = report["assignment_moves"]
    assert (move["from_owner"], move["to_owner"]) == ("rep-east-1", "rep-east-2")

    # The what-if baseline "as it ran" knows the canary: replaying every lead under the
    # canary version changes only the leads the canary did not decide.
    candidate = Ruleset.model_validate(store.rulebook.get(version).document)
    diff = answer(WhatIf(candidate), store.event_log, store.rulebook, parallel_from=None)
    moved = {change.lead_id for change in diff.assignments}
    assert moved == {str(lead) for lead in owners if lead not in canary_leads}

    promoted = client.post(f"/v1/rulesets/{version}/promote", headers=ADMIN)
    assert promoted.status_code == 200 and promoted.json() == {"active_version": version}
    assert client.get("/v1/rulesets/trials", headers=ADMIN).json() == {
        "active_version": version,
        "trials": [],
    }
    lead, _ = capture_and_decide(store, "after@x.io", "east")
    assert store.event_log.lead_state(lead).owner == "rep-east-2"


def test_bad_trial_requests_are_refused_and_change_nothing(
    client: TestClient, store: Store
) -> None:
    version = publish(client, east_to("rep-east-2"))
    for body, path in (
        ({"share": 0}, "/share"),
        ({"share": 1}, "/share"),
        ({"share": "x"}, "/share"),
        ({"share": True}, "/share"),
        ({}, "/share"),
        ({"share": 0.1, "shares": 2}, "/shares"),
    ):
        answer = client.post(f"/v1/rulesets/{version}/canary", json=body, headers=ADMIN)
        assert answer.status_code == 422, body
        assert path in [d["path"] for d in answer.json()["error"]["details"]], body
    for route in ("shadow", "stop", "promote", "trial-report"):
        method = client.get if route == "trial-report" else client.post
        assert method(f"/v1/rulesets/99/{route}", headers=ADMIN).status_code == 404
    active = client.post("/v1/rulesets/1/shadow", headers=ADMIN)
    assert (active.status_code, active.json()["error"]["code"]) == (409, "ruleset_is_active")
    not_on_trial = client.post(f"/v1/rulesets/{version}/stop", headers=ADMIN)
    assert not_on_trial.status_code == 409
    assert not_on_trial.json()["error"]["code"] == "ruleset_not_on_trial"
    # A version the directory no longer backs cannot go on trial.
    directory = default_directory_document()
    directory["reps"] = [r for r in directory["reps"] if r["id"] != "rep-east-2"]
    assert client.put("/v1/directory", json=directory, headers=ADMIN).status_code == 200
    invalid = client.post(f"/v1/rulesets/{version}/canary", json={"share": 0.2}, headers=ADMIN)
    assert (invalid.status_code, invalid.json()["error"]["code"]) == (409, "ruleset_invalid")
    # Read scope is not enough to start one.
    reader = client.post("/v1/keys", json={"scopes": ["read"]}, headers=ADMIN)
    assert reader.status_code == 201, reader.text
    key = {"Authorization": f"Bearer {reader.json()['key']}"}
    assert client.post(f"/v1/rulesets/{version}/shadow", headers=key).status_code == 403
    assert client.get(f"/v1/rulesets/{version}/trial-report", headers=key).status_code == 200
    assert client.get("/v1/rulesets/trials", headers=ADMIN).json()["trials"] == []
