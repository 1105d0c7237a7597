"""`POST /v1/replays` and `GET /v1/replays/{id}` over a real store (SQLite and PostgreSQL),
without Temporal: the replay re-decides the posted events itself. A candidate moving the
east website leads reports exactly those leads, an identical one reports nothing, bad
requests are refused before anything runs, and the log is never written."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from leadflow.bootstrap import open_store
from leadflow.rulebook import default_ruleset_document
from leadflow.settings import Settings
from replay.runs import INTERRUPTED, ReplayProgress, ReplayRuns

ADMIN = {"Authorization": "Bearer lf_test_admin"}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def key_with(settings: Settings, scope: str) -> dict[str, str]:
    store = open_store(settings)
    try:
        return {"Authorization": f"Bearer {store.keys.create([scope])}"}
    finally:
        store.close()


def log_position(client: TestClient) -> int:
    store = client.app.state.store  # type: ignore[attr-defined]
    return int(store.event_log.max_position())


def capture(client: TestClient, email: str, source: str, region: str) -> str:
    body = {"type": "lead.captured", "data": {"email": email, "source": source, "region": region}}
    posted = client.post("/v1/events", json=body, headers=ADMIN)
    assert posted.status_code == 202, posted.text
    lead_id: str = posted.json()["lead_id"]
    return lead_id


def moving_east_website_to(rep: str) -> dict[str, Any]:
    document = copy.deepcopy(default_ruleset_document())
    [rule] = [r for r in document["rules"] if r["id"] == "east-website"]
    rule["actions"][0]["params"]["rep"] = rep
    return document


def finished(client: TestClient, location: str, headers: dict[str, str]) -> dict[str, Any]:
    """The replay once it has succeeded or failed (fails the test after a minute)."""
    deadline = time.monotonic() + 60
    while True:
        body: dict[str, Any] = client.get(location, headers=headers).json()
        if body["status"] in ("succeeded", "failed"):
            return body
        assert body["status"] in ("queued", "running"), body
        assert time.monotonic() < deadline, f"replay still {body['status']} after 60 s"
        time.sleep(0.05)


def test_a_candidate_moving_east_website_leads_reports_exactly_those_leads(
    client: TestClient, settings: Settings
) -> None:
    east_web = [capture(client, f"web{i}@x.io", "website", "east") for i in range(2)]
    capture(client, "fair@x.io", "fair", "east")
    capture(client, "west@x.io", "website", "west")
    before = log_position(client)
    candidate = moving_east_website_to("rep-east-2")

    posted = client.post("/v1/replays", json={"ruleset": candidate}, headers=ADMIN)

    assert posted.status_code == 202, posted.text
    replay_id = posted.json()["replay_id"]
    assert posted.json() == {"replay_id": replay_id, "status": "queued"}
    assert posted.headers["location"] == f"/v1/replays/{replay_id}"
    # Another API process on the same database answers the GET, with a read key.
    reader = key_with(settings, "read")
    with TestClient(create_app(settings)) as replica:
        replay = finished(replica, posted.headers["location"], reader)
    assert replay["status"] == "succeeded", replay["error"]
    assert replay["error"] is None and replay["finished_at"] is not None
    assert replay["progress"] == {"done": 8, "total": 8}  # 4 events, baseline and candidate
    assert replay["request"] == {
        "ruleset": candidate,
        "baseline": None,
        "from": None,
        "to": None,
        "lead_id": None,
    }
    result = replay["result"]
    assert [(c["lead_id"], c["from_owner"], c["to_owner"]) for c in result["assignments"]] == [
        (lead, "rep-east-1", "rep-east-2") for lead in east_web
    ]
    reps = {r["holder"]: r for r in result["reps"]}
    assert reps["rep-east-2"]["gained"] == east_web and reps["rep-east-1"]["lost"] == east_web
    assert result["rules_changed"] == ["east-website"]
    assert (result["leads_replayed"], result["events_replayed"], result["unchanged"]) == (
        4,
        4,
        False,
    )
    assert log_position(client) == before  # nothing written to the log


def test_an_identical_candidate_reports_no_change_against_a_named_baseline(
    client: TestClient,
) -> None:
    capture(client, "web@x.io", "website", "east")
    capture(client, "west@x.io", "website", "west")
    before = log_position(client)
    body = {"ruleset": default_ruleset_document(), "baseline": 1, "from": "2000-01-01"}

    posted = client.post("/v1/replays", json=body, headers=ADMIN)

    assert posted.status_code == 202, posted.text
    replay = finished(client, posted.headers["location"], ADMIN)
    assert replay["status"] == "succeeded", replay["error"]
    assert replay["request"]["baseline"] == 1
    assert replay["request"]["from"] == "2000-01-01T00:00:00+00:00"
    result = replay["result"]
    assert result["unchanged"] is True
    assert (result["assignments"], result["movements"], result["rules"]) == ([], [], [])
    assert result["rules_changed"] == []
    assert (result["leads_replayed"], result["events_replayed"]) == (2, 2)
    assert replay["progress"] == {"done": 4, "total": 4}
    assert log_position(client) == before


def test_a_window_or_a_lead_selects_what_is_replayed(client: TestClient) -> None:
    moved = capture(client, "web@x.io", "website", "east")
    capture(client, "web2@x.io", "website", "east")
    candidate = moving_east_website_to("rep-east-2")

    one = client.post("/v1/replays", json={"ruleset": candidate, "lead_id": moved}, headers=ADMIN)
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    none = client.post("/v1/replays", json={"ruleset": candidate, "from": later}, headers=ADMIN)

    result = finished(client, one.headers["location"], ADMIN)["result"]
    assert [c["lead_id"] for c in result["assignments"]] == [moved]
    empty = finished(client, none.headers["location"], ADMIN)
    assert empty["result"]["leads_replayed"] == 0
    assert empty["progress"] == {"done": 0, "total": 0}


def test_an_invalid_candidate_is_refused_naming_the_field(client: TestClient) -> None:
    document = moving_east_website_to("rep-nobody")
    document["rules"][1]["conditions"]["all"][0]["name"] = "colour"
    body = {"ruleset": document, "to": "next tuesday", "surprise": 1}

    refused = client.post("/v1/replays", json=body, headers=ADMIN)

    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["code"] == "invalid_replay"
    paths = {d["path"] for d in error["details"]}
    assert paths == {
        "/ruleset/rules/1/conditions/all/0/name",
        "/ruleset/rules/1/actions/0/params/rep",
        "/to",
        "/surprise",
    }
    # The candidate's errors are exactly what /v1/rulesets/validate says, under /ruleset.
    validated = client.post("/v1/rulesets/validate", json=document, headers=ADMIN).json()
    assert [
        {"path": "/ruleset" + e["path"], "message": e["message"]} for e in validated["errors"]
    ] == [d for d in error["details"] if d["path"].startswith("/ruleset")]
    missing = client.post("/v1/replays", json={"baseline": 1}, headers=ADMIN)
    assert missing.status_code == 422
    assert [d["path"] for d in missing.json()["error"]["details"]] == ["/ruleset"]


def test_unknown_baseline_or_replay_is_404(client: TestClient) -> None:
    body = {"ruleset": default_ruleset_document(), "baseline": 99}
    unknown_version = client.post("/v1/replays", json=body, headers=ADMIN)
    assert unknown_version.status_code == 404
    assert unknown_version.json()["error"]["code"] == "ruleset_not_found"

    unknown = client.get("/v1/replays/00000000-0000-0000-0000-000000000000", headers=ADMIN)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "replay_not_found"


def test_starting_a_replay_needs_admin_and_following_it_needs_read(
    client: TestClient, settings: Settings
) -> None:
    body = {"ruleset": default_ruleset_document()}
    reader = key_with(settings, "read")
    forbidden = client.post("/v1/replays", json=body, headers=reader)
    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["code"] == "forbidden"
    assert client.post("/v1/replays", json=body).status_code == 401

    location = client.post("/v1/replays", json=body, headers=ADMIN).headers["location"]
    assert client.get(location, headers=key_with(settings, "ingest")).status_code == 403
    assert finished(client, location, reader)["status"] == "succeeded"


def test_a_replay_whose_api_process_died_is_failed_when_an_api_starts(
    settings: Settings,
) -> None:
    # What a killed API process leaves behind: a replay running, its heartbeat long gone.
    store = open_store(settings)
    long_ago = datetime.now(UTC) - timedelta(minutes=5)
    runs = ReplayRuns(store.engine)
    try:
        replay_id = runs.create({"ruleset": {}}, "api-killed", long_ago)
        assert runs.started(replay_id)
    finally:
        store.close()

    with TestClient(create_app(settings)) as client:
        # Read as of the replay's own time, so only the start-up sweep can have failed it.
        runs = ReplayRuns(client.app.state.store.engine)  # type: ignore[attr-defined]
        swept = runs.get(replay_id, long_ago)
        assert (swept.status, swept.error) == ("failed", INTERRUPTED)
        shown = client.get(f"/v1/replays/{replay_id}", headers=ADMIN).json()
        assert (shown["status"], shown["error"], shown["result"]) == ("failed", INTERRUPTED, None)
        # A replica that dies while this API runs: the next look finds its replay failed.
        orphan = runs.create({"ruleset": {}}, "api-killed-later", long_ago)
        assert runs.get(orphan, long_ago).status == "queued"
        shown = client.get(f"/v1/replays/{orphan}", headers=ADMIN).json()
        assert (shown["status"], shown["error"]) == ("failed", INTERRUPTED)


def test_progress_adds_up_both_phases_whose_reports_interleave() -> None:
    # The baseline (in its child process) and the candidate report as they go, at once.
    progress = ReplayProgress()
    reports = [("baseline", 200), ("candidate", 200), ("candidate", 400), ("baseline", 400)]
    shown = []
    for phase, done in [*reports, ("candidate", 600), ("baseline", 600)]:
        progress.update(phase, done, 600)
        shown.append((progress.done, progress.total))

    assert shown == [(200, 1200), (400, 1200), (600, 1200), (800, 1200), (1000, 1200), (1200, 1200)]
