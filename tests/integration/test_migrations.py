"""Schema migrations on real SQLite and PostgreSQL: every way a database comes to head (from
nothing, from the first revision, adopted from before leadflow had migrations) ends with the
tables leadflow's models declare and a store that works; processes starting at once on a
fresh database upgrade it once; a rebuild's swap keeps the tables alembic knows."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.engine import Engine

from api.app import create_app
from domain.events import parse_event
from leadflow.bootstrap import open_store, projections
from leadflow.migrations import owned_metadata, schema_differences
from leadflow.settings import Settings
from projections.rebuild import REBUILD_SUFFIX, rebuild
from store.keys import KeyStore, api_keys, hash_key
from store.positions import log_positions
from store.schema import (
    DatabaseAhead,
    DatabaseBehind,
    current_revision,
    head,
    migrated,
    revisions,
)

# Migrations are what these tests are about: each database starts empty.
pytestmark = pytest.mark.fresh_database

ADMIN = {"Authorization": "Bearer lf_test_admin"}
CAPTURE = {"type": "lead.captured", "data": {"email": "ann@example.com", "source": "web"}}


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    settings.data_dir.mkdir(parents=True)
    engine = create_engine(settings.sqlalchemy_url)
    yield engine
    engine.dispose()


def assert_at_head_as_declared(engine: Engine) -> None:
    assert current_revision(engine) == head()
    with engine.connect() as conn:
        assert schema_differences(conn) == []


def posts_and_reads_a_lead(settings: Settings, headers: dict[str, str] = ADMIN) -> None:
    with TestClient(create_app(settings)) as client:
        posted = client.post("/v1/events", json=CAPTURE, headers=headers)
        assert posted.status_code == 202, posted.text
        lead_id = posted.json()["lead_id"]
        assert client.get(f"/v1/leads/{lead_id}/events", headers=headers).status_code == 200


def test_a_fresh_database_upgraded_at_start_has_the_tables_the_models_declare(
    settings: Settings, engine: Engine
) -> None:
    assert current_revision(engine) is None
    posts_and_reads_a_lead(settings)
    assert_at_head_as_declared(engine)


def test_a_database_at_the_first_revision_is_upgraded_at_start_and_works(
    settings: Settings, engine: Engine
) -> None:
    first = revisions()[0]
    assert first != head()
    with migrated(engine, first) as done:
        assert (done.before, done.after) == (None, first)
    assert current_revision(engine) == first
    # A key stored without a key_id, as 0001 allows: 0002 gives it one.
    old_key = "lf_stored_at_the_first_revision"
    with engine.begin() as conn:
        conn.execute(
            api_keys.insert().values(
                key_hash=hash_key(old_key), scopes="ingest,read", created_at=datetime.now(UTC)
            )
        )

    posts_and_reads_a_lead(settings, {"Authorization": f"Bearer {old_key}"})
    assert_at_head_as_declared(engine)
    with engine.connect() as conn:
        key_ids = conn.execute(select(api_keys.c.key_id).where(api_keys.c.name.is_(None)))
        assert key_ids.scalars().all() == ["key_" + hash_key(old_key)[:12]]


# Tables a migration after 0001 creates: no database set up before migrations has them.
CREATED_BY_LATER_MIGRATIONS = (
    "follower_leases",
    "follower_members",
    "imports",
    "lead_data_keys",
    "lead_deadlines",
    "shadow_decisions",
    "user_sessions",
    "users",
    "saved_views",
)
# Indexes and columns a migration after 0001 adds to a table 0001 created.
INDEXES_ADDED_BY_LATER_MIGRATIONS = (
    "ix_leads_region",
    "ix_leads_channel",
    "ix_leads_search",
    "ix_leads_search_scan",
    *(
        f"ix_leads_by_{sort}"
        for sort in ("name", "company", "stage", "score", "last_activity_at", "owner")
    ),
)
ADDED_BY_LATER_MIGRATIONS = {
    "leads": (
        "do_not_contact",
        "do_not_contact_reason",
        "search_text",
        "name_key",
        "company_key",
        "owner_key",
        "stage_rank",
    ),
    "assignments": ("received_at",),
}


def _before_migrations(engine: Engine) -> None:
    """What `create_all` made at every start before leadflow had migrations: today's tables
    but those added since, with `api_keys.key_id` still nullable, and no `alembic_version`."""
    metadata = owned_metadata()
    for name in CREATED_BY_LATER_MIGRATIONS:
        metadata.remove(metadata.tables[name])
    metadata.tables["api_keys"].c.key_id.nullable = True
    leads = metadata.tables["leads"]
    for index in [i for i in leads.indexes if i.name in INDEXES_ADDED_BY_LATER_MIGRATIONS]:
        leads.indexes.remove(index)
    metadata.create_all(engine)
    with engine.begin() as conn:
        for table, columns in ADDED_BY_LATER_MIGRATIONS.items():
            for column in columns:
                conn.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))


def test_a_database_set_up_before_migrations_is_adopted_with_its_data(
    settings: Settings, engine: Engine
) -> None:
    _before_migrations(engine)
    kept_key = "lf_kept_across_the_adoption"
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO api_key_generation (id, generation) VALUES (1, 7)"))
        conn.execute(log_positions.insert().values(follower="dispatcher", position=42))
        conn.execute(
            api_keys.insert().values(
                key_hash=hash_key(kept_key),
                key_id="key_kept",
                scopes="read",
                name="kept",
                prefix=kept_key[:8],
                created_at=datetime.now(UTC),
            )
        )
    assert current_revision(engine) is None

    store = open_store(settings)
    try:
        assert store.positions.get("dispatcher") == 42
        caller = store.keys.lookup(kept_key)
        assert caller is not None and caller.name == "kept"
    finally:
        store.close()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT generation FROM api_key_generation")).scalar() == 7
    assert_at_head_as_declared(engine)
    posts_and_reads_a_lead(settings)


def test_the_tables_stay_as_declared_after_every_read_model_is_rebuilt_and_swapped(
    settings: Settings, engine: Engine
) -> None:
    store = open_store(settings)
    try:
        for email in ("a@example.com", "b@example.com"):
            body = {**CAPTURE, "data": {**CAPTURE["data"], "email": email}}
            event = parse_event(body, now=datetime.now(UTC), phone_region="CN")
            store.append([event], [None])
        for live, building in zip(projections(), projections(REBUILD_SUFFIX), strict=True):
            rebuild(store.event_log, store.engine, live, building)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM leads")).scalar() == 2
        assert not [name for name in inspect(engine).get_table_names() if REBUILD_SUFFIX in name]
        assert_at_head_as_declared(engine)
    finally:
        store.close()


def test_response_times_stored_negative_before_0009_become_zero(
    settings: Settings, engine: Engine
) -> None:
    with migrated(engine, "0007"):
        pass
    when = datetime(2026, 3, 2, 9, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO assignments (lead_id, sequence, owner, how, assigned_at, "
                "first_follow_up_at, first_response_seconds, followups_count, position) "
                "VALUES ('l1', 2, 'rep-a', 'assigned', :at, :at, -3600, 1, 5), "
                "('l2', 2, 'rep-a', 'assigned', :at, :at, 1800, 1, 6)"
            ),
            {"at": when},
        )
        conn.execute(
            text(
                "INSERT INTO follow_ups (lead_id, sequence, rep_id, followed_up_at, is_first, "
                "assignment_sequence, seconds_since_assignment, position) "
                "VALUES ('l1', 3, 'rep-a', :at, true, 2, -3600, 7)"
            ),
            {"at": when},
        )
    with migrated(engine):
        pass
    with engine.connect() as conn:
        assert conn.execute(
            text("SELECT lead_id, first_response_seconds, received_at FROM assignments ORDER BY 1")
        ).all() == [("l1", 0, None), ("l2", 1800, None)]
        assert conn.execute(text("SELECT seconds_since_assignment FROM follow_ups")).all() == [(0,)]
    assert_at_head_as_declared(engine)


def test_without_auto_migrate_a_process_refuses_a_database_behind_head(
    settings: Settings, engine: Engine
) -> None:
    with migrated(engine, revisions()[0]):
        pass
    with pytest.raises(DatabaseBehind, match="leadflow migrate"):
        open_store(settings.model_copy(update={"auto_migrate": False}))
    assert current_revision(engine) == revisions()[0]

    with migrated(engine):
        pass
    open_store(settings.model_copy(update={"auto_migrate": False})).close()


def test_a_database_upgraded_by_a_newer_leadflow_is_refused(
    settings: Settings, engine: Engine
) -> None:
    open_store(settings).close()
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(DatabaseAhead, match="9999"):
        open_store(settings)


def test_processes_starting_at_once_on_a_fresh_database_all_come_up(
    settings: Settings, engine: Engine
) -> None:
    env = {**os.environ, "LEADFLOW_DATA_DIR": str(settings.data_dir)}
    if settings.database_url is not None:
        env["LEADFLOW_DATABASE_URL"] = settings.database_url
    command = [sys.executable, "-m", "leadflow", "keys", "create", "--scope", "read"]
    starting = [
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    finished = [process.communicate(timeout=120) for process in starting]
    assert [process.returncode for process in starting] == [0, 0, 0], [e for _, e in finished]
    assert_at_head_as_declared(engine)
    keys = KeyStore(engine)
    try:
        for out, _ in finished:
            assert keys.lookup(out.strip()) is not None
    finally:
        keys.close()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
