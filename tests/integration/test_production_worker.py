"""The production worker's workflow runner (`workflows.lead` passed through the sandbox)
runs leads like the full sandbox does, and the histories it writes replay under the full
sandbox (the pipeline replays every history when it stops)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

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
        assert other.email == "bob@x.io"
