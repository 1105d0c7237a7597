"""The lease plan (store.leases.plan_leases, quota): shares that add up, no partition taken
from a live holder, and members that settle on every partition held once, evenly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from random import Random

from hypothesis import given
from hypothesis import strategies as st

from store.leases import Lease, plan_leases, quota

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(seconds=5)
EARLIER = NOW - timedelta(seconds=1)

names = st.text(alphabet="abcdefgh", min_size=1, max_size=3)
member_sets = st.lists(names, min_size=1, max_size=6, unique=True)


@given(st.integers(min_value=1, max_value=64), member_sets)
def test_shares_add_up_and_differ_by_at_most_one(partitions: int, members: list[str]) -> None:
    shares = [quota(partitions, members, member) for member in members]
    assert sum(shares) == partitions
    assert max(shares) - min(shares) <= 1


@st.composite
def lease_tables(draw: st.DrawFn) -> tuple[list[str], list[Lease]]:
    members = draw(member_sets)
    holders = st.sampled_from([None, "gone", *members])
    leases = [
        Lease(p, holder, draw(st.sampled_from([LATER, EARLIER])) if holder else None)
        for p, holder in enumerate(draw(st.lists(holders, min_size=1, max_size=24)))
    ]
    return members, leases


@given(lease_tables())
def test_a_plan_takes_only_what_nobody_holds_and_releases_only_its_own(
    table: tuple[list[str], list[Lease]],
) -> None:
    members, leases = table
    by_partition = {lease.partition: lease for lease in leases}
    for member in members:
        plan = plan_leases(member, members, leases, NOW)
        assert not (plan.take and plan.release)
        for partition in plan.take:
            assert not by_partition[partition].held_at(NOW)
        for partition in plan.release:
            assert by_partition[partition].holder == member
            assert by_partition[partition].held_at(NOW)


@given(lease_tables(), st.randoms())
def test_members_settle_on_every_partition_held_once_and_evenly(
    table: tuple[list[str], list[Lease]], order: Random
) -> None:
    """Rounds of every member in turn, a second apart (each renews what it holds for 5 s;
    a take only succeeds on a free or expired row, as the database's conditional update
    does) end with each partition held by one live member and the shares even, once the
    leases of a member that is gone have run out."""
    members, start = table
    rows = {lease.partition: lease for lease in start}
    ttl = timedelta(seconds=5)
    for second in range(12):
        now = NOW + timedelta(seconds=second)
        turn = list(members)
        order.shuffle(turn)
        for member in turn:
            for partition, lease in rows.items():
                if lease.holder == member and lease.held_at(now):
                    rows[partition] = Lease(partition, member, now + ttl)
            plan = plan_leases(member, members, list(rows.values()), now)
            for partition in plan.release:
                rows[partition] = Lease(partition, None, None)
            for partition in plan.take:
                if not rows[partition].held_at(now):
                    rows[partition] = Lease(partition, member, now + ttl)
    held = [lease.holder for lease in rows.values()]
    assert all(holder in members for holder in held), held
    counts = [held.count(member) for member in members]
    assert max(counts) - min(counts) <= 1, counts
