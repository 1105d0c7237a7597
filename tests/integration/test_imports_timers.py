"""Timers for imported history, on a real Temporal dev server with a ruleset in seconds
(docs/imports.md, "Timers"): a row whose timers would already be past due counted from
its own `occurred_at` is history, and they are not started; a recent row's timers run
from when leadflow received it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from test_imports import lead_of
from test_timers import install, stream, wait_for

from intake.importer import run_import
from intake.mapping import parse_mapping
from leadflow.settings import Settings
from workflows.lead import LeadWorkflow

if TYPE_CHECKING:
    from conftest import RunPipeline


async def test_imported_history_starts_no_timers_and_a_recent_row_does(
    temporal_settings: Settings, run_pipeline: RunPipeline
) -> None:
    mapping = parse_mapping(
        {
            "columns": {"email": "email"},
            "constants": {"source": "import"},
            "occurred_at": {"column": "created"},
        }
    )
    async with run_pipeline(temporal_settings) as pipeline:
        install(pipeline)
        now = datetime.now(UTC)
        rows = [
            ("old@example.com", now - timedelta(hours=1)),  # its 2 s and 4 s timers are past
            ("new@example.com", now),
        ]
        content = "email,created\n" + "".join(f"{e},{t.isoformat()}\n" for e, t in rows)
        report = run_import(content.encode(), mapping, pipeline.store.append, phone_region="CN")
        assert report.imported == 2
        old, new = (lead_of(pipeline.store, email) for email, _ in rows)
        await wait_for(pipeline, new, ("lead.returned_to_pool", "no_follow_up"))
        assert stream(pipeline, new) == [
            ("lead.captured", None),
            ("lead.assigned", None),
            ("lead.timer_fired", "first_follow_up"),
            ("lead.tagged", "reminded"),
            ("lead.timer_fired", "reclaim"),
            ("lead.returned_to_pool", "no_follow_up"),
        ]
        # The old row was assigned as any lead is, and nothing waits on it.
        await pipeline.eventually(old, lambda s: s.owner == "rep-east-1")
        assert await pipeline.handle(old).query(LeadWorkflow.timers) == {}
        assert stream(pipeline, old) == [("lead.captured", None), ("lead.assigned", None)]
