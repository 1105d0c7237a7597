"""An event a read model cannot take holds only its own lead (the projector and the
quarantine, on real SQLite and PostgreSQL).

The poison events here are written to the log past the API's checks, as an older release
could have written them: the door refuses them now, but the log is immutable and the read
models must live with what is in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Connection

from domain.events import IncomingEvent, parse_event
from leadflow.bootstrap import Store, projections
from projections.base import LEAD_TOPICS, LogEntry, position_of
from projections.leads import LeadsProjection
from projections.projector import Projector
from projections.rebuild import REBUILD_SUFFIX, rebuild
from projections.stages import LeadStagesProjection
from store.quarantine import RESOLVED, RETRYING, SKIPPED, RetryPolicy, projection_stage

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def posted(type_: str, data: dict[str, Any], lead_id: UUID | None = None) -> IncomingEvent:
    body: dict[str, Any] = {"type": type_, "data": data}
    if lead_id is not None:
        body["lead_id"] = str(lead_id)
    return parse_event(body, now=T0, phone_region="CN")


def capture(store: Store, email: str, **data: Any) -> UUID:
    [result] = store.append(
        [posted("lead.captured", {"email": email, "source": "web", **data})], [None]
    )
    assert result.lead_id is not None
    return UUID(str(result.lead_id))


def follow_up(store: Store, lead_id: UUID) -> None:
    store.append([posted("lead.followed_up", {"rep_id": "rep-a"}, lead_id)], [None])


def opportunity_unchecked(store: Store, lead_id: UUID, amount: object) -> None:
    """A `lead.opportunity_opened` whose amount the door would refuse today."""
    event = IncomingEvent("lead.opportunity_opened", {"amount": amount}, T0, lead_id=lead_id)
    store.append([event], [None])


def won(store: Store, lead_id: UUID) -> None:
    store.append([posted("lead.won", {"amount": 1000}, lead_id)], [None])


def leads_rows(store: Store) -> dict[str, dict[str, Any]]:
    table = LeadsProjection().table
    with store.engine.connect() as conn:
        return {row["lead_id"]: dict(row) for row in conn.execute(select(table)).mappings()}


def stages_of(store: Store, lead_id: UUID) -> list[str]:
    table = LeadStagesProjection().table
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(table.c.stage).where(table.c.lead_id == str(lead_id)).order_by(table.c.sequence)
        )
        return [row.stage for row in rows]


def projector_of(store: Store, **policy: Any) -> Projector:
    store.quarantine.policy = RetryPolicy(**{"first_delay": timedelta(0), **policy})
    return Projector(store.event_log, store.engine, projections(), quarantine=store.quarantine)


def test_an_event_a_read_model_cannot_take_holds_only_its_lead(store: Store) -> None:
    ann = capture(store, "ann@example.com")
    poison = capture(store, "poison@example.com")
    opportunity_unchecked(store, poison, "lots")
    won(store, poison)  # held behind the poison, in order
    bob = capture(store, "bob@example.com")
    won(store, ann)

    projector = projector_of(store, first_delay=timedelta(hours=1))
    projector.catch_up()

    assert stages_of(store, ann) == ["new", "won"]
    assert str(bob) in leads_rows(store)
    # The poison lead's stages stop before the event that failed.
    assert stages_of(store, poison) == ["new"]
    [item] = store.quarantine.find()
    assert item.stage == projection_stage("lead_stages")
    assert (item.lead_id, item.event_type, item.sequence) == (
        str(poison),
        "lead.opportunity_opened",
        2,
    )
    assert (item.status, item.attempts) == (RETRYING, 1)
    assert "InvalidOperation" in item.error
    # Every other read model took the poison lead's events, and every read model is at
    # the end of the log all the same: nobody else waits.
    assert leads_rows(store)[str(poison)]["stage"] == "won"
    with store.engine.connect() as conn:
        for projection in projections():
            if projection.topics == LEAD_TOPICS:
                assert position_of(conn, projection) == store.event_log.max_position()


def test_skipping_the_poison_applies_the_held_events_after_it(store: Store) -> None:
    capture(store, "ann@example.com")
    poison = capture(store, "poison@example.com")
    opportunity_unchecked(store, poison, "lots")
    won(store, poison)
    projector = projector_of(store, max_attempts=1)
    projector.catch_up()
    [item] = store.quarantine.find()
    store.quarantine.request(item.item_id, "skip")

    assert projector.retry_due() == 1
    assert stages_of(store, poison) == ["new", "won"]
    assert store.quarantine.get(item.item_id).status == SKIPPED
    assert store.quarantine.find() == []


class BrokenForOneLead:
    """A read model with a bug that one lead's data trips, until the bug is fixed."""

    def __init__(self, inner: LeadsProjection, lead_id: UUID) -> None:
        self.inner = inner
        self.name = inner.name
        self.topics = inner.topics
        self.metadata = inner.metadata
        self.lead_id = str(lead_id)
        self.fixed = False

    def apply(self, conn: Connection, entries: Sequence[LogEntry[Any]]) -> None:
        if not self.fixed and any(e.event.lead_id == self.lead_id for e in entries):
            raise KeyError("a bug")
        self.inner.apply(conn, entries)


