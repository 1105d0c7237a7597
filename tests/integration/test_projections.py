"""The projector and the `leads` read model on real SQLite and PostgreSQL.

What a user relies on: the list of leads says what the log says (each row equals the
lead's state folded from its stream), paging never skips or repeats a lead, a projector
killed at any moment resumes without losing or double-counting an event, and a rebuild
swaps in fresh tables without one failed read.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from api.app import create_app
from domain.errors import DomainError
from domain.events import IncomingEvent, parse_event
from domain.state import Decision
from leadflow.bootstrap import Store, open_store, projections
from leadflow.settings import Settings
from projections import projector as projector_module
from projections.base import LogEntry, position_of
from projections.leads import LeadsProjection, state_of
from projections.projector import Projector
from projections.rebuild import REBUILD_SUFFIX, rebuild
from projections.stages import LeadStagesProjection

ADMIN = {"Authorization": "Bearer lf_test_admin"}
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


# --- helpers ---------------------------------------------------------------------------


def incoming(
    type_: str, data: dict[str, Any], lead_id: UUID | None = None, at: datetime | None = None
) -> IncomingEvent:
    body: dict[str, Any] = {"type": type_, "data": data}
    if lead_id is not None:
        body["lead_id"] = str(lead_id)
    if at is not None:
        body["occurred_at"] = at.isoformat()
    # Received when it occurred: a time more than a day past the clock is refused.
    return parse_event(body, now=at or T0, phone_region="CN")


def capture(store: Store, email: str, at: datetime = T0, **data: Any) -> UUID:
    event = incoming("lead.captured", {"email": email, "source": "web", **data}, at=at)
    [result] = store.append([event], [None])
    assert result.lead_id is not None
    return result.lead_id


def post(store: Store, type_: str, lead_id: UUID, at: datetime = T0, **data: Any) -> None:
    store.append([incoming(type_, data, lead_id, at)], [None])


def decide(
    store: Store, lead_id: UUID, type_: str, rule_id: str | None = "rule-1", **data: Any
) -> None:
    store.event_log.record_once(
        lead_id,
        Decision(type_, data, rule_id),
        event_id=str(uuid4()),
        occurred_at=T0 + timedelta(minutes=1),
        ruleset_version=3,
        caused_by="the-trigger",
    )


def record_spend(store: Store, campaign_id: str, amount: str, at: datetime) -> None:
    spend = {"campaign_id": campaign_id, "amount": amount, "period_start": "2026-03-01"}
    store.append([incoming("campaign.spend_recorded", spend, at=at)], [None])


def project(store: Store, page_size: int = 1000) -> int:
    return Projector(
        store.event_log, store.engine, [LeadsProjection()], page_size=page_size
    ).catch_up()


def project_all(store: Store, page_size: int = 1000) -> int:
    return Projector(store.event_log, store.engine, projections(), page_size=page_size).catch_up()


def rebuild_all(store: Store, page_size: int = 1000) -> None:
    for live, building in zip(projections(), projections(REBUILD_SUFFIX), strict=True):
        rebuild(store.event_log, store.engine, live, building, page_size=page_size)


def every_table(store: Store) -> dict[str, list[dict[str, Any]]]:
    """Every row of every read model's tables, by table, in a stable order."""
    tables = [table for p in projections() for table in p.metadata.sorted_tables]
    with store.engine.connect() as conn:
        return {
            table.name: sorted(
                (dict(row) for row in conn.execute(select(table)).mappings()), key=repr
            )
            for table in tables
        }


def rebuild_leads(store: Store, page_size: int = 1000) -> int:
    return rebuild(
        store.event_log,
        store.engine,
        LeadsProjection(),
        LeadsProjection(REBUILD_SUFFIX),
        page_size=page_size,
    )


def view(store: Store) -> dict[str, dict[str, Any]]:
    """Every row of `leads`, by lead id."""
    table = LeadsProjection().table
    with store.engine.connect() as conn:
        return {row["lead_id"]: dict(row) for row in conn.execute(select(table)).mappings()}


def assert_view_equals_the_log(store: Store, lead_ids: set[UUID]) -> None:
    rows = view(store)
    assert set(rows) == {str(lead_id) for lead_id in lead_ids}
    for lead_id in lead_ids:
        assert state_of(rows[str(lead_id)]["state"]) == store.event_log.lead_state(lead_id)


