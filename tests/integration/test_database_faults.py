"""Database faults through the API, made for real: SQLite held by another writer, a full
disk, PostgreSQL gone (a proxy cut) and back. Each answers 503 naming its cause with a
`Retry-After`, never a 500 or a hang; the API recovers by itself once the fault clears,
and every event answered 202 is in the log exactly once."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from tcp_proxy import TcpProxy

from api.app import create_app
from api.ingest_writer import GroupCommitter
from leadflow.bootstrap import Store
from leadflow.settings import Settings

ADMIN = {"Authorization": "Bearer lf_test_admin"}
# How long a post may take to be answered while the database is away ("never a hang").
ANSWER_WITHIN_SECONDS = 5.0


def capture(email: str) -> dict[str, Any]:
    return {
        "type": "lead.captured",
        "event_id": str(uuid.uuid4()),
        "data": {"email": email, "source": "website"},
    }


def timed_post(client: TestClient, body: dict[str, Any]) -> httpx.Response:
    started = time.monotonic()
    response = client.post("/v1/events", json=body, headers=ADMIN)
    elapsed = time.monotonic() - started
    assert elapsed < ANSWER_WITHIN_SECONDS, f"answered after {elapsed:.1f} s"
    return response


def assert_fault(response: httpx.Response, code: str) -> None:
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert (error["code"], error["details"]) == (code, [])
    assert error["message"]
    assert int(response.headers["Retry-After"]) > 0


def logged_event_ids(client: TestClient) -> Counter[str]:
    """How often each external lead event id is in the log."""
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    events, _ = store.event_log.read_lead_events_after(0, 100_000)
    return Counter(event.event_id for event in events)


def assert_each_logged_once(client: TestClient, accepted: list[dict[str, Any]]) -> None:
    """Every accepted post is in the log once, and posting it again is a duplicate."""
    logged = logged_event_ids(client)
    assert [logged[body["event_id"]] for body in accepted] == [1] * len(accepted)
    for body in accepted:
        again = client.post("/v1/events", json=body, headers=ADMIN)
        assert again.status_code == 202 and again.json()["duplicate"] is True


def base_settings(data_dir: Path, **overrides: Any) -> Settings:
    return Settings(
        data_dir=data_dir,
        bootstrap_admin_key="lf_test_admin",
        temporal_address="127.0.0.1:1",  # ingest never needs Temporal
        task_queue=f"leadflow-test-{uuid.uuid4().hex[:8]}",
        **overrides,
    )


# --- SQLite held by another writer --------------------------------------------------------


def test_sqlite_held_by_another_writer_is_503_busy_then_the_same_post_is_accepted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = base_settings(tmp_path / "data", sqlite_busy_timeout_seconds=0.2)
    with TestClient(create_app(settings)) as client:
        body = capture("ann@example.com")
        holder = sqlite3.connect(settings.data_dir / "leadflow.db", isolation_level=None)
        try:
            holder.execute("BEGIN EXCLUSIVE")  # e.g. a backup or a second process writing
            with caplog.at_level(logging.WARNING):
                assert_fault(timed_post(client, body), "database_busy")
        finally:
            holder.close()
        # The operator sees one line naming the route and the cause, not a traceback.
        [logged] = [r for r in caplog.records if r.name == "api.errors"]
        assert logged.levelno == logging.WARNING
        assert "POST /v1/events" in logged.getMessage()
        assert (
            "database_busy" in logged.getMessage() and "database is locked" in logged.getMessage()
        )
        assert logged.exc_info is None

        accepted = timed_post(client, body)
        assert accepted.status_code == 202
        assert accepted.json()["duplicate"] is False  # the 503 wrote nothing
        assert_each_logged_once(client, [body])


def test_a_database_error_that_is_not_a_fault_stays_a_500(tmp_path: Path) -> None:
    settings = base_settings(tmp_path / "data")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        with sqlite3.connect(settings.data_dir / "leadflow.db") as conn:
            conn.execute("DROP TABLE leads")  # a bug: no retry can bring the table back
        response = client.get("/v1/leads", headers=ADMIN)
        assert response.status_code == 500
        assert "Retry-After" not in response.headers


# --- a full disk ----------------------------------------------------------------------------


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted at `path` (skips the test where mounting is not allowed)."""
    path.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill (needs root): {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=True)


def fill(disk: Path, leave_bytes: int) -> Path:
    """Write a file that leaves `leave_bytes` free on `disk`."""
    stats = os.statvfs(disk)
    free = stats.f_bavail * stats.f_frsize
    filler = disk / "filler"
    with filler.open("wb") as out:
        out.write(b"\0" * max(0, free - leave_bytes))
    return filler


