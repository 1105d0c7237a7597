"""Followers sharing the log by partitions (store.partitions) on real SQLite and
PostgreSQL: projectors of different partitions, interleaved in any order, make the read
models a rebuild makes; dispatchers of different partitions deliver every event once, in
order per lead; a log followed whole goes on in partitions without applying anything
twice; a rebuild moves every partition's position; the partition count cannot change
under running followers; and a partition given up to rebalance is freed only once the
work on it stopped."""

from __future__ import annotations

import asyncio
import tempfile
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.engine import Engine
from support import until
from test_delivery_isolation import REFUSED, FakeTemporal, capture, dispatcher_of, follow_up
from test_leases import Clock
from test_projections import (
    T0,
    assert_view_equals_the_log,
    decide,
    every_table,
    rebuild_all,
    record_spend,
    steps,
)
from test_projections import capture as capture_at

from api.flow_status import read_flow_status
from delivery.dispatcher import Dispatcher
from leadflow.bootstrap import Store, open_store, projections
from leadflow.settings import Settings
from projections.projector import Projector
from projections.rebuild import REBUILD_SUFFIX, rebuild
from store.leases import LeaseKeeper, LeaseStore, PartitionCountChanged
from store.partitions import Partitions, partition_of
from store.positions import log_positions

TTL = timedelta(seconds=5)
EVERY = timedelta(seconds=1)


def projector(store: Store, partitions: Partitions, page_size: int = 1000) -> Projector:
    return Projector(
        store.event_log, store.engine, projections(), page_size=page_size, partitions=partitions
    )


def last_lead_event(store: Store) -> int:
    return store.event_log.lead_entries_after(0, 10_000)[-1][0]


def positions(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(log_positions.c.follower, log_positions.c.position))
        return {row.follower: int(row.position) for row in rows}


# --- read models ---------------------------------------------------------------------------


@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=steps,
    count=st.integers(2, 4),
    owners=st.lists(st.integers(0, 2), min_size=4, max_size=4),
    whole_until=st.integers(0, 30),
    page=st.integers(1, 6),
)
def test_projectors_sharing_partitions_make_what_a_rebuild_makes(
    steps: list[Any], count: int, owners: list[int], whole_until: int, page: int
) -> None:
    """The log's events in any order of appends and of pages, followed whole up to a point
    (as before partitions) and from there by up to three projectors owning the partitions
    between them: every row equals a rebuild's, every lead's row its state."""
    with tempfile.TemporaryDirectory() as data_dir:
        store = open_store(Settings(data_dir=Path(data_dir)))
        try:
            held = [{p for p in range(count) if owners[p] == i} for i in range(3)]
            shared = [projector(store, Partitions.of(count, h), page) for h in held if h]
            whole = projector(store, Partitions.whole(), page)
            leads: list[UUID] = []
            for number, step in enumerate(steps):
                at = T0 + timedelta(minutes=number)
                if step[0] == "capture":
                    leads.append(capture_at(store, step[1], at=at, source=step[2]))
                elif step[0] == "project":
                    if number < whole_until:
                        whole.project_once()
                    else:
                        shared[step[1] % len(shared)].project_once()
                elif step[0] == "spend":
                    record_spend(store, step[1], step[2], at)
                elif step[0] == "decide" and leads:
                    decide(store, leads[step[1] % len(leads)], step[2][0], **step[2][1])
            for member in shared:
                member.catch_up()
            incremental = every_table(store)
            rebuild_all(store, page_size=page)
            assert every_table(store) == incremental
            assert_view_equals_the_log(store, set(leads))
        finally:
            store.close()


def test_a_rebuild_moves_every_partitions_position_and_they_go_on_from_it(store: Store) -> None:
    leads = [capture_at(store, f"r{n}@example.com") for n in range(12)]
    halves = [Partitions.of(4, {0, 1}), Partitions.of(4, {2, 3})]
    for half in halves:
        projector(store, half).catch_up()
    more = [capture_at(store, f"s{n}@example.com") for n in range(6)]
    for live, building in zip(projections(), projections(REBUILD_SUFFIX), strict=True):
        rebuild(store.event_log, store.engine, live, building)

    built = positions(store.engine)
    moved = {built[f"projection:leads/{partition}"] for partition in range(4)}
    assert len(moved) == 1 and moved.pop() >= last_lead_event(store), built
    # Nothing is applied twice from there (a lead's row would be inserted again and fail).
    capture_at(store, "after@example.com")
    assert sum(projector(store, half).catch_up() for half in halves) > 0
    assert len(every_table(store)["leads"]) == len(leads) + len(more) + 1


def test_the_flow_status_counts_each_partitions_lag_in_its_own_events(store: Store) -> None:
    LeaseStore(store.engine).ensure_partitions("projector", 2)
    leads = [capture_at(store, f"f{n}@example.com") for n in range(10)]
    projector(store, Partitions.of(2, {0})).catch_up()
    late = capture_at(store, "late@example.com")
    projector(store, Partitions.of(2, {1})).catch_up()
    per_partition = Counter(partition_of(lead, 2) for lead in [*leads, late])

    flow = read_flow_status(store, projections(), T0)
    # The dispatcher never ran: each partition has all its captures to deliver.
    assert [flow.lag_by_partition[p] for p in (0, 1)] == [per_partition[0], per_partition[1]]
    dispatcher = next(f for f in flow.followers if f.name == "dispatcher")
    assert (dispatcher.position, dispatcher.lag_events) == (0, 11)

    end = store.event_log.max_position()
    store.positions.set_all({"dispatcher/0": end, "dispatcher/1": end})
    flow = read_flow_status(store, projections(), T0)
    # Partition 0's read models ran before the late capture; partition 1's after it.
    behind = 1 if partition_of(late, 2) == 0 else 0
    assert [flow.lag_by_partition[p] for p in (0, 1)] == [behind, 0]
    leads_model = next(f for f in flow.followers if f.name == "projection:leads")
    assert leads_model.lag_events == behind
    assert positions(store.engine)["projection:leads/1"] == end