def utc(value: datetime) -> datetime:
    """A timestamp column's value in UTC (SQLite hands it back without an offset)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def projector_position(store: Store) -> int:
    with store.engine.connect() as conn:
        return position_of(conn, LeadsProjection()) or 0


# --- the view equals the log ---------------------------------------------------------------


def test_each_row_equals_the_leads_state_folded_from_its_stream(store: Store) -> None:
    ann = capture(
        store,
        "ann@example.com",
        channel="form",
        region="east",
        intent="high",
        campaign_id="spring",
    )
    bob = capture(store, "bob@example.com", at=T0 + timedelta(hours=1), source="fair")
    cyd = capture(store, "cyd@example.com", at=T0 + timedelta(hours=2))
    decide(store, ann, "lead.assigned", owner="rep-a", team="east", strategy="round_robin")
    decide(
        store, ann, "lead.task_created", task="first_follow_up", due_at="2026-03-03T09:00:00+00:00"
    )
    decide(store, bob, "lead.returned_to_pool", rule_id=None, reason="unassigned")
    # Half the log projected, in small pages; the rest continues from there.
    project(store, page_size=2)

    capture(store, "ann@example.com", at=T0 + timedelta(days=1), source="ads", company="Acme")
    post(store, "lead.followed_up", ann, at=T0 + timedelta(hours=5), rep_id="rep-a", kind="call")
    post(store, "lead.followed_up", ann, at=T0 + timedelta(days=2), rep_id="rep-a")
    post(store, "lead.qualified", ann, stage="MQL")
    post(store, "lead.qualified", ann, stage="SQL")
    post(store, "lead.opportunity_opened", ann, amount="1000")
    post(store, "lead.won", ann, amount="1200.50", currency="CNY")
    post(store, "lead.reassigned", bob, rep_id="rep-b", reason="key account")
    decide(store, bob, "lead.tagged", tag="vip")
    decide(store, bob, "lead.scored", score=40, delta=40)
    post(store, "lead.released", bob, rep_id="rep-b", reason="no budget")
    decide(store, cyd, "experiment.variant_assigned", experiment="subject", variant="B")
    decide(store, cyd, "nurture.enrolled", sequence="welcome")
    decide(store, cyd, "nurture.email_sent", message_id="m1", template="welcome-1", variant="B")
    decide(store, cyd, "notification.sent", to="rep-a", channel="email", template="new_lead")
    post(store, "email.opened", cyd, message_id="m1")
    post(store, "lead.unsubscribed", cyd)
    decide(store, cyd, "nurture.exited", sequence="welcome", reason="unsubscribed")
    post(store, "lead.lost", cyd, reason="no reply")
    project(store, page_size=3)

    assert_view_equals_the_log(store, {ann, bob, cyd})
    rows = view(store)
    a, b, c = rows[str(ann)], rows[str(bob)], rows[str(cyd)]
    assert (a["owner"], a["team"], a["in_pool"], a["stage"]) == ("rep-a", "east", False, "won")
    assert (a["source"], a["channel"], a["region"], a["intent"]) == ("web", "form", "east", "high")
    assert (a["company"], a["campaign_id"], a["placed_by_rule"]) == ("Acme", "spring", "rule-1")
    assert (a["touch_count"], a["followups_count"], a["open_tasks"]) == (2, 2, {})
    assert Decimal(str(a["won_amount"])) == Decimal("1200.50")
    assert utc(a["created_at"]) == T0
    assert utc(a["first_response_at"]) == T0 + timedelta(hours=5)
    assert (a["ruleset_version"], a["last_sequence"]) == (3, 10)
    assert (b["owner"], b["in_pool"], b["pool_reason"], b["source"]) == (
        None,
        True,
        "no budget",
        "fair",
    )
    assert (b["tags"], b["score"]) == (["vip"], 40)
    assert (c["stage"], c["unsubscribed"], c["sequences"], c["variants"]) == (
        "lost",
        True,
        [],
        {"subject": "B"},
    )
    assert (c["do_not_contact"], c["do_not_contact_reason"]) == (True, "unsubscribed")
    assert (a["do_not_contact"], a["do_not_contact_reason"]) == (False, None)
    assert c["last_position"] > b["last_position"] > a["last_position"] > 0


# --- GET /v1/leads and GET /v1/projections ---------------------------------------------


SOURCES = ("web", "fair", "ads")


def capture_120_leads(store: Store) -> list[UUID]:
    """Lead i: source by i % 3; rep-a/east (i % 4 == 0), rep-b/west (1), the pool (2) or
    nobody (3); MQL when i % 5 == 0. Two leads share each capture minute."""
    events = [
        incoming(
            "lead.captured",
            {"email": f"lead{i}@example.com", "source": SOURCES[i % 3]},
            at=T0 + timedelta(minutes=i // 2),
        )
        for i in range(120)
    ]
    lead_ids = [r.lead_id for r in store.append(events, [None] * len(events))]
    assert all(lead_ids)
    ids = [lead_id for lead_id in lead_ids if lead_id is not None]
    for i, lead_id in enumerate(ids):
        if i % 4 == 0:
            decide(store, lead_id, "lead.assigned", owner="rep-a", team="east")
        elif i % 4 == 1:
            decide(store, lead_id, "lead.assigned", owner="rep-b", team="west")
        elif i % 4 == 2:
            decide(store, lead_id, "lead.returned_to_pool", rule_id=None, reason="unassigned")
        if i % 5 == 0:
            post(store, "lead.qualified", lead_id, stage="MQL")
    return ids


def every_page(client: TestClient, limit: int, **filters: str) -> list[dict[str, Any]]:
    """Follow next_cursor to the end; every page but the last is full."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {**filters, "limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        response = client.get("/v1/leads", params=params, headers=ADMIN)
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items
        assert len(body["items"]) == limit


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def app_store(client: TestClient) -> Store:
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    return store


