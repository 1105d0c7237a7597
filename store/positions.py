"""The tracked positions of the log's followers (`log_positions`): the dispatcher's and each
read model's, one per partition when the log is followed in partitions
(`store.partitions`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import Column, Integer, MetaData, String, Table, or_, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.elements import ColumnElement

from store.partitions import partitioned_name, split_name

metadata = MetaData()

log_positions = Table(
    "log_positions",
    metadata,
    Column("follower", String(100), primary_key=True),
    Column("position", Integer, nullable=False),
)


# A follower whose page held none of its events (only other partitions' or other topics')
# records the position it read through only once it is this far past its own: reading a
# stretch again costs less than a commit at every wake-up.
SKIP_AT_LEAST = 5000


def worth_moving(position: int, events: int, last: int) -> bool:
    """Whether a follower at `position` that read `events` of its own up to `last` records
    `last` (`SKIP_AT_LEAST`)."""
    return last > position and (events > 0 or last - position >= SKIP_AT_LEAST)


class PositionStore:
    """The last log position a follower has fully handled."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, follower: str, starting_from: str | None = None) -> int:
        """`follower`'s position; if it has none yet, `starting_from`'s (the whole log's
        position of a partition's follower), else 0."""
        [position] = self.get_all([follower], starting_from)
        return position

    def get_all(self, followers: Sequence[str], starting_from: str | None = None) -> list[int]:
        """`get` of each of `followers`, in one query."""
        with self.engine.connect() as conn:
            return positions_or_start(conn, followers, starting_from)

    def set(self, follower: str, position: int) -> None:
        self.set_all({follower: position})

    def set_all(self, positions: Mapping[str, int]) -> None:
        """Several followers' positions, in one transaction."""
        with self.engine.begin() as conn:
            for follower, position in positions.items():
                updated = conn.execute(
                    log_positions.update()
                    .where(log_positions.c.follower == follower)
                    .values(position=position)
                )
                if updated.rowcount == 0:
                    conn.execute(
                        log_positions.insert().values(follower=follower, position=position)
                    )

    def all(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(log_positions.c.follower, log_positions.c.position))
            return {row.follower: int(row.position) for row in rows}


def positions_or_start(
    conn: Connection, followers: Sequence[str], starting_from: str | None
) -> list[int]:
    """Each of `followers`' positions; for one that has none, `starting_from`'s, else 0."""
    names = [*followers] if starting_from is None else [*followers, starting_from]
    found = dict(
        conn.execute(
            select(log_positions.c.follower, log_positions.c.position).where(
                log_positions.c.follower.in_(names)
            )
        )
        .tuples()
        .all()
    )
    start = int(found.get(starting_from, 0)) if starting_from is not None else 0
    return [int(found[name]) if name in found else start for name in followers]


def tracked_positions(conn: Connection, follower: str) -> dict[int | None, int]:
    """`follower`'s positions by partition, its whole-log position under None (where a
    partition not started yet starts from); empty if it never started."""
    rows = (
        conn.execute(
            select(log_positions.c.follower, log_positions.c.position).where(
                all_positions_of(follower)
            )
        )
        .tuples()
        .all()
    )
    found: dict[int | None, int] = {}
    for name, position in rows:
        base, partition = split_name(name)
        if base == follower:
            found[partition] = int(position)
    return found


def all_positions_of(follower: str) -> ColumnElement[bool]:
    """Where `log_positions` holds `follower`'s position: the whole log's and each
    partition's."""
    return or_(
        log_positions.c.follower == follower,
        log_positions.c.follower.startswith(partitioned_name(follower, ""), autoescape=True),
    )
