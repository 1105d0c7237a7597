"""Partitions of the log by stream, so that several follower processes can share it: every
event of a stream (a lead's, a campaign's) falls in the same partition, so order is kept
per stream, and a follower of a set of partitions keeps one tracking position per
partition (`<follower>/<partition>`).

One partition (SQLite, and PostgreSQL unless `LEADFLOW_FOLLOWER_PARTITIONS` says more) is
the whole log, tracked under the follower's own name as before partitions existed. A
partitioned position that does not exist yet starts from that one: a database followed
whole goes on to be followed in partitions without applying anything twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

# A stream's partition is its id's last byte modulo the count, so that the database can
# select a partition's events by that byte (`LogRecorder.select_partitions`): up to 256
# partitions, even when the count divides 256.
MAX_PARTITIONS = 256


def partition_of(stream_id: str | UUID, count: int) -> int:
    """The partition of the log a stream's events belong to, the same in every process
    (stream ids are UUIDs: their last byte is random, or a hash's for name-based ids)."""
    value = stream_id.int if isinstance(stream_id, UUID) else UUID(stream_id).int
    return (value & 0xFF) % count


@dataclass(frozen=True)
class Partitions:
    """The partitions of a `count`-way split of the log that one follower follows."""

    count: int
    held: frozenset[int]

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_PARTITIONS or not all(0 <= p < self.count for p in self.held):
            raise ValueError(f"partitions {sorted(self.held)} of {self.count}")

    @classmethod
    def whole(cls) -> Partitions:
        """The whole log, in one partition (one follower process)."""
        return cls(1, frozenset({0}))

    @classmethod
    def of(cls, count: int, held: Iterable[int]) -> Partitions:
        return cls(count, frozenset(held))

    @classmethod
    def one_of(cls, count: int, partition: int) -> Partitions | None:
        """Partition `partition` of a `count`-way split, or None (no filter: the whole log)
        when the log is not split."""
        return None if count == 1 else cls.of(count, {partition})

    @property
    def is_whole(self) -> bool:
        return self.count == 1

    def __str__(self) -> str:
        if self.is_whole:
            return "the whole log"
        return f"partition(s) {', '.join(map(str, sorted(self.held)))} of {self.count}"

    @property
    def is_everything(self) -> bool:
        """Whether every stream is in these partitions (nothing to select by)."""
        return len(self.held) == self.count

    def holds(self, stream_id: str | UUID) -> bool:
        return self.is_whole or partition_of(stream_id, self.count) in self.held

    def last_bytes(self) -> list[str]:
        """The last bytes (two lowercase hex digits) of the stream ids in these partitions."""
        return [f"{byte:02x}" for byte in range(256) if byte % self.count in self.held]

    def tracking_name(self, follower: str, partition: int) -> str:
        """The name of `follower`'s position in `partition` (`follower` itself when the log
        is followed whole)."""
        return follower if self.is_whole else partitioned_name(follower, partition)


def partitioned_name(follower: str, partition: int | str) -> str:
    return f"{follower}/{partition}"


def split_name(name: str) -> tuple[str, int | None]:
    """A tracking name's follower and partition (None: the whole log)."""
    follower, _, partition = name.rpartition("/")
    if follower and partition.isdigit():
        return follower, int(partition)
    return name, None
