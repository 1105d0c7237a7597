"""Rulesets route real leads through real workflows (Temporal dev server, SQLite and
PostgreSQL): the rule and version behind each decision are on the lead's stream."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import pytest

from domain.errors import RepAtCapacity
from leadflow.settings import Settings
from store.ingest import ItemRejected
from store.rulebook import default_directory_document, default_ruleset_document

if TYPE_CHECKING:
    from conftest import Pipeline, RunPipeline

NOW = datetime.now(UTC)


def decided(pipeline: Pipeline, lead: UUID) -> list[tuple[str, Any, Any, Any]]:
    """(type, data, rule_id, ruleset_version) of every decided event of the lead."""
    return [
        (e.type, e.data, e.rule_id, e.ruleset_version)
        for e in pipeline.store.event_log.lead_events(lead)
        if e.caused_by is not None
    ]


async def assigned_to(pipeline: Pipeline, lead: UUID) -> str | None:
    state = await pipeline.eventually(lead, lambda s: s.owner is not None or s.in_pool)
    return state.owner


async def test_east_website_lead_goes_to_the_named_rep_with_rule_and_version(
    temporal_settings: Settings, run_pipeline: RunPipeline
) -> None:
    async with run_pipeline(temporal_settings) as pipeline:
        pipeline.store.rulebook.install_defaults(NOW)
        lead = pipeline.capture("ann@x.io", region="east", intent="high")
        assert await assigned_to(pipeline, lead) == "rep-east-1"
        [assigned, task] = decided(pipeline, lead)
        assert assigned[0] == "lead.assigned"
        assert assigned[1] == {"owner": "rep-east-1", "team": "east", "strategy": "rep"}
        assert assigned[2:] == ("east-website", 1)
        assert task[0] == "lead.task_created" and task[1]["task"] == "first_follow_up"
        events = pipeline.store.event_log.lead_events(lead)
        assert all(e.caused_by == events[0].event_id for e in events[1:])

        # The workflow's search attributes follow: an operator can find the rep's leads.
        state = await pipeline.state(lead)
        assert (state.owner, state.team, state.in_pool) == ("rep-east-1", "east", False)
        assert list(state.open_tasks) == ["first_follow_up"]
        # The lead's page says why it is where it is.
        current = pipeline.store.event_log.lead_state(lead)
        assert (current.placed_by_rule, current.placed_by_ruleset_version) == ("east-website", 1)


async def test_a_new_version_changes_the_next_lead_and_rollback_restores_it(
    temporal_settings: Settings, run_pipeline: RunPipeline
) -> None:
    async with run_pipeline(temporal_settings) as pipeline:
        rulebook = pipeline.store.rulebook
        rulebook.install_defaults(NOW)
        candidate = copy.deepcopy(default_ruleset_document())
        [rule] = [r for r in candidate["rules"] if r["id"] == "east-website"]
        rule["actions"][0]["params"]["rep"] = "rep-east-2"
        version = rulebook.publish(candidate, "test", NOW)
        rulebook.activate(version, "test", NOW)
        second = pipeline.capture("bob@x.io", region="east")
        assert await assigned_to(pipeline, second) == "rep-east-2"
        assert decided(pipeline, second)[0][2:] == ("east-website", 2)

        rulebook.activate(1, "test", NOW)
        third = pipeline.capture("cy@x.io", region="east")
        assert await assigned_to(pipeline, third) == "rep-east-1"
        assert decided(pipeline, third)[0][2:] == ("east-website", 1)


async def test_round_robin_capacity_and_the_pool(
    temporal_settings: Settings, run_pipeline: RunPipeline
) -> None:
    async with run_pipeline(temporal_settings) as pipeline:
        rulebook = pipeline.store.rulebook
        rulebook.install_defaults(NOW)
        directory = default_directory_document()
        for rep in directory["reps"]:
            if rep["id"] == "rep-west-2":
                rep["capacity"] = 1
        rulebook.replace_directory(directory, "test", NOW)

        owners = []
        for i in range(4):
            lead = pipeline.capture(f"w{i}@x.io", region="west")
            owners.append(await assigned_to(pipeline, lead))
        # rep-west-2 is full after one lead: the rotation skips them.
        assert owners == ["rep-west-1", "rep-west-2", "rep-west-1", "rep-west-1"]

        # Nobody with room: rep-west-1 is made inactive too, so the next lead goes to the pool.
        for rep in directory["reps"]:
            if rep["id"] == "rep-west-1":
                rep["active"] = False
        rulebook.replace_directory(directory, "test", NOW)
        pooled = pipeline.capture("w9@x.io", region="west")
        assert await assigned_to(pipeline, pooled) is None
        assert pipeline.store.event_log.lead_state(pooled).pool_reason == "team_unavailable"
        assert decided(pipeline, pooled)[0][:3] == (
            "lead.returned_to_pool",
            {"reason": "team_unavailable", "previous_owner": None},
            "west-team",
        )

        # A claim respects capacity: rep-west-2 still holds one lead.
        with pytest.raises(ItemRejected) as refused:
            pipeline.post(
                {"type": "lead.claimed", "lead_id": str(pooled), "data": {"rep_id": "rep-west-2"}}
            )
        assert isinstance(refused.value.cause, RepAtCapacity)
