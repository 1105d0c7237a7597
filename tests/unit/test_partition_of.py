"""Partitions of the log by stream (store.partitions): the same partition for a stream in
every process, spread evenly, and tracking names that say whose position is whose."""

from __future__ import annotations

import random
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from store.partitions import Partitions, partition_of, split_name
from store.positions import SKIP_AT_LEAST, worth_moving


def test_a_streams_partition_is_its_ids_last_byte_modulo_the_count() -> None:
    lead = UUID("0b5f1c2e-8d3a-4f6b-9c1d-2e3f4a5b6c7d")
    assert partition_of(lead, 8) == (lead.int & 0xFF) % 8 == partition_of(str(lead), 8)
    assert partition_of(lead, 1) == 0


def test_random_leads_spread_evenly() -> None:
    chance = random.Random(16)
    counts = [0] * 8
    for _ in range(8000):
        counts[partition_of(UUID(int=chance.getrandbits(128), version=4), 8)] += 1
    assert all(900 <= count <= 1100 for count in counts), counts


@given(count=st.integers(1, 64), lead=st.uuids())
def test_exactly_one_of_a_split_holds_each_stream(count: int, lead: UUID) -> None:
    owners = [Partitions.of(count, {p}) for p in range(count)]
    assert sum(owner.holds(lead) for owner in owners) == 1


@given(follower=st.sampled_from(["dispatcher", "projection:leads"]), partition=st.integers(0, 255))
def test_a_tracking_name_gives_back_its_follower_and_partition(
    follower: str, partition: int
) -> None:
    split = Partitions.of(256, {partition})
    assert split_name(split.tracking_name(follower, partition)) == (follower, partition)
    assert split_name(Partitions.whole().tracking_name(follower, 0)) == (follower, None)


def test_a_split_holds_only_partitions_it_has() -> None:
    with pytest.raises(ValueError, match="partitions"):
        Partitions.of(4, {4})
    with pytest.raises(ValueError, match="partitions"):
        Partitions.of(0, set())
    assert str(Partitions.of(4, {3, 1})) == "partition(s) 1, 3 of 4"
    assert str(Partitions.whole()) == "the whole log"


def test_a_follower_records_a_page_without_its_events_only_once_far_behind() -> None:
    assert worth_moving(10, 3, 11)  # its own events: always
    assert not worth_moving(10, 0, 10)  # nothing read
    assert not worth_moving(10, 0, 10 + SKIP_AT_LEAST - 1)  # cheaper to read again
    assert worth_moving(10, 0, 10 + SKIP_AT_LEAST)
