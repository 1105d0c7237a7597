"""Log → dispatcher → LeadWorkflow on a real Temporal dev server, on SQLite and PostgreSQL.

Every workflow history these tests produce is replayed with `temporalio.worker.Replayer`
at the end of each test, so a non-deterministic change to the workflow fails CI.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
from collections import Counter
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributeKey
from temporalio.worker import Replayer

from domain.events import parse_event
from domain.state import LeadState
from leadflow.bootstrap import Store, open_store
from leadflow.processes import lead_worker
from leadflow.settings import Settings
from leadflow.temporal import LeadWorkflows
from projections.dispatcher import FOLLOWER_NAME, Dispatcher
from workflows.lead import LeadWorkflow, workflow_id_for


@dataclasses.dataclass
class Pipeline:
    store: Store
    client: Client
    settings: Settings

    def post(self, body: dict[str, Any]) -> Any:
        event = parse_event(body, now=datetime.now(UTC), phone_region="CN")
        return self.store.event_log.append([event], [event.event_id])[0]

    def capture(self, email: str, **data: Any) -> UUID:
        result = self.post(
            {"type": "lead.captured", "data": {"email": email, "source": "website", **data}}
        )
        lead_id: UUID = result.lead_id
        return lead_id

    def handle(self, lead_id: UUID) -> WorkflowHandle[Any, Any]:
        return self.client.get_workflow_handle(workflow_id_for(str(lead_id)))

    async def state(self, lead_id: UUID) -> LeadState:
        state: LeadState = await self.handle(lead_id).query(LeadWorkflow.state)
        return state

    async def eventually(self, lead_id: UUID, check: Callable[[LeadState], bool]) -> LeadState:
        """The workflow's state once `check` holds (polls; fails after 30 s)."""
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            with contextlib.suppress(Exception):
                state = await self.state(lead_id)
                if check(state):
                    return state
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"lead {lead_id}: workflow never reached the expected state")
            await asyncio.sleep(0.1)


async def settle(client: Client, task_queue: str) -> None:
    """Wait until no workflow of this test has a workflow task in flight, so the histories
    replayed afterwards are complete (the replayer cannot run a missing local activity)."""
    deadline = asyncio.get_running_loop().time() + 20
    while asyncio.get_running_loop().time() < deadline:
        busy = [
            wf.id
            async for wf in client.list_workflows(f"TaskQueue = '{task_queue}'")
            if (
                await client.get_workflow_handle(wf.id, run_id=wf.run_id).describe()
            ).raw_description.HasField("pending_workflow_task")
        ]
        if not busy:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"workflows still busy after 20 s: {busy}")


async def replay_histories(client: Client, task_queue: str) -> int:
    """Replay every workflow run this test made; raises on any non-determinism."""
    histories = [
        history
        async for history in client.list_workflows(f"TaskQueue = '{task_queue}'").map_histories()
        # A run that continued-as-new an instant ago has no workflow task yet: nothing to
        # replay, and the replayer waits forever on such a history.
        if any(e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED for e in history.events)
    ]
    # One at a time: replay_workflows() over the live listing hung here once (temporalio 1.35).
    replayer = Replayer(workflows=[LeadWorkflow])
    for history in histories:
        await asyncio.wait_for(replayer.replay_workflow(history), 20)
    save_to = os.environ.get("LEADFLOW_SAVE_HISTORIES")
    if save_to:
        # How tests/histories/ is refreshed: see README, "Changing LeadWorkflow safely".
        for index, history in enumerate(histories):
            (Path(save_to) / f"{history.workflow_id}-{index}.json").write_text(history.to_json())
    return len(histories)


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Pipeline]:
    store = open_store(settings)
    client = await Client.connect(settings.temporal_target)
    workflows = LeadWorkflows(client, settings.task_queue, settings.workflow_history_limit)
    dispatcher = Dispatcher(store.event_log, store.positions, workflows.deliver, poll_seconds=0.05)
    stop = asyncio.Event()
    try:
        with ThreadPoolExecutor(max_workers=4) as executor:
            async with lead_worker(client, store, settings.task_queue, executor):
                following = asyncio.create_task(dispatcher.run_forever(stop))
                yield Pipeline(store, client, settings)
                stop.set()
                await following
                await settle(client, settings.task_queue)
        await replay_histories(client, settings.task_queue)
    finally:
        store.close()


