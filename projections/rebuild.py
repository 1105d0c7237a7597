"""Rebuilding a read model: the whole log into fresh tables (`<table>__rebuild`) while the
live tables keep serving and being projected, then swapped in in one transaction."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Index, Table, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.schema import CreateTable, DropTable

from projections.base import Projection, events_after, position_of, start_tracking, tracking_name
from projections.projector import Projector
from store.log import EventLog
from store.positions import all_positions_of, log_positions
from store.quarantine import (
    Quarantine,
    projection_stage,
)

log = logging.getLogger(__name__)

# A rebuild has the log's whole history to go through: bigger pages write each lead's row
# fewer times, read fewer rows back and commit less often (10-25% less CPU for `leads`,
# BENCHMARKS.md).
REBUILD_PAGE_SIZE = 5000
REBUILD_SUFFIX = "__rebuild"

OnProgress = Callable[[int, int], None]


def rebuild(
    event_log: EventLog,
    engine: Engine,
    live: Projection,
    building: Projection,
    *,
    page_size: int = REBUILD_PAGE_SIZE,
    progress: OnProgress | None = None,
) -> int:
    """Replay the log from its start into `building` (the same projection, its tables
    named differently), then swap its tables in for `live`'s in one transaction. `live`
    keeps serving reads and being projected meanwhile. `progress(done, total)` is called
    after every page. Returns how many events were replayed."""
    _drop_tables(engine, building)
    try:
        with engine.begin() as conn:
            for table in building.metadata.sorted_tables:
                # Indexes other than the primary key come after the bulk load: cheaper.
                # (SQLite cannot rename an index, so there they are made in the swap.)
                conn.execute(CreateTable(table))
        projector = Projector(event_log, engine, [building], page_size=page_size)
        # Up to where the log ends now, then once more up to where it ends then: bounded,
        # so a rebuild finishes however fast events arrive. The live projector carries on
        # from the swapped-in position.
        target = event_log.max_position()
        with engine.connect() as conn:
            total = events_after(conn, event_log, live.topics, 0, target)
        done = 0
        while applied := projector.project_page(building, until=target):
            done += applied
            if progress is not None:
                progress(done, max(total, done))
        if engine.dialect.name != "sqlite":
            with engine.begin() as conn:
                for table in building.metadata.sorted_tables:
                    for index in table.indexes:
                        index.create(conn)
        target = event_log.max_position()
        while applied := projector.project_page(building, until=target):
            done += applied
        _swap(engine, live, building)
    except BaseException:
        _drop_tables(engine, building)
        raise
    if progress is not None:
        progress(done, done)
    log.info("rebuilt projection %s from %d events", live.name, done)
    return done


def _drop_tables(engine: Engine, projection: Projection) -> None:
    with engine.begin() as conn:
        for table in reversed(projection.metadata.sorted_tables):
            conn.execute(DropTable(table, if_exists=True))
        conn.execute(
            log_positions.delete().where(log_positions.c.follower == tracking_name(projection))
        )
        # What an abandoned build held guarded tables that are gone now.
        Quarantine(engine).close_stage(conn, projection_stage(projection.name), datetime.now(UTC))


def _swap(engine: Engine, live: Projection, building: Projection) -> None:
    """Put `building`'s tables (caught up to its position) in place of `live`'s, and move
    `live`'s position to that position, atomically."""
    quote = engine.dialect.identifier_preparer.quote
    live_name = tracking_name(live)
    start_tracking(engine, live_name)
    with engine.begin() as conn:
        # The positions first, as every projector transaction does: a live page in flight
        # finishes before the swap (its rows are dropped with the old table) or re-reads.
        # Every partition's position (if the log is followed in partitions) moves too.
        built = position_of(conn, building) or 0
        conn.execute(
            update(log_positions).where(all_positions_of(live_name)).values(position=built)
        )
        pairs = zip(live.metadata.sorted_tables, building.metadata.sorted_tables, strict=True)
        for old, new in pairs:
            conn.execute(DropTable(old, if_exists=True))
            conn.execute(text(f"ALTER TABLE {quote(new.name)} RENAME TO {quote(old.name)}"))
            if engine.dialect.name == "sqlite":
                for index in old.indexes:
                    index.create(conn)
            else:
                for old_index, new_index in _index_pairs(old, new):
                    conn.execute(
                        text(f"ALTER INDEX {quote(new_index)} RENAME TO {quote(old_index)}")
                    )
        conn.execute(
            log_positions.delete().where(log_positions.c.follower == tracking_name(building))
        )
        # The built tables' held streams are held in the live ones now; what the replaced
        # tables held went with them.
        Quarantine(engine).rename_stage(
            conn, projection_stage(building.name), projection_stage(live.name), datetime.now(UTC)
        )


def _index_pairs(old: Table, new: Table) -> list[tuple[str, str]]:
    """(live name, building name) of each index, the primary key's included (PostgreSQL
    names its constraint after its index, and a name is unique in a schema)."""

    def key(index: Index) -> tuple[str, ...]:
        return tuple(column.name for column in index.columns)

    building = {key(index): str(index.name) for index in new.indexes}
    pairs = [(str(index.name), building[key(index)]) for index in old.indexes]
    if old.primary_key.name and new.primary_key.name:
        pairs.append((str(old.primary_key.name), str(new.primary_key.name)))
    return pairs
