"""Deciding with the aggregates each process keeps (eventsourcing's aggregate cache), while
another process decides on the same reps, on real SQLite and PostgreSQL.

A rep's open-lead count is read from the kept workload fast-forwarded with the events
stored since; a copy that missed another process's assignment would give the rep more
leads than their capacity.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from uuid import UUID

import pytest

from domain.events import parse_event
from leadflow.bootstrap import Store, open_store
from leadflow.settings import Settings
from store.decisions import Decided
from store.rulebook import default_directory_document, default_ruleset_document

# The same decision as `decide_new_lead` below, in another process (its own kept aggregates).
DECIDE_IN_ANOTHER_PROCESS = """
import sys
from datetime import UTC, datetime
from domain.events import parse_event
from leadflow.bootstrap import open_store
from leadflow.settings import Settings

store = open_store(Settings())
body = {"type": "lead.captured",
        "data": {"email": sys.argv[1], "source": "website", "region": "east"}}
[accepted] = store.append([parse_event(body, now=datetime.now(UTC), phone_region="CN")], [None])
decided = store.event_log.decide(
    accepted.lead_id, "lead.captured", accepted.event_id, datetime.now(UTC),
    store.rulebook.active(), store.rulebook.directory(), {},
)
print(decided.state.owner)
store.close()
"""


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    opened = open_store(settings)
    now = datetime.now(UTC)
    opened.rulebook.install_defaults(now)
    directory = default_directory_document()
    for rep in directory["reps"]:
        if rep["id"] == "rep-east-1":
            rep["capacity"] = 2
    opened.rulebook.replace_directory(directory, "test", now)
    yield opened
    opened.close()


def decide_new_lead(store: Store, email: str) -> Decided:
    """Capture a website lead from the east (rule `east-website`: rep-east-1) and decide it."""
    body = {
        "type": "lead.captured",
        "data": {"email": email, "source": "website", "region": "east"},
    }
    [accepted] = store.append([parse_event(body, now=datetime.now(UTC), phone_region="CN")], [None])
    assert isinstance(accepted.lead_id, UUID)
    return store.event_log.decide(
        accepted.lead_id,
        "lead.captured",
        accepted.event_id,
        datetime.now(UTC),
        store.rulebook.active(),
        store.rulebook.directory(),
        {},
    )


def decide_in_another_process(settings: Settings, email: str) -> str:
    env = {**os.environ, "LEADFLOW_DATA_DIR": str(settings.data_dir)}
    env.pop("LEADFLOW_DATABASE_URL", None)
    if settings.database_url is not None:
        env["LEADFLOW_DATABASE_URL"] = settings.database_url
    done = subprocess.run(
        [sys.executable, "-c", DECIDE_IN_ANOTHER_PROCESS, email],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_capacity_counts_what_another_process_assigned(store: Store, settings: Settings) -> None:
    first = decide_new_lead(store, "ann@example.com")
    assert first.state.owner == "rep-east-1"  # this process now keeps her workload: 1 lead

    assert decide_in_another_process(settings, "bob@example.com") == "rep-east-1"  # 2 of 2

    third = decide_new_lead(store, "cy@example.com")
    assert (third.state.owner, third.state.in_pool) == (None, True)
    pooled = third.events[0]
    assert (pooled.type, pooled.data["reason"]) == ("lead.returned_to_pool", "rep_unavailable")


def test_a_repeated_decision_returns_what_was_recorded(store: Store) -> None:
    decided = decide_new_lead(store, "ann@example.com")
    lead_id = UUID(decided.events[0].lead_id)
    [captured] = [e for e in store.event_log.lead_events(lead_id) if e.type == "lead.captured"]
    again = store.event_log.decide(
        lead_id,
        "lead.captured",
        captured.event_id,
        datetime.now(UTC),
        store.rulebook.active(),
        store.rulebook.directory(),
        {},
    )
    assert again.events == decided.events
    assert [e.type for e in store.event_log.lead_events(lead_id)] == [
        "lead.captured",
        "lead.assigned",
        "lead.task_created",
    ]


def test_a_ruleset_or_directory_changed_elsewhere_is_what_the_next_read_returns(
    store: Store, settings: Settings
) -> None:
    """The rulebook keeps the active ruleset and the parsed directory between decisions and
    checks only the streams' versions: a change made by another process is seen at once."""
    rulebook = store.rulebook
    first = rulebook.active()
    assert rulebook.directory().rep("rep-east-1") is not None
    elsewhere = open_store(settings)
    try:
        now = datetime.now(UTC)
        document = default_ruleset_document()
        document["name"] = "changed elsewhere"
        version = elsewhere.rulebook.publish(document, "test", now)
        elsewhere.rulebook.activate(version, "test", now)
        directory = default_directory_document()
        directory["reps"] = [r for r in directory["reps"] if r["id"] != "rep-west-1"]
        elsewhere.rulebook.replace_directory(directory, "test", now)
        assert rulebook.active().version == version
        assert rulebook.active().ruleset.name == "changed elsewhere"
        assert rulebook.directory().rep("rep-west-1") is None
        assert first.version is not None
        elsewhere.rulebook.activate(first.version, "test", now)  # a rollback
        assert rulebook.active().version == first.version
    finally:
        elsewhere.close()
