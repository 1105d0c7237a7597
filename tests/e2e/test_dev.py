"""`leadflow dev` end to end: the real supervisor, Temporal dev server, worker, dispatcher and
API as subprocesses, driven over HTTP, with workflows inspected through Temporal queries.

What a user relies on: a 202 means the event is kept and will reach the lead's workflow,
whatever happens to the processes (kill -9, a Temporal outage), and Ctrl-C leaves nothing
running behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import uuid4

import httpx
import pytest
from support import all_up, metric_total, metric_value, settles
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError

from domain.state import LeadState
from workflows.lead import LeadWorkflow

if TYPE_CHECKING:
    # Fixture types only: at run time everything comes through the fixtures.
    from conftest import LeadflowDev, Processes

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "leadflow-dashboard.json"

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e"), pytest.mark.timeout(300)]

# Generous: two cores, shared with other test runs.
DELIVERY_SECONDS = 90.0
OUTAGE_SECONDS = 12.0
STOP_SECONDS = 20.0

T = TypeVar("T")


def api(dev: LeadflowDev) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=dev.api_url, headers={"Authorization": f"Bearer {dev.admin_key}"}, timeout=30
    )


def capture(email: str, event_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "lead.captured",
        "data": {"email": email, "source": "website"},
    }
    if event_id is not None:
        body["event_id"] = event_id
    return body


def follow_up(lead_id: str, event_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "lead.followed_up",
        "lead_id": lead_id,
        "data": {"rep_id": "rep-a"},
    }
    if event_id is not None:
        body["event_id"] = event_id
    return body


async def post_event(http: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    """POST /v1/events, which must accept it (202); its answer."""
    response = await http.post("/v1/events", json=body)
    assert response.status_code == 202, f"{body['type']} refused: {response.text}"
    answer: dict[str, Any] = response.json()
    return answer


async def workflow_state(client: Client, lead_id: str) -> LeadState | None:
    """The state `LeadWorkflow` holds for the lead, or None if it cannot answer yet."""
    # The id operators look a lead up by (SPEC §1), spelled out rather than imported.
    handle = client.get_workflow_handle_for(LeadWorkflow.run, f"lead-{lead_id}")
    try:
        return await handle.query(LeadWorkflow.state, rpc_timeout=timedelta(seconds=10))
    except (RPCError, WorkflowQueryFailedError):
        return None  # not started yet, or no worker to answer right now


async def wait_for_workflows(
    client: Client, last_sequences: Mapping[str, int], seconds: float = DELIVERY_SECONDS
) -> dict[str, LeadState]:
    """Wait until each lead's workflow has folded its stream up to the given sequence."""
    folded: dict[str, LeadState] = {}

    def behind() -> list[str]:
        return [
            lead_id
            for lead_id, sequence in last_sequences.items()
            if lead_id not in folded or folded[lead_id].last_sequence < sequence
        ]

    async def probe() -> dict[str, LeadState] | None:
        lagging = behind()
        found = await asyncio.gather(*(workflow_state(client, lead_id) for lead_id in lagging))
        folded.update({k: state for k, state in zip(lagging, found, strict=True) if state})
        return None if behind() else folded

    try:
        return await settles(probe, "events reaching their workflows", seconds)
    except AssertionError:
        report = {k: (folded[k].last_sequence if k in folded else None) for k in behind()}
        raise AssertionError(
            f"{len(report)} of {len(last_sequences)} workflows behind the log after "
            f"{seconds:.0f}s (lead id: last sequence folded): {report}"
        ) from None


async def readyz(dev: LeadflowDev) -> tuple[int, dict[str, Any]]:
    async with httpx.AsyncClient(base_url=dev.api_url, timeout=10) as http:
        response = await http.get("/readyz")
    return response.status_code, response.json()


