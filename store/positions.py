"""Following the log from a tracked position: the shared loop of the dispatcher (and of
the projectors that later issues add). Positions live in `log_positions`."""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, String, Table, select
from sqlalchemy.engine import Engine

metadata = MetaData()

log_positions = Table(
    "log_positions",
    metadata,
    Column("follower", String(100), primary_key=True),
    Column("position", Integer, nullable=False),
)


class PositionStore:
    """The last log position a follower has fully handled."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, follower: str) -> int:
        with self.engine.connect() as conn:
            found = conn.execute(
                select(log_positions.c.position).where(log_positions.c.follower == follower)
            ).scalar_one_or_none()
        return int(found or 0)

    def set(self, follower: str, position: int) -> None:
        with self.engine.begin() as conn:
            updated = conn.execute(
                log_positions.update()
                .where(log_positions.c.follower == follower)
                .values(position=position)
            )
            if updated.rowcount == 0:
                conn.execute(log_positions.insert().values(follower=follower, position=position))

    def all(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(log_positions.c.follower, log_positions.c.position))
            return {row.follower: int(row.position) for row in rows}
