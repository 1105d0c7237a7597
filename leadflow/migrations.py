"""Every table leadflow owns in one view (API keys, follower positions and leases, replays,
imports, the quarantine and the read models' live tables), and how a database's tables
differ from it: what alembic's autogenerate compares. Gathered here, at the top of the
layers, because the tables are declared in store/, replay/, intake/ and projections/ alike.

Not in the view: the event log's tables (eventsourcing's own), `alembic_version`, and a
rebuild's `<table>__rebuild` copies, which live only until their swap.
"""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

from intake.jobs import metadata as imports_metadata
from leadflow.bootstrap import projections
from replay.jobs import metadata as replays_metadata
from store.deadlines import metadata as deadlines_metadata
from store.keys import metadata as keys_metadata
from store.leases import metadata as leases_metadata
from store.positions import metadata as positions_metadata
from store.quarantine import metadata as quarantine_metadata
from store.saved_views import metadata as saved_views_metadata
from store.sealing import metadata as sealing_metadata
from store.shadow_decisions import metadata as shadow_metadata
from store.users import metadata as users_metadata


def owned_metadata() -> MetaData:
    """One MetaData holding a copy of every table leadflow owns, as its models declare it."""
    combined = MetaData()
    declared = [
        keys_metadata,
        positions_metadata,
        replays_metadata,
        quarantine_metadata,
        leases_metadata,
        imports_metadata,
        sealing_metadata,
        shadow_metadata,
        users_metadata,
        deadlines_metadata,
        saved_views_metadata,
    ]
    declared += [projection.metadata for projection in projections()]
    for metadata in declared:
        for table in metadata.tables.values():
            table.to_metadata(combined)
    return combined


def schema_differences(connection: Connection) -> list[Any]:
    """What would have to change in the database for its tables to be leadflow's models
    (alembic's autogenerate diff: added or removed tables, columns, indexes, changed types or
    nullability); empty when they agree. Tables leadflow does not own are not looked at."""
    owned = owned_metadata()

    def include_name(name: str | None, type_: str, parent_names: object) -> bool:
        return type_ != "table" or name in owned.tables

    context = MigrationContext.configure(connection, opts={"include_name": include_name})
    return list(compare_metadata(context, owned))