async def test_kill_9_and_restart_loses_nothing(processes: Processes, tmp_path: Path) -> None:
    dev = processes.leadflow_dev(tmp_path / "data")
    await asyncio.to_thread(dev.wait_ready)

    # Every accepted event: its request body (to repost) and the answer it got.
    posted: list[tuple[dict[str, Any], dict[str, Any]]] = []
    async with api(dev) as http:
        for i in range(30):
            body = capture(f"kill9-{i}@example.com", event_id=str(uuid4()))
            posted.append((body, await post_event(http, body)))
        lead_ids = [answer["lead_id"] for _, answer in posted]
        followed = lead_ids[:5]
        for lead_id in followed:
            body = follow_up(lead_id, event_id=str(uuid4()))
            posted.append((body, await post_event(http, body)))

    client = await Client.connect(dev.temporal_target)
    # The highest sequence each lead's client was told; decisions may follow it.
    last_sequences: dict[str, int] = {}
    for _, answer in posted:
        last_sequences[answer["lead_id"]] = max(
            answer["sequence"], last_sequences.get(answer["lead_id"], 0)
        )
    await wait_for_workflows(client, last_sequences)
    run_ids = {
        lead_id: (await client.get_workflow_handle(f"lead-{lead_id}").describe()).run_id
        for lead_id in lead_ids
    }

    # kill -9 everything at once: supervisor, Temporal, worker, dispatcher, API.
    dev.kill_9()
    dev.start()
    await asyncio.to_thread(dev.wait_ready)

    async with api(dev) as http:
        # The log kept every event, with the sequences the clients were told.
        for lead_id in lead_ids:
            response = await http.get(f"/v1/leads/{lead_id}/events")
            assert response.status_code == 200, response.text
            # Decided events (assignment, tasks) sit between the posted ones.
            stored = [
                (e["event_id"], e["sequence"])
                for e in response.json()["events"]
                if e["caused_by"] is None
            ]
            told = [
                (answer["event_id"], answer["sequence"])
                for _, answer in posted
                if answer["lead_id"] == lead_id
            ]
            assert stored == told

        # A client retrying after the crash gets the first answer, not a second event.
        for body, answer in posted:
            again = await post_event(http, body)
            assert again == {**answer, "duplicate": True}

    # The same workflow executions survived (their histories live in the data dir), and
    # nothing was folded twice when the dispatcher resumed.
    client = await Client.connect(dev.temporal_target)
    states = await wait_for_workflows(client, last_sequences)
    for lead_id in lead_ids:
        description = await client.get_workflow_handle(f"lead-{lead_id}").describe()
        assert description.run_id == run_ids[lead_id]
        state = states[lead_id]
        assert state.last_sequence >= last_sequences[lead_id]
        assert state.touch_count == 1
        assert state.followups_count == (1 if lead_id in followed else 0)

    # Events posted after the restart reach their workflows too.
    async with api(dev) as http:
        for lead_id in lead_ids[:10]:
            answer = await post_event(http, follow_up(lead_id))
            last_sequences[lead_id] = answer["sequence"]
        newcomer = await post_event(http, capture("after-restart@example.com"))
        assert newcomer["new_lead"] is True
        last_sequences[newcomer["lead_id"]] = 1
    states = await wait_for_workflows(client, last_sequences)
    assert [states[lead_id].followups_count for lead_id in lead_ids[:10]] == [2] * 5 + [1] * 5


