"""A lead's deadlines (`lead_deadlines`, issue #19) on a real Temporal dev server with a
ruleset in seconds, on SQLite and PostgreSQL: they appear when the lead is assigned, equal
the workflow's own `timers` query, go when a follow-up cancels them and when they fire, and
a replayed decision leaves one set of rows."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy import func, select

from domain.timers import RunningTimer
from leadflow.settings import Settings
from store import deadlines
from store.deadlines import deadlines_of, lead_deadlines, next_deadlines
from workflows.lead import LeadWorkflow

if TYPE_CHECKING:
    from conftest import Pipeline, RunPipeline

NOW = datetime.now(UTC)

RULESET: dict[str, Any] = {
    "name": "deadlines in seconds",
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
            "cancel_on": ["lead.returned_to_pool"],
            "after": "PT1H",
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
            "actions": [
                {"name": "notify", "params": {"to": "owner", "template": "follow-up-overdue"}}
            ],
        },
        {
            "id": "reclaim",
            "when": ["timer.reclaim"],
            "conditions": {"all": []},
            "actions": [{"name": "return_to_pool", "params": {"reason": "no_follow_up_48h"}}],
        },
    ],
}


def install(pipeline: Pipeline) -> None:
    rulebook = pipeline.store.rulebook
    rulebook.install_defaults(NOW)
    rulebook.activate(rulebook.publish(RULESET, "test", NOW), "test", NOW)


def stored(pipeline: Pipeline, lead: UUID) -> dict[str, tuple[datetime, str, int | None]]:
    with pipeline.store.engine.connect() as conn:
        rows = deadlines_of(conn, str(lead))
    return {d.timer.timer_id: (d.due, d.timer.started_by, d.timer.step) for d in rows}


async def queried(pipeline: Pipeline, lead: UUID) -> dict[str, tuple[datetime, str, int | None]]:
    timers: dict[str, RunningTimer] = await pipeline.handle(lead).query(LeadWorkflow.timers)
    return {k: (t.due, t.started_by, t.step) for k, t in timers.items()}


async def until_same(pipeline: Pipeline, lead: UUID, names: set[str]) -> None:
    """Until the table holds `names` and equals the workflow's query."""
    for _ in range(300):
        rows = stored(pipeline, lead)
        if set(rows) == names and rows == await queried(pipeline, lead):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"deadlines {stored(pipeline, lead)} never became {names} as queried")


async def test_deadlines_follow_the_workflow_until_they_fire(
    temporal_settings: Settings, run_pipeline: RunPipeline
) -> None:
    async with run_pipeline(temporal_settings) as pipeline:
        install(pipeline)
        lead = pipeline.capture("dora@x.io")
        await until_same(pipeline, lead, {"first_follow_up", "reclaim"})
        with pipeline.store.engine.connect() as conn:
            [earliest] = next_deadlines(conn, [str(lead)]).values()
        assert earliest.timer.timer_id == "first_follow_up"
        await until_same(pipeline, lead, {"reclaim"})  # the reminder fired
        await pipeline.eventually(lead, lambda s: s.in_pool)
        await until_same(pipeline, lead, set())  # the reclaim fired


async def test_a_follow_up_cancels_them_and_a_replayed_decision_writes_one_set(
    temporal_settings: Settings, run_pipeline: RunPipeline
) -> None:
    async with run_pipeline(temporal_settings) as pipeline:
        install(pipeline)
        lead = pipeline.capture("eve@x.io")
        await until_same(pipeline, lead, {"first_follow_up", "reclaim"})
        running: dict[str, RunningTimer] = await pipeline.handle(lead).query(LeadWorkflow.timers)
        followed = pipeline.post(
            {"type": "lead.followed_up", "lead_id": str(lead), "data": {"rep_id": "rep-east-1"}}
        )
        await until_same(pipeline, lead, {"idle"})
        # The activity for the follow-up again, with the workflow's input (a retry): the
        # same one set of rows.
        store = pipeline.store
        before = stored(pipeline, lead)
        [event] = [e for e in store.event_log.lead_events(lead) if e.event_id == followed.event_id]
        store.event_log.decide(
            lead,
            "lead.followed_up",
            followed.event_id,
            datetime.fromisoformat(event.recorded_at),
            store.rulebook.active(),
            store.rulebook.directory(),
            running,
        )
        with store.engine.connect() as conn:
            count = conn.execute(
                select(func.count())
                .select_from(lead_deadlines)
                .where(lead_deadlines.c.lead_id == str(lead))
            ).scalar_one()
            # A set decided at an earlier point of the stream never replaces a later one.
            assert not deadlines.replace(conn, str(lead), {}, sequence=1, ruleset_version=None)
        assert count == 1 and stored(pipeline, lead) == before
