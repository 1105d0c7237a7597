"""The in-process pipeline for integration tests on a real Temporal dev server: the event
log, the dispatcher and a worker running `LeadWorkflow` with its activities.

Every workflow history a test produces is replayed with `temporalio.worker.Replayer` when
the pipeline stops, so a non-deterministic change to the workflow fails CI.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Replayer

from domain.events import parse_event
from domain.state import LeadState
from leadflow.bootstrap import Store, open_store
from leadflow.processes import lead_worker
from leadflow.settings import Settings
from leadflow.temporal import LeadWorkflows
from projections.dispatcher import Dispatcher
from workflows.lead import LeadWorkflow, workflow_id_for


@dataclasses.dataclass
class Pipeline:
    store: Store
    client: Client
    settings: Settings

    def post(self, body: dict[str, Any]) -> Any:
        event = parse_event(body, now=datetime.now(UTC), phone_region="CN")
        return self.store.append([event], [event.event_id])[0]

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


RunPipeline = Callable[[Settings], contextlib.AbstractAsyncContextManager[Pipeline]]


@pytest.fixture
def run_pipeline() -> RunPipeline:
    """`async with run_pipeline(settings) as pipeline:` runs log → dispatcher → workflows."""
    return running