async def test_events_posted_while_temporal_is_down_are_delivered_after(
    processes: Processes, tmp_path: Path
) -> None:
    temporal = processes.temporal_server(tmp_path / "temporal.db")
    dev = processes.leadflow_dev(tmp_path / "data", temporal_address=temporal.address)
    await asyncio.to_thread(dev.wait_ready)

    async with api(dev) as http:
        first = await post_event(http, capture("before-outage@example.com"))
    client = await Client.connect(dev.temporal_target)
    await wait_for_workflows(client, {first["lead_id"]: 1})

    await asyncio.to_thread(temporal.stop)

    # Ingest does not depend on Temporal: every event is accepted during the outage.
    last_sequences = {first["lead_id"]: 1}
    async with api(dev) as http:
        for i in range(10):
            captured = await post_event(http, capture(f"during-outage-{i}@example.com"))
            assert captured["new_lead"] is True
            followed = await post_event(http, follow_up(captured["lead_id"]))
            last_sequences[captured["lead_id"]] = followed["sequence"]

    async def temporal_reported_down() -> dict[str, Any] | None:
        status, body = await readyz(dev)
        return body if status == 200 and body["checks"]["temporal"] == "down" else None

    # The API can still do its job: ready (200), degraded, naming what is down.
    degraded = await settles(temporal_reported_down, "/readyz naming Temporal down", 30)
    assert degraded["status"] == "degraded"

    # Stay down longer than one delivery's RPC timeout (10 s), so the dispatcher's own
    # fail-and-retry path runs, not only the Temporal client's internal retries.
    await asyncio.sleep(OUTAGE_SECONDS)

    temporal.start()  # same database file and port: Temporal comes back with its history

    states = await wait_for_workflows(client, last_sequences)
    outage_leads = list(last_sequences)[1:]
    assert [states[lead_id].followups_count for lead_id in outage_leads] == [1] * 10

    async def ready_again() -> bool | None:
        status, body = await readyz(dev)
        return True if status == 200 and all_up(body) else None

    await settles(ready_again, "/readyz with every check up again", DELIVERY_SECONDS)


async def test_twenty_concurrent_captures_of_one_email_make_one_lead(
    shared_dev: LeadflowDev,
) -> None:
    local = f"Concurrent.{uuid4().hex[:8]}"
    # One address, written twenty ways: letter case and surrounding whitespace vary.
    spellings = [
        " " * (i % 3)
        + (local.upper() if i % 2 else local.lower())
        + ("@EXAMPLE.com" if i % 4 < 2 else "@example.COM")
        + "\t" * (i % 2)
        for i in range(20)
    ]
    async with api(shared_dev) as http:
        responses = await asyncio.gather(
            *(http.post("/v1/events", json=capture(email)) for email in spellings)
        )
    assert [r.status_code for r in responses] == [202] * 20, [r.text for r in responses]
    answers = [r.json() for r in responses]
    assert sum(a["new_lead"] for a in answers) == 1
    assert not any(a["duplicate"] for a in answers)
    lead_ids = {a["lead_id"] for a in answers}
    assert len(lead_ids) == 1
    [lead_id] = lead_ids
    sequences = sorted(a["sequence"] for a in answers)
    assert len(set(sequences)) == 20 and sequences[0] == 1

    async with api(shared_dev) as http:
        stream = (await http.get(f"/v1/leads/{lead_id}/events")).json()["events"]
    # Every capture is in the stream at the sequence its client was told.
    assert [e["sequence"] for e in stream if e["type"] == "lead.captured"] == sequences

    async with api(shared_dev) as http:
        response = await http.get(f"/v1/leads/{lead_id}")
    assert response.status_code == 200, response.text
    assert response.json()["email"] == f"{local.lower()}@example.com"

    client = await Client.connect(shared_dev.temporal_target)
    states = await wait_for_workflows(client, {lead_id: 20})
    assert states[lead_id].touch_count == 20


