"""A decision cancelled while it runs finishes what it started, on a real SQLite store.

Temporal cancels a worker's local activities when their workflow task times out (e.g.
while the server restarts under load). temporalio's default is to raise the cancellation
inside the activity's thread at whatever instruction it is running; mid-query that left a
pooled connection half-used and, once, every later decision of the worker stuck (the fault
suite, tests/e2e/test_faults.py). Here the decision is cancelled while another writer
holds the database, the moment it is blocked in the middle of its write.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from temporalio.testing import ActivityEnvironment

from activities.decisions import DecisionActivities
from domain.events import parse_event
from leadflow.bootstrap import Store, open_store
from leadflow.settings import Settings
from store.faults import is_database_outage
from workflows.contracts import DecideInput

# Another writer holds the database this long; the decision is cancelled halfway.
HELD_SECONDS = 1.0


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = open_store(Settings(data_dir=tmp_path / "data", bootstrap_admin_key=None))
    store.rulebook.install_defaults(datetime.now(UTC))
    yield store
    store.close()


def captured(store: Store, email: str) -> DecideInput:
    """A capture appended to the log (the default ruleset assigns it), as its decision's
    input."""
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "type": "lead.captured",
        "data": {"email": email, "source": "website", "region": "east"},
    }
    [appended] = store.append([parse_event(body, now=now, phone_region="CN")], [None])
    return DecideInput(str(appended.lead_id), "lead.captured", appended.event_id, now.isoformat())


def test_a_decision_cancelled_mid_write_finishes_it_and_the_next_one_runs(
    sqlite_store: Store, tmp_path: Path
) -> None:
    decisions = DecisionActivities(
        sqlite_store.event_log, sqlite_store.rulebook, sqlite_store.quarantine, is_database_outage
    )
    first = captured(sqlite_store, "first@example.com")
    other_writer = sqlite3.connect(
        tmp_path / "data" / "leadflow.db", isolation_level=None, check_same_thread=False
    )
    other_writer.execute("BEGIN IMMEDIATE")
    environment = ActivityEnvironment()
    cancel = threading.Timer(HELD_SECONDS / 2, environment.cancel)
    release = threading.Timer(HELD_SECONDS, other_writer.rollback)
    started = time.monotonic()
    cancel.start()
    release.start()
    try:
        result = environment.run(decisions.decide, first)
    finally:
        cancel.cancel()
        release.join()
        other_writer.close()
    assert time.monotonic() - started >= HELD_SECONDS, "it never waited for the other writer"
    # Its write went through whole, once: the lead is assigned, and the log says so.
    assert "lead.assigned" in [event.type for event in result.decided]
    stream = sqlite_store.event_log.lead_events(UUID(first.lead_id))
    assert [e.type for e in stream].count("lead.assigned") == 1

    # The worker's next decision is not held by anything the cancelled one left behind.
    second = captured(sqlite_store, "second@example.com")
    done = threading.Event()
    answers: list[Any] = []

    def decide_second() -> None:
        answers.append(ActivityEnvironment().run(decisions.decide, second))
        done.set()

    threading.Thread(target=decide_second, daemon=True).start()
    assert done.wait(10), "the next decision is stuck"
    assert answers[0].state.owner is not None