# --- deliveries ----------------------------------------------------------------------------


async def drain(dispatchers: list[Dispatcher]) -> None:
    while sum([await dispatcher.dispatch_page() for dispatcher in dispatchers]):
        pass


async def test_dispatchers_of_different_partitions_deliver_every_event_once_in_order(
    store: Store,
) -> None:
    leads = [capture(store, f"d{n}@example.com") for n in range(24)]
    for lead_id in leads[::2]:
        follow_up(store, lead_id)
    whole = FakeTemporal()
    # Followed whole for a page first, then in three partitions by two dispatchers.
    first = dispatcher_of(store, whole)
    first.page_size = 10
    await first.dispatch_page()
    temporals = [FakeTemporal(), FakeTemporal()]
    shares = [Partitions.of(3, {0}), Partitions.of(3, {1, 2})]
    dispatchers = [
        Dispatcher(
            store.event_log,
            store.positions,
            temporal.deliver,
            store.quarantine,
            is_outage=lambda _: False,
            page_size=7,
            partitions=share,
        )
        for temporal, share in zip(temporals, shares, strict=True)
    ]
    for lead_id in leads[1::3]:
        follow_up(store, lead_id)
    await drain(dispatchers)

    delivered = [e for t in (whole, *temporals) for e in t.delivered]
    assert Counter(e.event_id for e in delivered).most_common(1)[0][1] == 1
    expected = {e.event_id for _, e in store.event_log.lead_entries_after(0, 10_000)}
    assert {e.event_id for e in delivered} == expected
    for temporal, share in zip(temporals, shares, strict=True):
        assert all(share.holds(e.lead_id) for e in temporal.delivered)
        for lead_id in leads:
            sequences = [s for _, s in temporal.of(lead_id)]
            assert sequences == sorted(sequences)
    # Each partition's position is past its own last event (past the others' only when
    # reading them again would cost more than recording it: store.positions.SKIP_AT_LEAST).
    entries = store.event_log.lead_entries_after(0, 10_000)
    for partition in range(3):
        own = [position for position, e in entries if partition_of(e.lead_id, 3) == partition]
        assert store.positions.get(f"dispatcher/{partition}") >= max(own)


async def test_a_held_lead_is_retried_by_its_partitions_dispatcher_only(store: Store) -> None:
    poison = capture(store, "poison@example.com")
    temporal = FakeTemporal(refuse={str(poison): REFUSED})
    mine = partition_of(poison, 2)
    dispatchers = {
        partition: dispatcher_of(store, temporal) for partition in range(2)
    }  # the policy, set on the shared quarantine
    for partition, dispatcher in dispatchers.items():
        dispatcher.partitions = Partitions.of(2, {partition})
    await drain(list(dispatchers.values()))
    del temporal.refuse[str(poison)]

    assert await dispatchers[1 - mine].retry_due() == 0
    assert await dispatchers[mine].retry_due() == 1
    assert temporal.of(poison) == [("lead.captured", 1)]


# --- leases --------------------------------------------------------------------------------


def test_the_partition_count_stays_what_the_followers_ran_with(store: Store) -> None:
    leases = LeaseStore(store.engine)
    now = T0
    leases.ensure_partitions("once-whole", 1, now, TTL)
    leases.heartbeat("once-whole", "alive", now, TTL)
    with pytest.raises(PartitionCountChanged, match="stop every projector"):
        leases.ensure_partitions("once-whole", 4, now, TTL)
    # Every projector stopped (no heartbeat within a lease): 1 grows to 4.
    leases.ensure_partitions("once-whole", 4, now + 2 * TTL, TTL)
    assert [lease.partition for lease in leases.leases("once-whole")] == [0, 1, 2, 3]
    with pytest.raises(PartitionCountChanged, match="LEADFLOW_FOLLOWER_PARTITIONS=4"):
        leases.ensure_partitions("once-whole", 2, now + 3 * TTL, TTL)
    leases.ensure_partitions("once-whole", 4, now + 3 * TTL, TTL)


async def test_a_partition_given_up_is_freed_only_once_its_work_has_stopped(
    store: Store,
) -> None:
    leases = LeaseStore(store.engine)
    leases.ensure_partitions("handover", 2)
    clock = Clock()
    first = LeaseKeeper(leases, "handover", 2, "first", TTL, EVERY, clock)
    second = LeaseKeeper(leases, "handover", 2, "second", TTL, EVERY, clock)
    first.round()
    runs: list[frozenset[int]] = []
    finish = asyncio.Event()

    async def work(held: frozenset[int], stopping: asyncio.Event) -> None:
        runs.append(held)
        await stopping.wait()
        if len(runs) == 1:
            await finish.wait()  # slow to stop

    stop = asyncio.Event()
    following = asyncio.create_task(first.while_holding(stop, work, check_seconds=0.01))
    try:
        await until(lambda: runs == [{0, 1}], "work on both partitions", 10)
        second.round()  # a member now: first gives one partition up
        first.round()
        assert first.held == {0}
        first.round()
        second.round()
        assert second.held == frozenset()  # still being worked on: not freed
        finish.set()
        await until(lambda: runs == [{0, 1}, {0}], "work on the one kept", 10)
        first.round()
        second.round()
        assert second.held == {1}
    finally:
        stop.set()
        await following
