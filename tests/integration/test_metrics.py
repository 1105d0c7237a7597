"""Metrics and the operator's status over a real store (SQLite and PostgreSQL): the API's
`/metrics` counts requests by route template, group commits and appends, and reads each
follower's lag and the quarantine at scrape time; `/v1/status` names every component with
its lag and last error; the worker's activities and the projector count what they do."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

import pytest
from eventsourcing.utils import get_topic
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from support import metric_value

from api.app import create_app
from api.flow_status import read_flow_status
from domain.lead import Lead
from leadflow.bootstrap import projections
from leadflow.settings import Settings
from projections.projector import Projector
from store.quarantine import DECISION, DELIVERY, FailedEvent

if TYPE_CHECKING:
    from conftest import RunPipeline

ADMIN = {"Authorization": "Bearer lf_test_admin"}
CAPTURED = get_topic(Lead.Captured)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def capture(email: str) -> dict[str, Any]:
    return {"type": "lead.captured", "data": {"email": email, "source": "website"}}


def scrape(client: TestClient) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def counted(text: str, name: str, **labels: str) -> float:
    return metric_value(text, name, **labels) or 0.0


def test_requests_are_counted_by_route_template_and_status(client: TestClient) -> None:
    before = scrape(client)
    posted = [
        client.post("/v1/events", json=capture(f"m{i}@x.io"), headers=ADMIN) for i in range(3)
    ]
    assert {response.status_code for response in posted} == {202}
    lead_id = posted[0].json()["lead_id"]
    assert client.get(f"/v1/leads/{lead_id}/events", headers=ADMIN).status_code == 200
    assert (
        client.post("/v1/events", json={"type": "lead.captured"}, headers=ADMIN).status_code == 422
    )
    assert client.get("/no/such/place/lf_secret_in_path").status_code == 404
    after = scrape(client)

    def grew(name: str, **labels: str) -> float:
        return counted(after, name, **labels) - counted(before, name, **labels)

    requests = "leadflow_http_requests_total"
    assert grew(requests, method="POST", route="/v1/events", status="202") == 3
    assert grew(requests, method="POST", route="/v1/events", status="422") == 1
    # The template, never the id: one series for every lead.
    assert grew(requests, method="GET", route="/v1/leads/{lead_id}/events", status="200") == 1
    assert grew(requests, method="GET", route="unmatched", status="404") == 1
    assert "lf_secret_in_path" not in after and lead_id not in after
    duration = "leadflow_http_request_duration_seconds_count"
    assert grew(duration, method="POST", route="/v1/events") == 4
    # Each valid post was a group of one here (one client), and appended its capture; the
    # refused one never reached the writer.
    assert grew("leadflow_ingest_group_commit_events_count") == 3
    assert grew("leadflow_ingest_group_commit_events_sum") == 3
    assert grew("leadflow_log_appends_total", origin="ingest") == 3


def test_follower_lag_and_the_quarantine_are_read_at_each_scrape(
    client: TestClient, settings: Settings
) -> None:
    store = client.app.state.store  # type: ignore[attr-defined]
    for i in range(4):
        assert client.post("/v1/events", json=capture(f"lag{i}@x.io"), headers=ADMIN).is_success
    text = scrape(client)
    assert metric_value(text, "leadflow_database_up") == 1
    assert metric_value(text, "leadflow_log_position") == store.event_log.max_position()
    # Nothing follows the log in this test: the dispatcher and every read model of captures
    # lag all four, the oldest of them waiting since it was posted.
    readers = [p for p in projections() if CAPTURED in p.topics]
    assert readers
    for follower in ["dispatcher", *(f"projection:{p.name}" for p in readers)]:
        lag = metric_value(text, "leadflow_follower_lag_events", follower=follower)
        assert lag is not None and lag >= 4, follower
        waited = metric_value(text, "leadflow_follower_lag_seconds", follower=follower)
        assert waited is not None and waited > 0, follower

    leads = next(p for p in projections() if p.name == "leads")
    projector = Projector(store.event_log, store.engine, [leads])
    while projector.project_page(leads):
        pass
    caught_up = scrape(client)
    assert metric_value(caught_up, "leadflow_follower_lag_events", follower="projection:leads") == 0
    assert (
        metric_value(caught_up, "leadflow_follower_lag_seconds", follower="projection:leads") == 0
    )
    assert counted(caught_up, "leadflow_projection_events_total", projection="leads") >= 4

    park(store, DELIVERY, "Temporal refused the payload: blob size exceeds limit")
    held = scrape(client)
    assert metric_value(held, "leadflow_quarantine_open", stage=DELIVERY, status="retrying") == 1
    assert metric_value(held, "leadflow_quarantine_open", stage=DELIVERY, status="parked") == 0


def park(store: Any, stage: str, error: str, lead_id: str = "1" * 32) -> None:
    """A failure recorded in the quarantine, as a follower records one."""
    failed = FailedEvent(
        stream_id=str(UUID(lead_id)),
        lead_id=str(UUID(lead_id)),
        position=1,
        event_id="ev-1",
        event_type="lead.captured",
        sequence=1,
    )
    with store.engine.begin() as conn:
        store.quarantine.failed(conn, stage, failed, error, datetime.now(UTC))


def test_status_names_every_component_with_its_lag_and_last_error(
    client: TestClient, settings: Settings
) -> None:
    store = client.app.state.store  # type: ignore[attr-defined]
    assert client.post("/v1/events", json=capture("s@x.io"), headers=ADMIN).is_success
    park(store, DELIVERY, "an older error", lead_id="2" * 32)
    park(store, DELIVERY, "Temporal refused the payload")
    park(store, DECISION, "DecisionOverBudget: the rules ran past their 2 s budget of CPU")

    response = client.get("/v1/status", headers=ADMIN)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["log_position"] == store.event_log.max_position()
    components = {c["name"]: c for c in body["components"]}
    assert set(components) == {
        "database",
        "temporal",
        "worker",
        "dispatcher",
        "decisions",
        *(f"projection:{p.name}" for p in projections()),
    }
    # Every component has every figure; those that do not apply to it are null.
    assert components["database"] == {
        "name": "database",
        "status": "up",
        "position": None,
        "lag_events": None,
        "lag_seconds": None,
        "quarantined": None,
        "last_error": None,
    }
    # No Temporal in this test: named down, with why.
    assert components["temporal"]["status"] == "down"
    assert "health check" in components["temporal"]["last_error"]["message"]
    dispatcher = components["dispatcher"]
    assert (dispatcher["status"], dispatcher["quarantined"], dispatcher["lag_events"]) == (
        "degraded",
        2,
        1,
    )
    assert dispatcher["last_error"]["message"] == "Temporal refused the payload"
    assert dispatcher["lag_seconds"] > 0
    decisions = components["decisions"]
    assert decisions["status"] == "degraded" and decisions["quarantined"] == 1
    assert decisions["last_error"]["message"].startswith("DecisionOverBudget")
    leads = components["projection:leads"]
    assert (leads["status"], leads["quarantined"], leads["last_error"]) == ("up", 0, None)

    assert client.get("/v1/status").status_code == 401
    reader = store.keys.create(["read"])
    assert (
        client.get("/v1/status", headers={"Authorization": f"Bearer {reader}"}).status_code == 403
    )


def test_a_follower_whose_oldest_event_waited_over_a_minute_is_behind(
    client: TestClient,
) -> None:
    """The status's `behind` comes from the age of the oldest waiting event: an event
    posted with its own `occurred_at` long ago still counts from when it was recorded."""
    store = client.app.state.store  # type: ignore[attr-defined]
    assert client.post("/v1/events", json=capture("old@x.io"), headers=ADMIN).is_success
    body = client.get("/v1/status", headers=ADMIN).json()
    dispatcher = next(c for c in body["components"] if c["name"] == "dispatcher")
    assert dispatcher["status"] == "up"  # seconds old, not yet behind
    # Read the same log a minute and a half later: the same event has now waited that long.
    later = datetime.now(UTC) + timedelta(seconds=90)
    flow = read_flow_status(store, projections(), later)
    [waiting] = [f for f in flow.followers if f.name == "dispatcher"]
    assert waiting.behind and waiting.lag_seconds >= 89


async def test_the_worker_counts_decisions_timers_and_notifications(
    temporal_settings: Settings, run_pipeline: RunPipeline
) -> None:
    """The worker's activities count into this process's registry (what the worker's
    `/metrics` serves): decisions by rule id and type, timers with their lateness, and
    each notification by channel and status."""

    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = {
        "assigned": value("leadflow_decisions_total", rule_id="assign", outcome="lead.assigned"),
        "fired": value("leadflow_timers_fired_total", timer="nudge"),
        "late": value("leadflow_timer_lateness_seconds_count"),
        "noted": value("leadflow_notifications_total", channel="email", status="recorded"),
        "appends": value("leadflow_log_appends_total", origin="decisions"),
    }
    async with run_pipeline(temporal_settings) as pipeline:
        rulebook = pipeline.store.rulebook
        now = datetime.now(UTC)
        rulebook.install_defaults(now)
        rulebook.activate(rulebook.publish(METRICS_RULESET, "test", now), "test", now)
        lead = pipeline.capture("counted@x.io")

        def nudged() -> bool:
            return any(e.type == "lead.tagged" for e in pipeline.store.event_log.lead_events(lead))

        await pipeline.until(nudged, "the nudge timer's tag")
        await pipeline.until(
            lambda: (
                value("leadflow_notifications_total", channel="email", status="recorded")
                > before["noted"]
            ),
            "the owner's email recorded",
        )
    assert value("leadflow_decisions_total", rule_id="assign", outcome="lead.assigned") == (
        before["assigned"] + 1
    )
    assert value("leadflow_timers_fired_total", timer="nudge") == before["fired"] + 1
    assert value("leadflow_timer_lateness_seconds_count") >= before["late"] + 1
    assert value("leadflow_log_appends_total", origin="decisions") >= before["appends"] + 3


METRICS_RULESET: dict[str, Any] = {
    "name": "metrics",
    "timers": [{"id": "nudge", "start_on": ["lead.assigned"], "after": "PT1S"}],
    "rules": [
        {
            "id": "assign",
            "when": ["lead.captured"],
            "conditions": {"all": []},
            "actions": [
                {"name": "assign_to_rep", "params": {"rep": "rep-east-1"}},
                {"name": "notify", "params": {"to": "owner", "template": "follow-up-overdue"}},
            ],
        },
        {
            "id": "nudge",
            "when": ["timer.nudge"],
            "conditions": {"all": []},
            "actions": [{"name": "add_tag", "params": {"tag": "nudged"}}],
        },
    ],
}
