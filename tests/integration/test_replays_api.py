"""`POST /v1/replays`, `GET /v1/replays/{id}` and `POST /v1/replays/{id}/cancel` over a
real store (SQLite and PostgreSQL), without Temporal: the replay re-decides the posted
events itself. A candidate moving the east website leads reports exactly those leads, an
identical one reports nothing, bad or oversized requests are refused before anything
runs, a process holds a bounded queue, replays can be cancelled and run within a time
budget, and the log is never written."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import NAMESPACE_URL, uuid5

import pytest
from eventsourcing.utils import get_topic
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from domain.lead import Lead
from leadflow.bootstrap import open_store
from leadflow.settings import Settings
from replay.jobs import (
    INTERRUPTED,
    MAX_QUEUED,
    ReplayProgress,
    ReplayRuns,
    replays,
)
from store.rulebook import default_ruleset_document

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


def replay_status(
    client: TestClient, location: str, headers: dict[str, str], wanted: tuple[str, ...]
) -> dict[str, Any]:
    """The replay once its status is one of `wanted` (fails the test after a minute)."""
    deadline = time.monotonic() + 60
    while True:
        body: dict[str, Any] = client.get(location, headers=headers).json()
        if body["status"] in wanted:
            return body
        assert body["status"] in UNFINISHED, body
        assert time.monotonic() < deadline, f"replay still {body['status']} after 60 s"
        time.sleep(0.05)


UNFINISHED = ("queued", "running", "cancelling")


def replaying(client: TestClient, location: str) -> None:
    """Wait until the replay runs and has reported progress (its history is read, its
    child forked)."""
    deadline = time.monotonic() + 60
    while True:
        body = replay_status(client, location, ADMIN, ("running",))
        if body["progress"]["done"] > 0:
            return
        assert time.monotonic() < deadline, "the replay never reported progress"
        time.sleep(0.05)


def finished(client: TestClient, location: str, headers: dict[str, str]) -> dict[str, Any]:
    """The replay once it has succeeded, failed or been cancelled."""
    return replay_status(client, location, headers, ("succeeded", "failed", "cancelled"))


def recorded_replays(client: TestClient) -> int:
    store = client.app.state.store  # type: ignore[attr-defined]
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(replays)).scalar_one())


def children() -> set[int]:
    """This process's child processes (a replay's forked child), exited ones included."""
    ours = str(os.getpid())
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):  # gone meanwhile
            if stat.read_text().rsplit(")", 1)[1].split()[1] == ours:
                found.add(int(stat.parent.name))
    return found


def fill_log(settings: Settings, leads: int) -> str:
    """A log of `leads` website captures a minute apart, up to an hour ago, under the
    built-in ruleset (reminders and reclaims fall due between them), written as the
    ingest stores them but all at once. Returns the last east lead's id: still with the
    rep its capture assigned. 20,000 leads take a replay a few seconds."""
    store = open_store(settings)
    try:
        start = datetime.now(UTC) - timedelta(minutes=leads + 60)
        store.rulebook.install_defaults(start - timedelta(hours=1))
        captures = []
        for n in range(leads):
            at = start + timedelta(minutes=n)
            lead_id = uuid5(NAMESPACE_URL, f"replay-test-lead-{n}")
            region = ("east", "west")[n % 2]
            fields: dict[str, Any] = {  # a capture as the log stores it, at its time
                "originator_topic": get_topic(Lead),
                "originator_id": lead_id,
                "originator_version": 1,
                "timestamp": at,
                "event_id": f"{lead_id}/1",
                "occurred_at": at,
                "data": {"email": f"{n}@x.io", "source": "website", "region": region},
                "rule_id": None,
                "ruleset_version": None,
                "caused_by": None,
            }
            captures.append(Lead.Captured(**fields))
        mapper, recorder = store.event_log.mapper, store.event_log.recorder
        for first in range(0, leads, 5000):
            page = captures[first : first + 5000]
            recorder.insert_events([mapper.to_stored_event(capture) for capture in page])
        return str(captures[-2].originator_id)
    finally:
        store.close()


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
        "locale": "en",
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
    # In business terms, with the directory's names (issue #18).
    assert result["summary"] == [
        "Over all recorded history: 2 leads would go to Zhang Min instead of Li Wei.",
        "No change to reclaims, reminders, nurture enrolments, emails to leads and notifications.",
        "Rules the candidate changes: east-website.",
    ]
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
    [said] = result["summary"]
    assert said.startswith("Last ") and "(Jan 1, 2000 \u2013 " in said
    assert said.endswith(": the candidate would change nothing for the 2 leads replayed.")
    assert (result["leads_replayed"], result["events_replayed"]) == (2, 2)
    assert replay["progress"] == {"done": 4, "total": 4}
    assert log_position(client) == before


def test_a_window_or_a_lead_selects_what_is_replayed(client: TestClient) -> None:
    moved = capture(client, "web@x.io", "website", "east")
    capture(client, "web2@x.io", "website", "east")
    candidate = moving_east_website_to("rep-east-2")

    # Uppercase, as some systems write UUIDs: still the lead.
    asked = {"ruleset": candidate, "lead_id": moved.upper()}
    one = client.post("/v1/replays", json=asked, headers=ADMIN)
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    none = client.post("/v1/replays", json={"ruleset": candidate, "from": later}, headers=ADMIN)
    not_an_id = client.post(
        "/v1/replays", json={"ruleset": candidate, "lead_id": "web@x.io"}, headers=ADMIN
    )

    result = finished(client, one.headers["location"], ADMIN)["result"]
    assert [c["lead_id"] for c in result["assignments"]] == [moved]
    assert not_an_id.status_code == 422
    assert [d["path"] for d in not_an_id.json()["error"]["details"]] == ["/lead_id"]
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
        # One whose cancel was pending ends as asked.
        cancelling = runs.create({"ruleset": {}}, "api-killed-later", long_ago)
        assert runs.started(cancelling)
        assert runs.cancel(cancelling, long_ago) == "cancelling"
        shown = client.get(f"/v1/replays/{cancelling}", headers=ADMIN).json()
        assert (shown["status"], shown["error"]) == ("cancelled", None)


def test_a_process_holds_a_bounded_queue_and_a_queued_replay_cancels_at_once(
    settings: Settings,
) -> None:
    one_lead = fill_log(settings, 10_000)
    whole_log = {"ruleset": moving_east_website_to("rep-east-2")}
    one = {**whole_log, "lead_id": one_lead}
    with TestClient(create_app(settings)) as client:
        before = log_position(client)
        busy = client.post("/v1/replays", json=whole_log, headers=ADMIN)
        replaying(client, busy.headers["location"])
        waiting = [client.post("/v1/replays", json=one, headers=ADMIN) for _ in range(3)]
        assert [w.status_code for w in waiting] == [202] * 3
        recorded = recorded_replays(client)

        refused = client.post("/v1/replays", json=one, headers=ADMIN)

        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "30"
        assert refused.json()["error"]["code"] == "too_many_replays"
        assert f"{MAX_QUEUED} unfinished replays" in refused.json()["error"]["message"]
        assert recorded_replays(client) == recorded  # nothing recorded for it
        first_waiting = waiting[0].json()["replay_id"]
        cancelled = client.post(f"/v1/replays/{first_waiting}/cancel", headers=ADMIN)
        assert cancelled.status_code == 202
        assert cancelled.json() == {"replay_id": first_waiting, "status": "cancelled"}
        shown = client.get(f"/v1/replays/{first_waiting}", headers=ADMIN).json()
        assert (shown["status"], shown["result"]) == ("cancelled", None)
        assert shown["finished_at"] is not None
        # Its place is free again, while the first replay still runs.
        accepted = client.post("/v1/replays", json=one, headers=ADMIN)
        assert accepted.status_code == 202, accepted.text
        assert client.get(busy.headers["location"], headers=ADMIN).json()["status"] == "running"

        client.post(f"/v1/replays/{busy.json()['replay_id']}/cancel", headers=ADMIN)
        for queued in [*waiting[1:], accepted]:
            replay = finished(client, queued.headers["location"], ADMIN)
            assert replay["status"] == "succeeded", replay["error"]
            assert [c["lead_id"] for c in replay["result"]["assignments"]] == [one_lead]
        assert log_position(client) == before


def test_a_running_replay_cancelled_from_another_replica_stops_and_ends_cancelled(
    settings: Settings,
) -> None:
    fill_log(settings, 20_000)
    before_children = children()
    with TestClient(create_app(settings)) as client:
        before = log_position(client)
        posted = client.post(
            "/v1/replays", json={"ruleset": moving_east_website_to("rep-east-2")}, headers=ADMIN
        )
        replay_id = posted.json()["replay_id"]
        replaying(client, posted.headers["location"])
        assert children() - before_children  # the baseline replays in a forked child

        with TestClient(create_app(settings)) as replica:
            cancel = replica.post(f"/v1/replays/{replay_id}/cancel", headers=ADMIN)
            assert cancel.status_code == 202
            assert cancel.json() == {"replay_id": replay_id, "status": "cancelling"}
            again = replica.post(f"/v1/replays/{replay_id}/cancel", headers=ADMIN)
            assert again.json() == {"replay_id": replay_id, "status": "cancelling"}
            shown = replica.get(posted.headers["location"], headers=ADMIN).json()
            assert shown["status"] == "cancelling"

            replay = finished(replica, posted.headers["location"], ADMIN)

            assert replay["status"] == "cancelled"
            assert (replay["result"], replay["error"]) == (None, None)
            # Stopped at its next progress report, which on a busy machine may be the last
            # one: ended `cancelled` either way, its result dropped.
            assert replay["progress"]["done"] <= replay["progress"]["total"]
            late = replica.post(f"/v1/replays/{replay_id}/cancel", headers=ADMIN)
            assert late.status_code == 409
            assert late.json()["error"]["code"] == "replay_finished"
        assert children() == before_children  # the child was killed and reaped
        assert log_position(client) == before


def test_a_replay_over_its_time_budget_fails_saying_how_to_narrow_it(
    settings: Settings,
) -> None:
    fill_log(settings, 5_000)
    before_children = children()
    budget = settings.model_copy(update={"replay_time_limit_seconds": 0.2})
    with TestClient(create_app(budget)) as client:
        before = log_position(client)
        posted = client.post(
            "/v1/replays", json={"ruleset": moving_east_website_to("rep-east-2")}, headers=ADMIN
        )

        replay = finished(client, posted.headers["location"], ADMIN)

        assert replay["status"] == "failed"
        assert "exceeded its time budget of 0.2 s" in replay["error"]
        assert all(f"`{field}`" in replay["error"] for field in ("from", "to", "lead_id"))
        assert replay["result"] is None
        assert replay["progress"]["done"] < replay["progress"]["total"]
        assert children() == before_children
        assert log_position(client) == before


def test_cancelling_needs_admin_a_known_replay_and_one_not_yet_ended(
    client: TestClient, settings: Settings
) -> None:
    capture(client, "web@x.io", "website", "east")
    posted = client.post("/v1/replays", json={"ruleset": default_ruleset_document()}, headers=ADMIN)
    replay_id = posted.json()["replay_id"]
    assert finished(client, posted.headers["location"], ADMIN)["status"] == "succeeded"
    reader = key_with(settings, "read")

    forbidden = client.post(f"/v1/replays/{replay_id}/cancel", headers=reader)
    ended = client.post(f"/v1/replays/{replay_id}/cancel", headers=ADMIN)
    unknown = client.post("/v1/replays/00000000-0000-0000-0000-000000000000/cancel", headers=ADMIN)

    assert forbidden.status_code == 403
    assert client.post(f"/v1/replays/{replay_id}/cancel").status_code == 401
    assert ended.status_code == 409
    assert ended.json()["error"]["code"] == "replay_finished"
    assert "succeeded" in ended.json()["error"]["message"]
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "replay_not_found"
    shown = client.get(posted.headers["location"], headers=ADMIN).json()
    assert shown["status"] == "succeeded" and shown["result"]["leads_replayed"] == 1


def test_a_candidate_over_256_kib_is_refused_naming_the_limit(client: TestClient) -> None:
    capture(client, "web@x.io", "website", "east")
    before = log_position(client)
    document = default_ruleset_document()
    document["templates"] = {"welcome": {"subject": "Welcome", "body": "x" * (300 * 1024)}}

    refused = client.post("/v1/replays", json={"ruleset": document}, headers=ADMIN)

    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["code"] == "invalid_replay"
    [detail] = error["details"]
    assert detail["path"] == "/ruleset"
    assert "at most 262144 (256 KiB)" in detail["message"]
    assert recorded_replays(client) == 0
    assert log_position(client) == before


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("lead_id", "lead\u0000", "NUL"),
        # Accepted, it made GET /v1/replays/{id} a 500 for good: no UTF-8 answer holds it.
        ("lead_id", "lead\ud800", "surrogate"),
        # Was a 500 too: 2**63 - 1 overflowed the query for the baseline version.
        ("baseline", 2**63 - 1, "2**53 - 1"),
    ],
)
def test_a_request_with_a_value_no_store_can_hold_is_422_naming_it(
    client: TestClient, field: str, value: object, message: str
) -> None:
    body = {"ruleset": default_ruleset_document(), field: value}
    # As JSON text, so a lone surrogate goes out as its `\ud800` escape.
    content = json.dumps(body).encode()
    refused = client.post("/v1/replays", content=content, headers=ADMIN)
    assert refused.status_code == 422, refused.text
    [detail] = refused.json()["error"]["details"]
    assert detail["path"] == f"/{field}" and message in detail["message"]
    assert recorded_replays(client) == 0


def test_a_replay_cancelled_as_it_finishes_ends_cancelled_as_the_cancel_said(
    settings: Settings,
) -> None:
    store = open_store(settings)
    runs = ReplayRuns(store.engine)
    now = datetime.now(UTC)
    try:
        replay_id = runs.create({"ruleset": {}}, "api-test", now)
        assert runs.started(replay_id)
        assert runs.cancel(replay_id, now) == "cancelling"
        assert not runs.progressed(replay_id, 10, 20)  # what stops the runner at its report

        runs.succeeded(replay_id, {"unchanged": True}, 20, now)  # its report came first

        ended = runs.get(replay_id, now)
        assert (ended.status, ended.result, ended.finished_at) == ("cancelled", None, now)
        assert (ended.done, ended.total) == (20, 20)  # it did get to the end
    finally:
        store.close()


def test_progress_adds_up_both_phases_whose_reports_interleave() -> None:
    # The baseline (in its child process) and the candidate report as they go, at once.
    progress = ReplayProgress()
    reports = [("baseline", 200), ("candidate", 200), ("candidate", 400), ("baseline", 400)]
    shown = []
    for phase, done in [*reports, ("candidate", 600), ("baseline", 600)]:
        progress.update(phase, done, 600)
        shown.append((progress.done, progress.total))

    assert shown == [(200, 1200), (400, 1200), (600, 1200), (800, 1200), (1000, 1200), (1200, 1200)]