def test_once_the_cause_is_fixed_a_retry_catches_the_lead_up(store: Store) -> None:
    ann = capture(store, "ann@example.com")
    tripping = capture(store, "trip@example.com")
    broken = BrokenForOneLead(LeadsProjection(), tripping)
    store.quarantine.policy = RetryPolicy(first_delay=timedelta(0))
    projector = Projector(store.event_log, store.engine, [broken], quarantine=store.quarantine)
    projector.catch_up()
    follow_up(store, tripping)
    follow_up(store, ann)
    projector.catch_up()
    projector.retry_due()
    [item] = store.quarantine.find()
    assert item.attempts == 2
    assert set(leads_rows(store)) == {str(ann)}

    broken.fixed = True
    projector.retry_due()

    assert store.quarantine.get(item.item_id).status == RESOLVED
    rows = leads_rows(store)
    assert rows[str(tripping)]["followups_count"] == 1
    # The same rows a rebuild from the log makes.
    rebuild(store.event_log, store.engine, LeadsProjection(), LeadsProjection(REBUILD_SUFFIX))
    assert leads_rows(store) == rows


def test_a_rebuild_holds_the_poison_and_keeps_its_quarantine(store: Store) -> None:
    poison = capture(store, "poison@example.com")
    opportunity_unchecked(store, poison, "lots")
    capture(store, "ann@example.com")
    projector_of(store).catch_up()
    stage = projection_stage("lead_stages")
    [before] = store.quarantine.find(stage=stage)

    rebuild(
        store.event_log,
        store.engine,
        LeadStagesProjection(),
        LeadStagesProjection(REBUILD_SUFFIX),
    )

    [after] = store.quarantine.find(stage=stage)
    assert after.item_id != before.item_id  # the rebuilt tables' own item
    assert (after.lead_id, after.event_type) == (str(poison), "lead.opportunity_opened")
    assert store.quarantine.get(before.item_id).status == RESOLVED  # its tables are gone


def test_text_postgresql_refuses_holds_only_its_lead(
    store: Store, database_url: str | None
) -> None:
    if database_url is None:
        pytest.skip("SQLite stores NUL characters; PostgreSQL refuses them in text")
    ann = capture(store, "ann@example.com")
    event = IncomingEvent(
        "lead.captured",
        {"email": "nul@example.com", "source": "web", "name": "Nu\x00l"},
        T0,
        identities={"email": "nul@example.com"},
    )
    [nul] = store.append([event], [None])
    capture(store, "bob@example.com")
    projector_of(store).catch_up()

    assert str(ann) in leads_rows(store)
    assert str(nul.lead_id) not in leads_rows(store)
    stages = {item.stage for item in store.quarantine.find(lead_id=str(nul.lead_id))}
    assert projection_stage("leads") in stages
    assert store.quarantine.find(lead_id=str(ann)) == []
