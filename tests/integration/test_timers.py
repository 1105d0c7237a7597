"""Durable lead timers on a real Temporal dev server, with a ruleset whose durations are
seconds: a missed follow-up fires the reminder then the reclaim; a follow-up cancels
both and starts the idle timer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from leadflow.settings import Settings
from workflows.lead import LeadWorkflow

if TYPE_CHECKING:
    from conftest import Pipeline, RunPipeline

NOW = datetime.now(UTC)

SECONDS_RULESET: dict[str, Any] = {
    "name": "timers in seconds",
    "timers": [
        {
            "id": "first_follow_up",
            "start_on": ["lead.assigned", "lead.claimed"],
            "cancel_on": ["lead.followed_up", "lead.returned_to_pool"],
            "after": "PT2S",
        },
        {
            "id": "reclaim",
            "start_on": ["lead.assigned", "lead.claimed"],
            "cancel_on": ["lead.followed_up", "lead.returned_to_pool"],
            "after": "PT4S",
        },
        {
            "id": "idle",
            "start_on": ["lead.followed_up"],
            "restart_on": ["lead.followed_up"],
            "cancel_on": ["lead.returned_to_pool"],
            "after": "PT3S",
        },
    ],
    "rules": [
        {
            "id": "assign",
            "when": ["lead.captured"],
            "conditions": {"all": []},
            "actions": [{"name": "assign_to_rep", "params": {"rep": "rep-east-1"}}],
        },
        {
            "id": "remind",
            "when": ["timer.first_follow_up"],
            "conditions": {"all": []},
            "actions": [{"name": "add_tag", "params": {"tag": "reminded"}}],
        },
        {
            "id": "reclaim",
            "when": ["timer.reclaim"],
            "conditions": {"all": []},
            "actions": [{"name": "return_to_pool", "params": {"reason": "no_follow_up"}}],
        },
        {
            "id": "idle",
            "when": ["timer.idle"],
            "conditions": {"all": []},
            "actions": [{"name": "return_to_pool", "params": {"reason": "idle"}}],
        },
    ],
}


def stream(pipeline: Pipeline, lead: UUID) -> list[tuple[str, Any]]:
    return [
        (e.type, e.data.get("timer") or e.data.get("reason") or e.data.get("tag"))
        for e in pipeline.store.event_log.lead_events(lead)
    ]


async def wait_for(pipeline: Pipeline, lead: UUID, event: tuple[str, Any]) -> None:
    await pipeline.until(lambda: event in stream(pipeline, lead), str(event))


def install(pipeline: Pipeline) -> None:
    rulebook = pipeline.store.rulebook
    rulebook.install_defaults(NOW)
    rulebook.activate(rulebook.publish(SECONDS_RULESET, "test", NOW), "test", NOW)


async def test_a_missed_follow_up_is_reminded_then_reclaimed(
    temporal_settings: Settings, run_pipeline: RunPipeline
) -> None:
    async with run_pipeline(temporal_settings) as pipeline:
        install(pipeline)
        lead = pipeline.capture("ann@x.io")
        await wait_for(pipeline, lead, ("lead.returned_to_pool", "no_follow_up"))
        assert stream(pipeline, lead) == [
            ("lead.captured", None),
            ("lead.assigned", None),
            ("lead.timer_fired", "first_follow_up"),
            ("lead.tagged", "reminded"),
            ("lead.timer_fired", "reclaim"),
            ("lead.returned_to_pool", "no_follow_up"),
        ]
        fired = [
            e for e in pipeline.store.event_log.lead_events(lead) if e.type == "lead.timer_fired"
        ]
        assigned = pipeline.store.event_log.lead_events(lead)[1]
        # A fired timer answers the event that started it; its rule id is null.
        assert {(e.caused_by, e.rule_id) for e in fired} == {(assigned.event_id, None)}
        state = await pipeline.eventually(lead, lambda s: s.in_pool)
        assert state.owner is None and state.pool_reason == "no_follow_up"
        assert await pipeline.handle(lead).query(LeadWorkflow.timers) == {}


async def test_a_follow_up_cancels_both_and_starts_the_idle_timer(
    temporal_settings: Settings, run_pipeline: RunPipeline
) -> None:
    async with run_pipeline(temporal_settings) as pipeline:
        install(pipeline)
        lead = pipeline.capture("bob@x.io")
        await pipeline.eventually(lead, lambda s: s.owner == "rep-east-1")
        running = await pipeline.handle(lead).query(LeadWorkflow.timers)
        assert set(running) == {"first_follow_up", "reclaim"}
        pipeline.post(
            {"type": "lead.followed_up", "lead_id": str(lead), "data": {"rep_id": "rep-east-1"}}
        )
        await wait_for(pipeline, lead, ("lead.returned_to_pool", "idle"))
        assert stream(pipeline, lead) == [
            ("lead.captured", None),
            ("lead.assigned", None),
            ("lead.followed_up", None),
            ("lead.timer_fired", "idle"),
            ("lead.returned_to_pool", "idle"),
        ]
