"""A log written by an earlier leadflow still reads (real SQLite and PostgreSQL).

Events are stored by topic (the module and class that wrote them) and the log is immutable,
so a class that moves must still answer to its old topic. `tests/fixtures/
log-before-layout.json` holds every stored event of a small log written before the packages
moved (issue #10: rulesets, the directory, two leads decided, a follow-up, a stage, a
campaign's spend), exactly as the database held them.
"""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from leadflow.bootstrap import Store, projections
from projections.leads import find_lead
from projections.projector import Projector

FIXTURE = Path(__file__).parents[1] / "fixtures" / "log-before-layout.json"


def load_fixture(store: Store) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = json.loads(FIXTURE.read_text())
    store.event_log.recorder.insert_events(
        [
            StoredEvent(
                originator_id=UUID(str(row["originator_id"])),
                originator_version=int(str(row["originator_version"])),
                topic=str(row["topic"]),
                state=str(row["state"]).encode(),
            )
            for row in rows
        ]
    )
    return rows


def test_a_log_written_before_the_packages_moved_still_reads(store: Store) -> None:
    rows = load_fixture(store)
    assert store.event_log.max_position() == len(rows)
    # Written under the module name the rulesets' streams had then (`domain.configuration`
    # registers it as its alias).
    assert {str(r["topic"]).split(":")[0] for r in rows} >= {"domain.rulebook", "domain.lead"}

    active = store.rulebook.active()
    assert active.version == 1 and active.ruleset.name == "default"
    assert {team.id for team in store.rulebook.directory().teams} == {"east", "west"}

    [ann] = {UUID(str(r["originator_id"])) for r in rows if "ann@example.com" in str(r["state"])}
    events = store.event_log.lead_events(ann)
    assert [e.type for e in events] == [
        "lead.captured",
        "nurture.enrolled",
        "lead.assigned",
        "lead.task_created",
        "lead.followed_up",
        "lead.qualified",
    ]
    assert store.event_log.lead_state(ann).owner == "rep-east-1"

    # Every read model takes the whole log.
    Projector(store.event_log, store.engine, projections()).catch_up()
    with store.engine.connect() as conn:
        lead = find_lead(conn, str(ann))
    assert lead is not None and (lead.owner, lead.stage) == ("rep-east-1", "MQL")
