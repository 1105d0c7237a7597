"""Working leads over HTTP with an API key (issue #19), on SQLite and PostgreSQL: bulk
reassignment with mixed results, the `wechat` follow-up kind, a lead's deadlines with what
each will do, and the worklist's order, paging and refusals. Decisions are made as the
workflow would make them (no Temporal needed here: tests/integration/test_deadlines.py
runs the real one)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from api.acting import refusals_of
from api.app import create_app
from domain.events import IncomingEvent, parse_event
from domain.timers import RunningTimer
from leadflow.bootstrap import Store, projections
from leadflow.settings import Settings
from projections.projector import Projector
from store import deadlines
from store.keys import Caller

ADMIN = {"Authorization": "Bearer lf_test_admin"}
NOW = datetime.now(UTC)

RULESET: dict[str, Any] = {
    "name": "working leads",
    "timers": [
        {
            "id": "first_follow_up",
            "start_on": ["lead.assigned", "lead.reassigned"],
            "cancel_on": ["lead.followed_up", "lead.returned_to_pool"],
            "after": "PT24H",
        },
        {
            "id": "reclaim",
            "start_on": ["lead.assigned", "lead.reassigned"],
            "cancel_on": ["lead.followed_up", "lead.returned_to_pool"],
            "after": "PT48H",
        },
        {
            "id": "idle",
            "start_on": ["lead.followed_up"],
            "cancel_on": ["lead.returned_to_pool", "lead.won", "lead.lost"],
            "after": "P7D",
        },
    ],
    "rules": [
        {
            "id": "east",
            "when": ["lead.captured"],
            "conditions": {"all": [{"name": "region", "operator": "equal_to", "value": "east"}]},
            "actions": [{"name": "assign_to_rep", "params": {"rep": "rep-east-1"}}],
        },
        {
            "id": "remind",
            "when": ["timer.first_follow_up"],
            "conditions": {"all": []},
            "actions": [
                {"name": "notify", "params": {"to": "owner", "template": "follow-up-overdue"}}
            ],
        },
        {
            "id": "reclaim-48h",
            "when": ["timer.reclaim"],
            "conditions": {"all": []},
            "actions": [
                {"name": "return_to_pool", "params": {"reason": "no_follow_up_48h"}},
                {"name": "notify", "params": {"to": "manager", "template": "lead-reclaimed"}},
            ],
        },
    ],
}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        store = store_of(test_client)
        store.rulebook.install_defaults(NOW)
        version = store.rulebook.publish(RULESET, "test", NOW)
        store.rulebook.activate(version, "test", NOW)
        yield test_client


def store_of(client: TestClient) -> Store:
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    return store


def post(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    answer = client.post("/v1/events", json=body, headers=ADMIN)
    assert answer.status_code == 202, answer.text
    posted: dict[str, Any] = answer.json()
    return posted


def decide(
    client: TestClient, posted: dict[str, Any], trigger: str, timers: Mapping[str, RunningTimer]
) -> dict[str, RunningTimer]:
    """The decisions of `posted` as the workflow asks for them; the timers after them."""
    store = store_of(client)
    decided = store.event_log.decide(
        UUID(posted["lead_id"]),
        trigger,
        posted["event_id"],
        datetime.now(UTC),
        store.rulebook.active(),
        store.rulebook.directory(),
        timers,
    )
    return decided.timers


def lead(client: TestClient, email: str, region: str = "east") -> tuple[str, dict[str, Any]]:
    """A captured lead, assigned to rep-east-1 in the east; its id and timers."""
    posted = post(
        client,
        {
            "type": "lead.captured",
            "data": {"email": email, "source": "web", "region": region, "company": "ACME"},
        },
    )
    return posted["lead_id"], decide(client, posted, "lead.captured", {})


def project(client: TestClient) -> None:
    store = store_of(client)
    Projector(store.event_log, store.engine, projections()).catch_up()


def stream(client: TestClient, lead_id: str) -> list[tuple[str, dict[str, Any]]]:
    events = store_of(client).event_log.lead_events(UUID(lead_id))
    return [(e.type, e.data) for e in events]


# --- bulk reassignment -------------------------------------------------------------------


def test_bulk_reassign_answers_each_lead_in_order_and_a_refusal_stops_none(
    client: TestClient,
) -> None:
    first, _ = lead(client, "a@x.io")
    unknown = str(uuid4())
    last, _ = lead(client, "c@x.io")
    answer = client.post(
        "/v1/leads/reassign",
        json={"lead_ids": [first, unknown, last], "rep_id": "rep-east-2", "reason": "holiday"},
        headers=ADMIN,
    )
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [(r["lead_id"], r["status"]) for r in results] == [
        (first, "reassigned"),
        (unknown, "refused"),
        (last, "reassigned"),
    ]
    assert results[1]["error"]["code"] == "lead_not_found"
    assert results[1]["event_id"] is None and results[0]["error"] is None
    for reassigned, result in ((first, results[0]), (last, results[2])):
        events = store_of(client).event_log.lead_events(UUID(reassigned))
        assert (events[-1].type, events[-1].data, events[-1].event_id) == (
            "lead.reassigned",
            {"rep_id": "rep-east-2", "reason": "holiday"},
            result["event_id"],
        )


@pytest.mark.parametrize(
    ("body", "paths"),
    [
        ({"lead_ids": ["not-a-uuid"], "rep_id": "rep-east-2"}, ["/lead_ids/0"]),
        ({"lead_ids": [str(uuid4())]}, ["/rep_id"]),
        ({"lead_ids": [], "rep_id": "rep-east-2", "extra": 1}, ["/extra", "/lead_ids"]),
        ({"lead_ids": [str(uuid4()) for _ in range(501)], "rep_id": "r"}, ["/lead_ids"]),
        ({"lead_ids": [str(uuid4())], "rep_id": "rep-east-2", "reason": 5}, ["/reason"]),
        ([], [""]),
    ],
)
def test_a_malformed_reassignment_is_422_naming_the_field_and_appends_nothing(
    client: TestClient, body: Any, paths: list[str]
) -> None:
    listed, _ = lead(client, "d@x.io")
    if isinstance(body, dict) and body.get("lead_ids") and "rep_id" not in body:
        body["lead_ids"] = [listed]
    before = store_of(client).event_log.max_position()
    answer = client.post("/v1/leads/reassign", json=body, headers=ADMIN)
    assert answer.status_code == 422, answer.text
    assert [d["path"] for d in answer.json()["error"]["details"]] == paths
    assert store_of(client).event_log.max_position() == before


def test_a_read_key_may_not_reassign(client: TestClient) -> None:
    key = client.post("/v1/keys", json={"scopes": ["read"]}, headers=ADMIN).json()["key"]
    listed, _ = lead(client, "e@x.io")
    answer = client.post(
        "/v1/leads/reassign",
        json={"lead_ids": [listed], "rep_id": "rep-east-2"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert answer.status_code == 403
    assert stream(client, listed)[-1][0] == "lead.assigned"


# --- follow-up kinds ----------------------------------------------------------------------


def test_a_wechat_follow_up_is_accepted_and_an_unknown_kind_is_not(client: TestClient) -> None:
    listed, _ = lead(client, "f@x.io")
    follow_up = {"rep_id": "rep-east-1", "kind": "wechat", "note": "加了微信"}
    post(client, {"type": "lead.followed_up", "lead_id": listed, "data": follow_up})
    assert stream(client, listed)[-1] == ("lead.followed_up", follow_up)
    refused = client.post(
        "/v1/events",
        json={
            "type": "lead.followed_up",
            "lead_id": listed,
            "data": {"rep_id": "r", "kind": "fax"},
        },
        headers=ADMIN,
    )
    assert refused.status_code == 422
    assert [d["path"] for d in refused.json()["error"]["details"]] == ["/data/kind"]


# --- deadlines ------------------------------------------------------------------------------


def test_a_lead_shows_its_deadlines_earliest_first_with_what_each_will_do(
    client: TestClient,
) -> None:
    listed, timers = lead(client, "g@x.io")
    body = client.get(f"/v1/leads/{listed}", headers=ADMIN).json()
    assert [(d["timer"], d["due_at"], d["kind"]) for d in body["deadlines"]] == [
        ("first_follow_up", timers["first_follow_up"].due_at, "ruleset"),
        ("reclaim", timers["reclaim"].due_at, "ruleset"),
    ]
    remind, reclaim = (d["consequences"] for d in body["deadlines"])
    assert [(c["action"], c["to"], c["recipient"], c["recipient_name"]) for c in remind] == [
        ("notify", "owner", "rep-east-1", "Li Wei")
    ]
    assert [(c["action"], c["reason"], c["recipient_name"]) for c in reclaim] == [
        ("return_to_pool", "no_follow_up_48h", None),
        ("notify", None, "Liu Yang"),
    ]
    # The list shows the earliest of them beside the lead.
    project(client)
    [item] = client.get("/v1/leads", params={"q": "g@x.io"}, headers=ADMIN).json()["items"]
    assert item["next_deadline"] == body["deadlines"][0]
    # A follow-up cancels both and starts the idle timer, which no rule answers.
    followed = post(
        client,
        {"type": "lead.followed_up", "lead_id": listed, "data": {"rep_id": "rep-east-1"}},
    )
    decide(client, followed, "lead.followed_up", timers)
    after = client.get(f"/v1/leads/{listed}", headers=ADMIN).json()["deadlines"]
    assert [(d["timer"], d["consequences"]) for d in after] == [("idle", [])]


# --- the worklist ---------------------------------------------------------------------------


def test_the_worklist_puts_overdue_first_then_leads_without_a_deadline_and_pages(
    client: TestClient,
) -> None:
    first, _ = lead(client, "h1@x.io")
    second, _ = lead(client, "h2@x.io")
    followed, timers = lead(client, "h3@x.io")
    decide(
        client,
        post(
            client,
            {"type": "lead.followed_up", "lead_id": followed, "data": {"rep_id": "rep-east-1"}},
        ),
        "lead.followed_up",
        timers,
    )
    quiet, _ = lead(client, "h4@x.io")
    overdue, _ = lead(client, "h5@x.io")
    won, _ = lead(client, "h6@x.io")
    post(client, {"type": "lead.won", "lead_id": won, "data": {"amount": 5}})
    lead(client, "h7@x.io", region="west")  # in the pool: not on anybody's worklist
    store = store_of(client)
    with store.engine.begin() as conn:
        deadlines.replace(conn, quiet, {}, sequence=10**6, ruleset_version=None)
        past = RunningTimer("first_follow_up", "2020-01-01T00:00:00+00:00", "x")
        deadlines.replace(conn, overdue, {past.timer_id: past}, sequence=10**6, ruleset_version=1)
    project(client)
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"owner": "rep-east-1", "limit": 2}
        if cursor is not None:
            params["cursor"] = cursor
        answer = client.get("/v1/worklist", params=params, headers=ADMIN)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        pages += 1
        seen += [item["lead_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [overdue, first, second, followed, quiet]
    assert pages == 3
    top = client.get("/v1/worklist", params={"owner": "rep-east-1"}, headers=ADMIN).json()
    item = top["items"][0]
    assert (item["company"], item["stage"], item["next_deadline"]["timer"]) == (
        "ACME",
        "new",
        "first_follow_up",
    )
    assert top["items"][-1]["next_deadline"] is None


@pytest.mark.parametrize(
    ("params", "path"),
    [
        ({}, "/owner"),
        ({"owner": "rep-east-1", "cursor": "nonsense"}, "/cursor"),
    ],
)
def test_the_worklist_refuses_a_key_without_owner_and_a_foreign_cursor(
    client: TestClient, params: dict[str, str], path: str
) -> None:
    answer = client.get("/v1/worklist", params=params, headers=ADMIN)
    assert answer.status_code == 422
    assert [d["path"] for d in answer.json()["error"]["details"]] == [path]


def test_a_worklist_cursor_is_for_its_owner_only(client: TestClient) -> None:
    for n in range(3):
        lead(client, f"k{n}@x.io")
    project(client)
    page = client.get(
        "/v1/worklist", params={"owner": "rep-east-1", "limit": 1}, headers=ADMIN
    ).json()
    answer = client.get(
        "/v1/worklist",
        params={"owner": "rep-east-2", "cursor": page["next_cursor"]},
        headers=ADMIN,
    )
    assert answer.status_code == 422
    assert "another owner" in answer.json()["error"]["details"][0]["message"]


# --- what a person may append, against the store ------------------------------------------


def person(role: str, person_id: str) -> Caller:
    """A signed-in person as the auth part hands one to the routes (no session here: the
    check itself, `api.acting.refusals_of`, over the real store)."""
    return Caller(
        key_id=f"user:{person_id}",
        name=person_id,
        scopes=frozenset({"ingest", "read"}),
        role=role,  # type: ignore[arg-type]
        person_id=person_id,
    )


def event(body: dict[str, Any]) -> IncomingEvent:
    return parse_event(body, now=datetime.now(UTC), phone_region="CN")


def test_a_persons_events_are_checked_against_the_lead_where_it_stands(
    client: TestClient,
) -> None:
    store = store_of(client)
    listed, _ = lead(client, "p@x.io")  # Li Wei's (rep-east-1), in the east

    def follow_up(rep_id: str) -> IncomingEvent:
        return event({"type": "lead.followed_up", "lead_id": listed, "data": {"rep_id": rep_id}})

    reassign = event(
        {"type": "lead.reassigned", "lead_id": listed, "data": {"rep_id": "rep-east-2"}}
    )
    for read_model in (False, True):  # folded from the log, then from the read model
        if read_model:
            project(client)
        assert refusals_of(store, person("rep", "rep-east-1"), [follow_up("rep-east-1")]) == [None]
        [fault] = refusals_of(store, person("rep", "rep-east-2"), [follow_up("rep-east-2")])
        assert fault is not None and fault.path == "/lead_id"
        [fault] = refusals_of(store, person("rep", "rep-east-2"), [follow_up("rep-east-1")])
        assert fault is not None and fault.path == "/data/rep_id"
        assert refusals_of(store, person("manager", "mgr-east"), [reassign]) == [None]
        [fault] = refusals_of(store, person("manager", "mgr-west"), [reassign])
        assert fault is not None and fault.path == "/lead_id"
    key = Caller(key_id="k", name="crm", scopes=frozenset({"ingest"}))
    assert refusals_of(store, key, [follow_up("anyone"), reassign]) == [None, None]