def test_a_full_disk_is_503_storage_full_until_space_is_freed(tmp_path: Path) -> None:
    with small_disk(tmp_path / "data", "8m") as disk:
        settings = base_settings(disk)
        with TestClient(create_app(settings)) as client:
            accepted: list[dict[str, Any]] = []
            refused: list[dict[str, Any]] = []
            first = capture("first@example.com")
            assert timed_post(client, first).status_code == 202
            accepted.append(first)

            filler = fill(disk, leave_bytes=16 * 1024)
            for i in range(200):
                body = capture(f"lead-{i}@example.com")
                response = timed_post(client, body)
                if response.status_code == 202:
                    accepted.append(body)
                    continue
                assert_fault(response, "storage_full")
                refused.append(body)
                if len(refused) == 3:
                    break
            assert len(refused) == 3, "the disk never filled"

            filler.unlink()
            for body in refused:  # the client's retry, once there is room again
                retried = timed_post(client, body)
                assert retried.status_code == 202, retried.text
                accepted.append(body)
            assert_each_logged_once(client, accepted)


# --- PostgreSQL down and back ----------------------------------------------------------------


@pytest.fixture
def postgres_proxy() -> Iterator[TcpProxy]:
    proxy = TcpProxy("127.0.0.1", 5432)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def client_via_proxy(
    tmp_path: Path, database_url: str | None, postgres_proxy: TcpProxy
) -> Iterator[TestClient]:
    """The API on a fresh PostgreSQL database, reached through `postgres_proxy`. A connect
    timeout in the URL bounds how long a connection attempt may wait (the proxy refuses at
    once, but a black-holed server would not)."""
    assert database_url is not None
    url = (
        make_url(database_url)
        .set(port=postgres_proxy.port)
        .update_query_dict({"connect_timeout": "2"})
        .render_as_string(hide_password=False)
    )
    with TestClient(create_app(base_settings(tmp_path / "data", database_url=url))) as client:
        yield client


postgres_only = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


@postgres_only
def test_postgresql_down_is_503_unavailable_and_posts_succeed_again_without_restart(
    client_via_proxy: TestClient, postgres_proxy: TcpProxy
) -> None:
    client = client_via_proxy
    accepted: list[dict[str, Any]] = []
    for i in range(3):
        body = capture(f"before-{i}@example.com")
        assert timed_post(client, body).status_code == 202
        accepted.append(body)

    postgres_proxy.stop()
    refused = [capture(f"during-{i}@example.com") for i in range(3)]
    for body in refused:
        assert_fault(timed_post(client, body), "database_unavailable")
    ready = client.get("/readyz")
    assert ready.status_code == 503
    [database] = [d for d in ready.json()["error"]["details"] if d["component"] == "database"]
    assert database["code"] == "database_unavailable"
    lead = client.get(f"/v1/leads/{uuid.uuid4()}", headers=ADMIN)  # reads fail the same way
    assert_fault(lead, "database_unavailable")

    postgres_proxy.start()
    # The very next posts succeed: no restart, no failed request to discover the new server.
    for body in [*refused, capture("after@example.com")]:
        response = timed_post(client, body)
        assert response.status_code == 202, response.text
        accepted.append(body)
    assert client.get("/readyz").json()["checks"]["database"] == "up"
    assert_each_logged_once(client, accepted)


@postgres_only
def test_concurrent_posts_while_postgresql_is_down_each_get_503_and_are_grouped_after(
    client_via_proxy: TestClient, postgres_proxy: TcpProxy, database_url: str
) -> None:
    client = client_via_proxy
    writer: GroupCommitter = client.app.state.writer  # type: ignore[attr-defined]
    posts = 16

    def post_all(bodies: list[dict[str, Any]]) -> list[httpx.Response]:
        with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
            return list(pool.map(lambda body: timed_post(client, body), bodies))

    postgres_proxy.stop()
    refused = [capture(f"down-{i}@example.com") for i in range(posts)]
    for response in post_all(refused):
        assert_fault(response, "database_unavailable")

    postgres_proxy.start()
    # Another writer holds the log's table for a moment, so the posts queue up behind the
    # first one as they do under load: the writer must commit them in groups again.
    engine = create_engine(make_url(database_url))
    groups_before = writer.groups
    background = ThreadPoolExecutor(max_workers=1)
    try:
        with engine.begin() as holder:
            holder.execute(text("LOCK TABLE leadflow_events IN EXCLUSIVE MODE"))
            answers = background.submit(post_all, refused)
            time.sleep(1.0)
        # Committed: the lock is released and the queued posts are written.
        responses = answers.result(timeout=30)
    finally:
        background.shutdown()
        engine.dispose()
    assert [r.status_code for r in responses] == [202] * posts
    assert writer.groups - groups_before < posts // 2
    assert_each_logged_once(client, refused)