async def test_every_process_serves_metrics_that_move_while_leads_flow(
    shared_dev: LeadflowDev,
) -> None:
    """`curl :8000/metrics` (and the worker's, the projector's and the Temporal SDK's
    ports) shows the flow's figures growing as leads arrive, are delivered, decided and
    projected; the dispatcher's lag comes back to 0."""

    async def scrape() -> dict[str, str]:
        async with httpx.AsyncClient(timeout=10) as http:
            answers = {
                process: await http.get(url) for process, url in shared_dev.metrics_urls.items()
            }
        assert {process: a.status_code for process, a in answers.items()} == dict.fromkeys(
            answers, 200
        )
        return {process: answer.text for process, answer in answers.items()}

    before = await scrape()
    async with api(shared_dev) as http:
        leads = [
            await post_event(http, capture(f"metrics-{i}-{uuid4().hex[:8]}@example.com"))
            for i in range(5)
        ]
    client = await Client.connect(shared_dev.temporal_target)
    await wait_for_workflows(client, {lead["lead_id"]: 1 for lead in leads})

    def grew(after: dict[str, str], process: str, name: str) -> float:
        return metric_total(after[process], name) - metric_total(before[process], name)

    async def moved() -> dict[str, str] | None:
        after = await scrape()
        figures = [
            grew(after, "api", "leadflow_log_appends_total") >= 5,
            grew(after, "api", "leadflow_ingest_group_commit_events_count") >= 5,
            grew(after, "projector", "leadflow_dispatcher_deliveries_total") >= 5,
            grew(after, "projector", "leadflow_projection_events_total") >= 5,
            grew(after, "worker", "leadflow_decisions_total") >= 5,
            metric_value(after["api"], "leadflow_follower_lag_events", follower="dispatcher") == 0,
        ]
        return after if all(figures) else None

    after = await settles(moved, "every process's figures moving", DELIVERY_SECONDS)
    posts = metric_value(
        after["api"],
        "leadflow_http_requests_total",
        method="POST",
        route="/v1/events",
        status="202",
    )
    assert posts is not None and posts >= 5
    # The Temporal SDK's own worker metrics, through its runtime's Prometheus exporter: every
    # series the Grafana dashboard shows of them is there.
    panels = json.loads(DASHBOARD.read_text())["panels"]
    exprs = " ".join(target["expr"] for panel in panels for target in panel.get("targets", []))
    sdk_series = set(re.findall(r"\btemporal_[a-z_]+\b", exprs))
    assert sdk_series, "the dashboard shows the SDK's metrics"
    scraped = {line.split("{")[0].split(" ")[0] for line in after["temporal"].splitlines()}
    assert sdk_series <= scraped, sorted(sdk_series - scraped)


async def test_ctrl_c_stops_every_child(processes: Processes, tmp_path: Path) -> None:
    dev = processes.leadflow_dev(tmp_path / "data")
    await asyncio.to_thread(dev.wait_ready)
    assert dev.group.popen is not None
    assert len(dev.group.members()) >= 5, "supervisor, Temporal, worker, projector and API"
    log_before = dev.group.log_size()

    # SIGINT to `leadflow dev` alone, as a process manager or an IDE's stop button sends
    # it (a terminal signals the whole group): the supervisor must stop its children.
    os.kill(dev.group.popen.pid, signal.SIGINT)
    try:
        await asyncio.to_thread(dev.group.popen.wait, STOP_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"leadflow dev still running {STOP_SECONDS:.0f}s after Ctrl-C")

    assert dev.group.members() == [], "children left running after leadflow dev exited"
    shutdown_log = dev.group.log_text(since=log_before)
    assert "Traceback" not in shutdown_log


async def test_the_children_log_for_a_person(shared_dev: LeadflowDev) -> None:
    """`leadflow dev`'s console shows its children's lines in the human format: time,
    level, process, logger, message, then the ids as key=value; no JSON."""
    async with api(shared_dev) as http:
        answer = await post_event(http, capture(f"human.{uuid4().hex[:8]}@example.com"))
    lead_id = answer["lead_id"]

    async def decided() -> str | None:
        return next(
            (
                line
                for line in shared_dev.group.log_text().splitlines()
                if f"lead {lead_id}: lead.captured →" in line
            ),
            None,
        )

    line = await settles(decided, "the worker's line deciding the new lead", DELIVERY_SECONDS)
    assert re.fullmatch(
        rf"\d\d:\d\d:\d\d\.\d{{3}} INFO  worker activities\.decisions: lead {lead_id}: "
        rf"lead\.captured → .*  lead_id={lead_id} workflow_id=lead-{lead_id} run_id=\S+ "
        r"activity_type=decide.*",
        line,
    ), line
    lines = shared_dev.group.log_text().splitlines()
    assert any(re.search(r" INFO  api leadflow\.processes: api starting", x) for x in lines)
    assert not [x for x in lines if x.startswith('{"ts"')], "a child logged JSON lines"
