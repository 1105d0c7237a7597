"""Log → dispatcher → LeadWorkflow on a real Temporal dev server, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from temporalio.client import WorkflowExecutionStatus
from temporalio.common import SearchAttributeKey

from delivery.dispatcher import FOLLOWER_NAME
from leadflow.settings import Settings
from workflows.lead import LeadWorkflow, workflow_id_for

if TYPE_CHECKING:
    from conftest import RunPipeline


async def test_each_lead_gets_its_workflow_with_search_attributes(
    temporal_settings: Settings,
    run_pipeline: RunPipeline,
) -> None:
    async with run_pipeline(temporal_settings) as pipeline:
        east = pipeline.capture("ann@x.io", region="east", intent="low")
        west = pipeline.capture("bob@x.io", region="west")
        pipeline.post({"type": "lead.qualified", "lead_id": str(east), "data": {"stage": "MQL"}})

        state = await pipeline.eventually(east, lambda s: s.stage == "MQL")
        # No ruleset is active in this store: nobody is assigned, so the lead is in the pool.
        # Temporal holds no personal data (docs/erasure.md): the email's domain, not the email.
        assert (state.email, state.email_domain) == (None, "x.io")
        assert (state.region, state.intent) == ("east", "low")
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


async def test_redelivered_events_are_dropped_by_sequence(
    temporal_settings: Settings, run_pipeline: RunPipeline
) -> None:
    async with run_pipeline(temporal_settings) as pipeline:
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
    run_pipeline: RunPipeline,
) -> None:
    settings = temporal_settings.model_copy(update={"workflow_history_limit": 15})
    async with run_pipeline(settings) as pipeline:
        # The default ruleset assigns the lead and starts its timers: the run stays open.
        pipeline.store.rulebook.install_defaults(datetime.now(UTC))
        lead = pipeline.capture("ann@x.io", region="east")
        first = await pipeline.eventually(lead, lambda s: s.owner == "rep-east-1")
        run_before = (await pipeline.handle(lead).describe()).run_id
        for _ in range(12):
            pipeline.post(
                {"type": "lead.followed_up", "lead_id": str(lead), "data": {"rep_id": "r"}}
            )
            await asyncio.sleep(0.05)  # separate workflow tasks, so the history really grows
        state = await pipeline.eventually(lead, lambda s: s.followups_count == 12)
        assert state.last_sequence == first.last_sequence + 12
        before = await pipeline.client.get_workflow_handle(
            workflow_id_for(str(lead)), run_id=run_before
        ).describe()
        assert before.status == WorkflowExecutionStatus.CONTINUED_AS_NEW
        # The timers crossed over to the new run.
        assert set(await pipeline.handle(lead).query(LeadWorkflow.timers)) == {"idle"}


async def test_a_resting_lead_ends_its_run_and_the_next_event_starts_another(
    temporal_settings: Settings,
    run_pipeline: RunPipeline,
) -> None:
    async with run_pipeline(temporal_settings) as pipeline:
        lead = pipeline.capture("ann@x.io")  # no ruleset: nobody takes it, it rests in the pool
        pipeline.post({"type": "lead.qualified", "lead_id": str(lead), "data": {"stage": "SQL"}})
        await pipeline.eventually(lead, lambda s: s.stage == "SQL")
        first = await pipeline.handle(lead).describe()
        deadline = asyncio.get_running_loop().time() + 30
        while first.status != WorkflowExecutionStatus.COMPLETED:
            assert asyncio.get_running_loop().time() < deadline, "the run never completed"
            await asyncio.sleep(0.1)
            first = await pipeline.handle(lead).describe()

        pipeline.post({"type": "lead.won", "lead_id": str(lead), "data": {"amount": "900"}})
        state = await pipeline.eventually(lead, lambda s: s.stage == "won")
        second = await pipeline.handle(lead).describe()
        assert second.run_id != first.run_id
        # The new run got the whole lead back from the log, not just the last event.
        # (The email itself never reaches Temporal: its domain does.)
        assert (state.email_domain, state.in_pool, state.touch_count) == ("x.io", True, 1)
