"""Ruleset trials through real workflows (Temporal dev server, the real worker; SQLite and
PostgreSQL): a shadow version records what it would decide and changes no lead; a canary
decides its share of new leads, every decision naming the version that made it, and the
replay's `verify` agrees with the log for canary leads too (docs/trials.md)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy import select

from domain.trials import in_canary
from leadflow.settings import Settings
from replay.diff import verify
from store.rulebook import default_ruleset_document
from store.shadow_decisions import rows_for, shadow_decisions, trial_report

if TYPE_CHECKING:
    from conftest import Pipeline, RunPipeline


def east_to(rep: str) -> dict[str, Any]:
    ruleset = copy.deepcopy(default_ruleset_document())
    [rule] = [r for r in ruleset["rules"] if r["id"] == "east-website"]
    rule["actions"][0]["params"]["rep"] = rep
    return ruleset


def decided_versions(pipeline: Pipeline, lead: UUID) -> set[int | None]:
    return {e.ruleset_version for e in pipeline.store.event_log.lead_events(lead) if e.caused_by}


async def placed(pipeline: Pipeline, lead: UUID) -> str | None:
    state = await pipeline.eventually(lead, lambda s: s.owner is not None or s.in_pool)
    return state.owner


def row_count(pipeline: Pipeline) -> int:
    with pipeline.store.engine.connect() as conn:
        return len(conn.execute(select(shadow_decisions.c.cause_id)).all())


async def test_a_shadow_version_is_measured_and_changes_no_lead(
    temporal_settings: Settings, run_pipeline: RunPipeline
) -> None:
    async with run_pipeline(temporal_settings) as pipeline:
        rulebook = pipeline.store.rulebook
        now = datetime.now(UTC)
        rulebook.install_defaults(now)
        version = rulebook.publish(east_to("rep-east-2"), "test", now)
        rulebook.start_shadow(version, "test", now)

        east = [pipeline.capture(f"s{i}@x.io", region="east") for i in range(3)]
        west = pipeline.capture("sw@x.io", region="west")
        for lead in east:
            assert await placed(pipeline, lead) == "rep-east-1"
            assert decided_versions(pipeline, lead) == {1}
        assert await placed(pipeline, west) in {"rep-west-1", "rep-west-2"}
        # The rows are written with the decisions: there as soon as the decisions are.
        assert row_count(pipeline) == 4

        with pipeline.store.engine.connect() as conn:
            report = trial_report(rows_for(conn, version), version)
        assert (report["triggers_compared"], report["disagreeing"]) == (4, 3)
        [move] = report["assignment_moves"]
        assert (move["from_owner"], move["to_owner"], move["count"]) == (
            "rep-east-1",
            "rep-east-2",
            3,
        )
        # Nothing of the shadow is on the log: the replay of it matches the log.
        assert verify(pipeline.store.event_log, rulebook, rulebook.directory()) == []


async def test_a_canary_decides_its_share_and_verify_agrees(
    temporal_settings: Settings, run_pipeline: RunPipeline
) -> None:
    async with run_pipeline(temporal_settings) as pipeline:
        rulebook = pipeline.store.rulebook
        rulebook.install_defaults(datetime.now(UTC))
        version = rulebook.publish(east_to("rep-east-2"), "test", datetime.now(UTC))
        canary = rulebook.start_canary(version, 0.5, "test", datetime.now(UTC))

        leads = [pipeline.capture(f"c{i}@x.io", region="east") for i in range(20)]
        inside = []
        for lead in leads:
            owner = await placed(pipeline, lead)
            created_at = pipeline.store.event_log.lead_state(lead).created_at
            if in_canary(str(lead), created_at, canary):
                inside.append(lead)
                assert owner == "rep-east-2"
                assert decided_versions(pipeline, lead) == {version}
            else:
                assert owner == "rep-east-1"
                assert decided_versions(pipeline, lead) == {1}
        assert 0 < len(inside) < len(leads)
        assert row_count(pipeline) == len(inside)

        # Stopped: the next lead is the active version's whatever its point.
        rulebook.stop_trial(version, "test", datetime.now(UTC))
        later = [pipeline.capture(f"l{i}@x.io", region="east") for i in range(4)]
        for lead in later:
            assert await placed(pipeline, lead) == "rep-east-1"
            assert decided_versions(pipeline, lead) == {1}
        # A canary lead's next trigger, after the stop, is the active version's.
        first = inside[0]
        pipeline.post(
            {"type": "lead.followed_up", "lead_id": str(first), "data": {"rep_id": "rep-east-2"}}
        )
        await pipeline.eventually(first, lambda s: s.followups_count == 1)

        # The replay decides each lead under the version it ran under: no mismatch.
        assert verify(pipeline.store.event_log, rulebook, rulebook.directory()) == []

        # Promote: a new canary, then activated in one action.
        rulebook.start_canary(version, 0.5, "test", datetime.now(UTC))
        rulebook.promote(version, "test", datetime.now(UTC))
        assert rulebook.active_version() == version and rulebook.trials().running() == []
        promoted = pipeline.capture("p@x.io", region="east")
        assert await placed(pipeline, promoted) == "rep-east-2"
        assert verify(pipeline.store.event_log, rulebook, rulebook.directory()) == []


async def test_canary_leads_timers_fire_under_the_canary(
    temporal_settings: Settings, run_pipeline: RunPipeline
) -> None:
    async with run_pipeline(temporal_settings) as pipeline:
        rulebook = pipeline.store.rulebook
        rulebook.install_defaults(datetime.now(UTC))
        quick = east_to("rep-east-2")
        for timer in quick["timers"]:
            if timer["id"] == "first_follow_up":
                timer["after"] = "PT1S"
        version = rulebook.publish(quick, "test", datetime.now(UTC))
        canary = rulebook.start_canary(version, 0.5, "test", datetime.now(UTC))

        leads = [pipeline.capture(f"t{i}@x.io", region="east") for i in range(8)]
        for lead in leads:
            await placed(pipeline, lead)
        inside = [
            lead
            for lead in leads
            if in_canary(str(lead), pipeline.store.event_log.lead_state(lead).created_at, canary)
        ]
        assert inside and len(inside) < len(leads)

        def fired(lead: UUID) -> list[Any]:
            events = pipeline.store.event_log.lead_events(lead)
            return [e for e in events if e.type == "lead.timer_fired"]

        await pipeline.until(lambda: all(fired(lead) for lead in inside), "canary timers fired")
        for lead in inside:
            # The timer and the rule it triggered (the reminder) name the canary version.
            assert decided_versions(pipeline, lead) == {version}
        for lead in set(leads) - set(inside):
            assert not fired(lead)  # the active version's timer is 24 h
        # Everything decided matches (`verify` leaves the reminders' deliveries out).
        mismatches = verify(pipeline.store.event_log, rulebook, rulebook.directory())
        assert mismatches == [], [
            (m.recorded[m.position :], m.replayed[m.position :]) for m in mismatches
        ]
