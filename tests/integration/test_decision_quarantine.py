"""A lead whose decisions keep failing is parked, alone, until an operator acts (real
Temporal dev server, SQLite and PostgreSQL).

The failing lead's stream holds an event written past today's checks, as an older
release could have written it (a stage no lead can have): every decision for that lead
fails, for good, while every other lead is decided as usual.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

from delivery.temporal import LeadWorkflows, act_on_quarantine_item
from domain.lead import Lead
from leadflow.settings import Settings
from store.quarantine import DECISION, PARKED, RESOLVED, SKIPPED
from store.rulebook import default_ruleset_document
from workflows.lead import LeadWorkflow

if TYPE_CHECKING:
    from conftest import Pipeline, RunPipeline

PARK_SECONDS = 90  # five attempts with Temporal's backoff (1 + 2 + 4 + 8 s), and a margin


def write_unreadable_event(pipeline: Pipeline, lead_id: UUID) -> None:
    """Append a `lead.qualified` to a stage that does not exist, straight to the store."""
    log = pipeline.store.event_log
    version = log.lead_events(lead_id)[-1].sequence
    now = datetime.now(UTC)
    event = Lead.Qualified(
        originator_id=lead_id,
        originator_version=version + 1,
        timestamp=now,
        event_id=str(uuid4()),
        occurred_at=now,
        data={"stage": "XYZ"},
        rule_id=None,
        ruleset_version=None,
        caused_by=None,
    )
    log.recorder.insert_events([log.mapper.to_stored_event(event)])


async def test_a_lead_whose_decisions_fail_is_parked_while_others_are_decided(
    temporal_settings: Settings, run_pipeline: RunPipeline
) -> None:
    async with run_pipeline(temporal_settings) as pipeline:
        pipeline.store.rulebook.install_defaults(datetime.now(UTC))
        broken = pipeline.capture("broken@example.com", region="east")
        await pipeline.eventually(broken, lambda s: s.owner is not None)
        write_unreadable_event(pipeline, broken)

        async def parked_item() -> str | None:
            found: str | None = await pipeline.handle(broken).query(LeadWorkflow.parked)
            return found

        deadline = datetime.now(UTC).timestamp() + PARK_SECONDS
        while await parked_item() is None:
            assert datetime.now(UTC).timestamp() < deadline, "the lead was never parked"
            # Others are decided meanwhile, one after the other.
            other = pipeline.capture(f"{uuid4().hex[:8]}@example.com", region="east")
            await pipeline.eventually(other, lambda s: s.owner is not None or s.in_pool)

        item_id = await parked_item()
        assert item_id is not None
        item = pipeline.store.quarantine.get(item_id)
        assert (item.stage, item.lead_id, item.event_type, item.status) == (
            DECISION,
            str(broken),
            "lead.qualified",
            PARKED,
        )
        assert item.attempts == 5
        assert "KeyError" in item.error and "XYZ" in item.error

        workflows = LeadWorkflows(pipeline.client, temporal_settings.task_queue, 2000)
        # Retried, it fails again (the event is what it is) and is parked again.
        await act_on_quarantine_item(pipeline.store.quarantine, workflows, item_id, "retry")
        await pipeline.until(
            lambda: pipeline.store.quarantine.get(item_id).attempts == 10,
            "parked again after five more attempts",
            seconds=PARK_SECONDS,
        )
        assert pipeline.store.quarantine.get(item_id).status == PARKED

        # Skipped, the workflow goes on without that trigger's decisions.
        await act_on_quarantine_item(pipeline.store.quarantine, workflows, item_id, "skip")
        await pipeline.until(
            lambda: pipeline.store.quarantine.get(item_id).status == SKIPPED,
            "the item closed as skipped",
        )
        assert await parked_item() is None


def heavy_ruleset() -> dict[str, Any]:
    """The default ruleset with twenty rules in front whose pattern RE2 needs ~0.1 s of CPU
    to try on a 10,000-character note (measured on this VM; its DFA gives up on the
    counted repetition): ~2 s for a lead that carries such a note, eight times the test's
    budget, so no faster core decides it in time; a lead without one is quick."""
    document = default_ruleset_document()
    slow = [
        {
            "id": f"slow-{index}",
            "when": ["lead.captured"],
            "priority": 1000,
            "conditions": {
                "all": [
                    {"name": "attributes.notes", "operator": "matches_regex", "value": ".{1,1000}x"}
                ]
            },
            "actions": [{"name": "add_tag", "params": {"tag": "noted"}}],
        }
        for index in range(20)
    ]
    document["rules"] = slow + document["rules"]
    return document


async def test_a_decision_over_its_budget_is_parked_at_once_and_retried_after_a_fix(
    temporal_settings: Settings, run_pipeline: RunPipeline
) -> None:
    settings = temporal_settings.model_copy(update={"decision_time_limit_seconds": 0.25})
    async with run_pipeline(settings) as pipeline:
        rulebook = pipeline.store.rulebook
        rulebook.install_defaults(datetime.now(UTC))
        light = rulebook.active_version()
        assert light is not None
        heavy = rulebook.publish(heavy_ruleset(), "test", datetime.now(UTC))
        rulebook.activate(heavy, "test", datetime.now(UTC))

        slow = pipeline.capture(
            "slow@example.com", region="east", attributes={"notes": "a" * 10_000}
        )
        quick = pipeline.capture("quick@example.com", region="east")
        assert (await pipeline.eventually(quick, lambda s: s.owner is not None)).owner

        await pipeline.until(
            lambda: bool(pipeline.store.quarantine.find(lead_id=str(slow))), "the slow lead parked"
        )
        [item] = pipeline.store.quarantine.find(lead_id=str(slow))
        assert (item.stage, item.status, item.attempts) == (DECISION, PARKED, 1)
        assert "budget" in item.error

        # The rules are fixed (the earlier version again); a retry decides the lead.
        rulebook.activate(light, "test", datetime.now(UTC))
        workflows = LeadWorkflows(pipeline.client, settings.task_queue, 2000)
        await act_on_quarantine_item(pipeline.store.quarantine, workflows, item.item_id, "retry")
        state = await pipeline.eventually(slow, lambda s: s.owner is not None)
        assert state.owner == "rep-east-1"
        await pipeline.until(
            lambda: pipeline.store.quarantine.get(item.item_id).status == RESOLVED,
            "the item resolved",
        )