def test_leads_page_by_capture_time_with_filters_and_no_gaps_or_repeats(
    client: TestClient,
) -> None:
    store = app_store(client)
    ids = capture_120_leads(store)
    project(store)
    # Newest capture first (ties: the greater id first).
    oldest_first = sorted(ids, key=lambda i: (ids.index(i) // 2, str(i)))
    order = [str(lead_id) for lead_id in reversed(oldest_first)]

    paged = every_page(client, limit=7)
    assert [item["lead_id"] for item in paged] == order
    # A list item is the lead as its own page has it, with the earliest of its deadlines.
    detail = client.get(f"/v1/leads/{order[0]}", headers=ADMIN).json()
    running = detail.pop("deadlines")
    assert paged[0] == {**detail, "next_deadline": running[0] if running else None}

    def ids_of(**filters: str) -> list[str]:
        found = [item["lead_id"] for item in every_page(client, limit=4, **filters)]
        assert found == [lead_id for lead_id in order if lead_id in set(found)]
        return found

    assert len(ids_of(owner="rep-a")) == 30
    assert len(ids_of(team="west")) == 30
    assert len(ids_of(in_pool="true")) == 30
    assert len(ids_of(in_pool="false")) == 90
    assert len(ids_of(stage="MQL")) == 24
    assert len(ids_of(stage="new")) == 96
    assert len(ids_of(source="fair")) == 40
    assert len(ids_of(owner="rep-a", source="web")) == 10
    assert len(ids_of(owner="rep-a", stage="MQL")) == 6
    assert ids_of(owner="nobody") == []
    one = client.get("/v1/leads", params={"owner": "rep-b", "limit": 500}, headers=ADMIN).json()
    assert (len(one["items"]), one["next_cursor"]) == (30, None)
    assert {item["owner"] for item in one["items"]} == {"rep-b"}
    assert len(client.get("/v1/leads", headers=ADMIN).json()["items"]) == 50


@pytest.mark.parametrize(
    ("params", "path"),
    [
        ({"limit": 0}, "/limit"),
        ({"limit": 501}, "/limit"),
        ({"stage": "hot"}, "/stage"),
        ({"in_pool": "maybe"}, "/in_pool"),
        ({"owner": ""}, "/owner"),
        ({"cursor": "not-a-cursor"}, "/cursor"),
    ],
)
def test_bad_list_parameters_are_422_naming_the_parameter(
    client: TestClient, params: dict[str, Any], path: str
) -> None:
    response = client.get("/v1/leads", params=params, headers=ADMIN)
    assert response.status_code == 422
    assert path in [detail["path"] for detail in response.json()["error"]["details"]]


def test_a_cursor_only_continues_the_filters_it_was_made_for(client: TestClient) -> None:
    store = app_store(client)
    for i in range(3):
        capture(store, f"c{i}@example.com", at=T0 + timedelta(minutes=i))
    project(store)
    first = client.get("/v1/leads", params={"limit": 1, "source": "web"}, headers=ADMIN).json()
    cursor = first["next_cursor"]
    same = {"limit": 1, "source": "web", "cursor": cursor}
    assert client.get("/v1/leads", params=same, headers=ADMIN).status_code == 200
    other = {"limit": 1, "source": "fair", "cursor": cursor}
    response = client.get("/v1/leads", params=other, headers=ADMIN)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["path"] == "/cursor"
    assert client.get("/v1/leads").status_code == 401


@pytest.mark.parametrize(
    "created_at", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+14:00", "2026-03-01T09:00:00"]
)
def test_a_cursor_altered_to_a_time_the_api_never_writes_is_422(
    client: TestClient, created_at: str
) -> None:
    """A cursor is opaque, but decodable: one rewritten to a time past datetime's range in
    UTC was a 500 (and one without an offset was read in the server's time zone)."""
    store = app_store(client)
    for i in range(2):
        capture(store, f"c{i}@example.com", at=T0 + timedelta(minutes=i))
    project(store)
    cursor = client.get("/v1/leads", params={"limit": 1}, headers=ADMIN).json()["next_cursor"]
    sort, _, lead_id, digest = json.loads(
        base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    )
    altered = base64.urlsafe_b64encode(json.dumps([sort, created_at, lead_id, digest]).encode())
    response = client.get("/v1/leads", params={"cursor": altered.decode()}, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["path"] == "/cursor"


def test_projections_show_position_and_lag_behind_the_log(client: TestClient) -> None:
    store = app_store(client)
    ann = capture(store, "ann@example.com")
    post(store, "lead.followed_up", ann, rep_id="rep-a")
    decide(store, ann, "lead.assigned", owner="rep-a", team="east")

    store.append(
        [incoming("campaign.spend_recorded", {"campaign_id": "c1", "amount": "5"})], [None]
    )

    before = client.get("/v1/projections", headers=ADMIN).json()
    # Each read model counts the events it reads: the lead's three, or the one spend.
    assert before["projections"] == [
        {"name": "leads", "position": 0, "lag": 3},
        {"name": "lead_stages", "position": 0, "lag": 3},
        {"name": "assignments", "position": 0, "lag": 3},
        {"name": "notifications", "position": 0, "lag": 3},
        {"name": "campaign_spend", "position": 0, "lag": 1},
        {"name": "nurture_messages", "position": 0, "lag": 3},
        {"name": "experiment_assignments", "position": 0, "lag": 3},
    ]
    assert before["log_position"] == store.event_log.max_position() > 0

    project_all(store)
    after = client.get("/v1/projections", headers=ADMIN).json()
    leads = after["projections"][0]
    assert [p["lag"] for p in after["projections"]] == [0] * 7
    assert after["projections"][4]["position"] == store.event_log.max_position()
    # Read through to the log's end, past the spend (another topic) after the lead's events.
    assert leads["position"] == after["log_position"]
    assert 0 < view(store)[str(ann)]["last_position"] < leads["position"]


# --- crash safety ----------------------------------------------------------------------

# A projector with small pages, so that it is still at work when the test kills it.
PROJECTOR_SCRIPT = """
from leadflow.bootstrap import open_store
from leadflow.settings import Settings
from projections.leads import LeadsProjection
from projections.projector import Projector

store = open_store(Settings())
Projector(store.event_log, store.engine, [LeadsProjection()], page_size=3).catch_up()
"""


def leadflow_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "LEADFLOW_DATABASE_URL"}
    env["LEADFLOW_DATA_DIR"] = str(settings.data_dir)
    if settings.database_url is not None:
        env["LEADFLOW_DATABASE_URL"] = settings.database_url
    return env


def busy_log(store: Store, leads: int) -> set[UUID]:
    """`leads` leads, each captured twice and followed up three times: counters that an
    event applied twice (or lost) would change."""
    captures = [
        incoming("lead.captured", {"email": f"l{i}@example.com", "source": SOURCES[i % 3]})
        for i in range(leads)
    ]
    ids = {r.lead_id for r in store.append(captures, [None] * leads) if r.lead_id is not None}
    for round_ in range(3):
        follow_ups = [
            incoming("lead.followed_up", {"rep_id": f"rep-{round_}"}, lead_id) for lead_id in ids
        ]
        store.append(follow_ups, [None] * len(follow_ups))
    store.append(captures, [None] * leads)
    return ids


def test_a_projector_killed_mid_run_resumes_to_the_view_a_rebuild_makes(
    store: Store, settings: Settings
) -> None:
    ids = busy_log(store, leads=300)
    process = subprocess.Popen(
        [sys.executable, "-c", PROJECTOR_SCRIPT], env=leadflow_env(settings), cwd=os.getcwd()
    )
    try:
        deadline = time.monotonic() + 120
        while projector_position(store) < store.event_log.max_position() // 3:
            assert process.poll() is None, "the projector finished before it could be killed"
            assert time.monotonic() < deadline, "the projector made no progress"
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    killed_at = projector_position(store)

    project(store, page_size=7)
    assert 0 < killed_at < projector_position(store)
    resumed = view(store)
    assert {row["followups_count"] for row in resumed.values()} == {3}
    assert {row["touch_count"] for row in resumed.values()} == {2}
    rebuild_leads(store)
    assert view(store) == resumed
    assert_view_equals_the_log(store, ids)


def test_two_projectors_at_once_apply_each_event_once(store: Store) -> None:
    ids = busy_log(store, leads=60)
    projectors = [
        Projector(store.event_log, store.engine, [LeadsProjection()], page_size=size)
        for size in (4, 7)
    ]
    threads = [threading.Thread(target=projector.catch_up) for projector in projectors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rows = view(store)
    assert {row["followups_count"] for row in rows.values()} == {3}
    assert {row["touch_count"] for row in rows.values()} == {2}
    assert_view_equals_the_log(store, ids)


def test_a_member_moved_under_a_shared_page_still_applies_each_event_once(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read models at one position share a page and one transaction; when another
    projector moves one of them after the positions were read, nothing of that transaction
    is written and each goes on from its own position."""
    ids = busy_log(store, leads=30)
    other = Projector(store.event_log, store.engine, [LeadsProjection()], page_size=7)
    real_read = projector_module.read_page
    to_move = [LeadsProjection()]  # at the first read, by the other projector
    moved: list[int] = []

    def read_while_another_projector_moves_leads(*args: Any, **kwargs: Any) -> Any:
        while to_move:
            moved.append(other.project_page(to_move.pop()))
        return real_read(*args, **kwargs)

    monkeypatch.setattr(projector_module, "read_page", read_while_another_projector_moves_leads)
    project_all(store)
    assert moved == [7]
    rows = view(store)
    assert {row["followups_count"] for row in rows.values()} == {3}
    assert {row["touch_count"] for row in rows.values()} == {2}
    assert_view_equals_the_log(store, ids)
    projected = every_table(store)
    rebuild_all(store)
    assert every_table(store) == projected


class FailingProjection:
    """A read model whose `apply` fails (a bug, a lost connection) after it wrote a row."""

    def __init__(self, inner: LeadStagesProjection) -> None:
        self.inner = inner
        self.name = inner.name
        self.topics = inner.topics
        self.metadata = inner.metadata

    def apply(self, conn: Connection, entries: Sequence[LogEntry[Any]]) -> None:
        self.inner.apply(conn, entries)
        raise RuntimeError("apply failed")


def test_a_failing_apply_leaves_every_member_of_the_shared_page_untouched(
    store: Store,
) -> None:
    busy_log(store, leads=5)
    stages = LeadStagesProjection()
    members = [LeadsProjection(), FailingProjection(stages)]
    with pytest.raises(RuntimeError, match="apply failed"):
        Projector(store.event_log, store.engine, members).project_once()
    with store.engine.connect() as conn:
        assert [position_of(conn, member) for member in members] == [0, 0]
        assert conn.execute(select(func.count()).select_from(stages.table)).scalar_one() == 0
    assert view(store) == {}


def test_a_rebuild_beside_a_running_projector_and_new_events_loses_nothing(
    store: Store,
) -> None:
    ids = busy_log(store, leads=40)
    stop = threading.Event()
    live = Projector(store.event_log, store.engine, [LeadsProjection()], page_size=5)

    def follow() -> None:
        while not stop.is_set():
            live.catch_up()

    def append_more(done: int, total: int) -> None:
        # Events keep arriving while the rebuild replays: one after each of its pages.
        ids.add(capture(store, f"late{done}@example.com"))

    follower = threading.Thread(target=follow)
    follower.start()
    try:
        rebuild(
            store.event_log,
            store.engine,
            LeadsProjection(),
            LeadsProjection(REBUILD_SUFFIX),
            page_size=25,
            progress=append_more,
        )
        for lead_id in list(ids)[:5]:
            post(store, "lead.followed_up", lead_id, rep_id="rep-late")
    finally:
        stop.set()
        follower.join()
    project(store)
    assert_view_equals_the_log(store, ids)


def test_leadflow_projector_projects_without_temporal_and_stops_on_sigterm(
    store: Store, settings: Settings
) -> None:
    ids = busy_log(store, leads=5)
    env = {**leadflow_env(settings), "LEADFLOW_TEMPORAL_ADDRESS": "127.0.0.1:1"}
    process = subprocess.Popen([sys.executable, "-m", "leadflow", "projector"], env=env)
    try:
        deadline = time.monotonic() + 60
        while len(view(store)) < len(ids) or projector_position(store) == 0:
            assert process.poll() is None
            assert time.monotonic() < deadline, "the projector did not project"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert_view_equals_the_log(store, ids)


# --- rebuild ---------------------------------------------------------------------------


def test_reads_keep_succeeding_while_a_rebuild_swaps_the_table(client: TestClient) -> None:
    store = app_store(client)
    ids = busy_log(store, leads=200)
    project(store)
    expected = [item["lead_id"] for item in every_page(client, limit=500)]
    assert len(expected) == 200

    rebuilding = threading.Event()
    finished = threading.Event()
    served_during_rebuild = threading.Semaphore(0)
    failures: list[str] = []
    served: list[int] = []

    def read_until_finished() -> None:
        while not finished.is_set():
            response = client.get("/v1/leads", params={"limit": 500}, headers=ADMIN)
            if response.status_code != 200:
                failures.append(f"{response.status_code}: {response.text}")
            elif [item["lead_id"] for item in response.json()["items"]] != expected:
                failures.append("a page that is not the whole view")
            served.append(response.status_code)
            if rebuilding.is_set():
                served_during_rebuild.release()

    readers = [threading.Thread(target=read_until_finished) for _ in range(3)]
    for reader in readers:
        reader.start()
    try:

        def wait_for_a_read(done: int, total: int) -> None:
            # Each page of the rebuild waits for a read served meanwhile: reads and the
            # rebuild overlap however fast either is.
            rebuilding.set()
            served_during_rebuild.acquire(timeout=30)

        replayed = rebuild(
            store.event_log,
            store.engine,
            LeadsProjection(),
            LeadsProjection(REBUILD_SUFFIX),
            page_size=100,
            progress=wait_for_a_read,
        )
        # And reads of the swapped-in table.
        swapped = len(served)
        deadline = time.monotonic() + 30
        while len(served) < swapped + 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        finished.set()
        for reader in readers:
            reader.join()
    assert failures == []
    assert replayed == 200 * 5 and len(served) > 10
    assert_view_equals_the_log(store, ids)


def test_the_rebuild_command_replays_and_names_the_projections(
    store: Store, settings: Settings
) -> None:
    ids = busy_log(store, leads=20)
    project(store)
    before = view(store)
    command = [sys.executable, "-m", "leadflow", "projections", "rebuild"]
    done = subprocess.run(
        [*command, "leads", "--data-dir", str(settings.data_dir)],
        env=leadflow_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "leads: rebuilt from 100 events" in done.stderr
    assert view(store) == before
    assert_view_equals_the_log(store, ids)
    unknown = subprocess.run(
        [*command, "nope", "--data-dir", str(settings.data_dir)],
        env=leadflow_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unknown.returncode == 2 and "there are: leads" in unknown.stderr


# --- incremental == rebuild, for any sequence of events ----------------------------------

EMAILS = ("a@x.io", "b@x.io", "c@x.io")
REPS = ("rep-a", "rep-b")

posted = st.one_of(
    st.tuples(
        st.just("lead.followed_up"), st.fixed_dictionaries({"rep_id": st.sampled_from(REPS)})
    ),
    st.tuples(
        st.just("lead.qualified"), st.fixed_dictionaries({"stage": st.sampled_from(["MQL", "SQL"])})
    ),
    st.tuples(st.just("lead.opportunity_opened"), st.just({})),
    st.tuples(
        st.just("lead.won"), st.fixed_dictionaries({"amount": st.sampled_from(["10", "2.5"])})
    ),
    st.tuples(st.just("lead.lost"), st.just({})),
    st.tuples(st.just("lead.reassigned"), st.fixed_dictionaries({"rep_id": st.sampled_from(REPS)})),
    st.tuples(st.just("lead.released"), st.fixed_dictionaries({"rep_id": st.sampled_from(REPS)})),
    st.tuples(st.just("email.clicked"), st.just({"message_id": "m1"})),
    st.tuples(st.just("email.opened"), st.just({"message_id": "m1"})),
    st.tuples(st.just("lead.unsubscribed"), st.just({})),
)
decided = st.one_of(
    st.tuples(
        st.just("lead.assigned"),
        st.fixed_dictionaries(
            {"owner": st.sampled_from(REPS), "team": st.sampled_from(["east", "west"])}
        ),
    ),
    st.tuples(st.just("lead.returned_to_pool"), st.just({"reason": "sla_missed"})),
    st.tuples(
        st.just("lead.task_created"),
        st.just({"task": "first_follow_up", "due_at": "2026-03-03T09:00:00+00:00"}),
    ),
    st.tuples(st.just("lead.scored"), st.fixed_dictionaries({"score": st.integers(0, 100)})),
    st.tuples(
        st.just("lead.tagged"), st.fixed_dictionaries({"tag": st.sampled_from(["vip", "cold"])})
    ),
    st.tuples(st.just("experiment.variant_assigned"), st.just({"experiment": "x", "variant": "B"})),
    st.tuples(st.just("nurture.enrolled"), st.just({"sequence": "welcome"})),
    st.tuples(st.just("nurture.exited"), st.just({"sequence": "welcome"})),
    st.tuples(st.just("lead.stage_changed"), st.just({"stage": "MQL"})),
    st.tuples(st.just("lead.timer_fired"), st.just({"timer": "first_follow_up"})),
    st.tuples(
        st.just("nurture.email_sent"),
        st.just({"message_id": "m1", "template": "welcome", "variant": "A"}),
    ),
    st.tuples(
        st.just("notification.queued"),
        st.just({"to": "owner", "template": "follow-up-overdue", "channel": "email"}),
    ),
    st.tuples(
        st.just("notification.sent"),
        st.just({"to": "owner", "recipient": "a@x.io", "channel": "email", "status": "sent"}),
    ),
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("capture"), st.sampled_from(EMAILS), st.sampled_from(SOURCES)),
        st.tuples(st.just("post"), st.integers(0, 2), posted),
        st.tuples(st.just("decide"), st.integers(0, 2), decided),
        st.tuples(st.just("project"), st.integers(1, 6)),
        st.tuples(st.just("spend"), st.sampled_from(["c1", "c2"]), st.sampled_from(["10", "2.5"])),
    ),
    max_size=30,
)


@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=steps, last_page=st.integers(1, 6))
def test_incremental_projection_equals_a_rebuild(steps: list[Any], last_page: int) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        store = open_store(Settings(data_dir=Path(data_dir)))
        try:
            leads: list[UUID] = []
            minute = 0
            for step in steps:
                minute += 1
                at = T0 + timedelta(minutes=minute)
                if step[0] == "capture":
                    leads.append(capture(store, step[1], at=at, source=step[2]))
                elif step[0] == "project":
                    project_all(store, page_size=step[1])
                elif step[0] == "spend":
                    record_spend(store, step[1], step[2], at)
                elif leads:
                    lead_id = leads[step[1] % len(leads)]
                    type_, data = step[2]
                    if step[0] == "decide":
                        decide(store, lead_id, type_, **data)
                        continue
                    # One the lead's state refuses is not appended; the sequence goes on.
                    with contextlib.suppress(DomainError):
                        post(store, type_, lead_id, at=at, **data)
            project_all(store, page_size=last_page)
            incremental = every_table(store)
            rebuild_all(store, page_size=last_page)
            assert every_table(store) == incremental
            assert_view_equals_the_log(store, set(leads))
        finally:
            store.close()