@pytest.fixture
def temporal_settings(settings: Settings, temporal_address: str) -> Settings:
    return settings.model_copy(update={"temporal_address": temporal_address})


async def test_each_lead_gets_its_workflow_with_search_attributes(
    temporal_settings: Settings,
) -> None:
    async with running(temporal_settings) as pipeline:
        east = pipeline.capture("ann@x.io", region="east", intent="low")
        west = pipeline.capture("bob@x.io", region="west")
        pipeline.post({"type": "lead.qualified", "lead_id": str(east), "data": {"stage": "MQL"}})

        state = await pipeline.eventually(east, lambda s: s.stage == "MQL")
        # No ruleset is active in this store: nobody is assigned, so the lead is in the pool.
        assert (state.email, state.region, state.intent) == ("ann@x.io", "east", "low")
        assert (state.in_pool, state.last_sequence) == (True, 3)
        assert (await pipeline.eventually(west, lambda s: s.touch_count == 1)).region == "west"

        description = await pipeline.handle(east).describe()
        attributes = description.typed_search_attributes
        assert attributes.get(SearchAttributeKey.for_keyword("LeadStage")) == "MQL"
        assert attributes.get(SearchAttributeKey.for_keyword("LeadSource")) == "website"
        assert attributes.get(SearchAttributeKey.for_keyword("LeadRegion")) == "east"
        assert attributes.get(SearchAttributeKey.for_bool("LeadInPool")) is True

        # An operator's Temporal UI query: "leads from east".
        query = f"TaskQueue = '{temporal_settings.task_queue}' AND LeadRegion = 'east'"
        deadline = asyncio.get_running_loop().time() + 15
        found: list[str] = []
        while asyncio.get_running_loop().time() < deadline:
            found = [wf.id async for wf in pipeline.client.list_workflows(query)]
            if found:
                break
            await asyncio.sleep(0.2)
        assert found == [workflow_id_for(str(east))]


async def test_redelivered_events_are_dropped_by_sequence(temporal_settings: Settings) -> None:
    async with running(temporal_settings) as pipeline:
        lead = pipeline.capture("ann@x.io")
        pipeline.post({"type": "lead.followed_up", "lead_id": str(lead), "data": {"rep_id": "r"}})
        before = await pipeline.eventually(lead, lambda s: s.followups_count == 1)
        # Simulate a dispatcher crash before it saved its position: everything again.
        pipeline.store.positions.set(FOLLOWER_NAME, 0)
        pipeline.post({"type": "lead.followed_up", "lead_id": str(lead), "data": {"rep_id": "r"}})
        after = await pipeline.eventually(lead, lambda s: s.followups_count == 2)
        assert (after.touch_count, after.last_sequence) == (before.touch_count, 4)
        events = pipeline.store.event_log.lead_events(lead)
        # Decided once, although the capture was delivered twice.
        assert Counter(e.type for e in events) == {
            "lead.captured": 1,
            "lead.returned_to_pool": 1,
            "lead.followed_up": 2,
        }


async def test_long_histories_continue_as_new_without_losing_events(
    temporal_settings: Settings,
) -> None:
    settings = temporal_settings.model_copy(update={"workflow_history_limit": 15})
    async with running(settings) as pipeline:
        lead = pipeline.capture("ann@x.io")
        first_run = await pipeline.eventually(lead, lambda s: s.in_pool)
        assert first_run.last_sequence == 2
        run_before = (await pipeline.handle(lead).describe()).run_id
        for _ in range(12):
            pipeline.post(
                {"type": "lead.followed_up", "lead_id": str(lead), "data": {"rep_id": "r"}}
            )
            await asyncio.sleep(0.05)  # separate workflow tasks, so the history really grows
        state = await pipeline.eventually(lead, lambda s: s.followups_count == 12)
        assert state.last_sequence == 14
        run_after = (await pipeline.handle(lead).describe()).run_id
        assert run_after != run_before
