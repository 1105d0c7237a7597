"""The production worker's workflow runner (`workflows.lead` passed through the sandbox)
runs leads like the full sandbox does, and the histories it writes replay under the full
sandbox (the pipeline replays every history when it stops)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from temporalio.api.enums.v1 import EventType, TaskQueueKind

from leadflow.processes import production_workflow_runner
from leadflow.settings import Settings

if TYPE_CHECKING:
    from conftest import RunPipeline


async def test_leads_are_decided_signalled_and_queried_with_the_production_runner(
    temporal_settings: Settings, run_pipeline: RunPipeline
) -> None:
    async with run_pipeline(temporal_settings, production_workflow_runner()) as pipeline:
        pipeline.store.rulebook.install_defaults(datetime.now(UTC))
        east = pipeline.capture("ann@x.io", region="east", intent="high")
        north = pipeline.capture("bob@x.io", source="referral", region="north")
        pipeline.post({"type": "lead.qualified", "lead_id": str(east), "data": {"stage": "MQL"}})

        state = await pipeline.eventually(east, lambda s: s.stage == "MQL")
        assert (state.owner, state.last_sequence) == ("rep-east-1", 4)
        assert list(state.open_tasks) == ["first_follow_up"]
        # Its timers are running in the workflow (a query: the state crosses the converter).
        timers = await pipeline.handle(east).query("timers")
        assert "first_follow_up" in timers

        other = await pipeline.eventually(north, lambda s: s.owner is not None or s.in_pool)
        # (Temporal holds the email's domain, never the email: docs/erasure.md.)
        assert (other.email, other.email_domain, other.region) == (None, "x.io", "north")


async def test_with_no_sticky_cache_every_task_replays_and_decides_nothing_twice(
    temporal_settings: Settings, run_pipeline: RunPipeline
) -> None:
    """LEADFLOW_MAX_CACHED_WORKFLOWS=0: the worker keeps no lead in memory between tasks,
    so each of the lead's workflow tasks goes to the shared queue and replays its history
    first (what an open lead evicted from the cache does at its next event)."""
    settings = temporal_settings.model_copy(update={"max_cached_workflows": 0})
    async with run_pipeline(settings, production_workflow_runner()) as pipeline:
        pipeline.store.rulebook.install_defaults(datetime.now(UTC))
        east = pipeline.capture("cai@x.io", region="east", intent="high")
        await pipeline.eventually(east, lambda s: s.owner is not None)
        # Decided in a task of its own: the run's second task, where a cached run would
        # have been sent to the worker's sticky queue.
        pipeline.post({"type": "lead.qualified", "lead_id": str(east), "data": {"stage": "MQL"}})

        state = await pipeline.eventually(east, lambda s: s.stage == "MQL")
        assert (state.owner, state.last_sequence) == ("rep-east-1", 4)
        types = [event.type for event in pipeline.store.event_log.lead_events(east)]
        assert types.count("lead.assigned") == 1, types

        history = await pipeline.handle(east).fetch_history()
        scheduled = [
            event.workflow_task_scheduled_event_attributes.task_queue
            for event in history.events
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED
        ]
        assert len(scheduled) > 1, [e.event_type for e in history.events]
        assert {queue.kind for queue in scheduled} == {TaskQueueKind.TASK_QUEUE_KIND_NORMAL}
