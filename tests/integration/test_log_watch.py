"""The log's followers wake when another process appends, on real SQLite and PostgreSQL.

Every follower here has a fallback poll of 60 s and every wait gives up after 30 s: an
event that arrives was announced by the watch (SQLite `PRAGMA data_version`, PostgreSQL
LISTEN/NOTIFY), not found by the poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from support import until as poll_until

from delivery.dispatcher import Dispatcher
from delivery.temporal import is_outage
from domain.events import parse_event
from domain.state import LoggedEvent
from leadflow.bootstrap import Store
from leadflow.settings import Settings
from projections.leads import LeadsProjection
from projections.projector import Projector
from store.log_watch import LogWatch, open_log_watch

FALLBACK_SECONDS = 60.0
GIVE_UP_SECONDS = 30.0

# Another process appends one capture to the same store (SQLite: another connection, the
# only kind `PRAGMA data_version` reports; PostgreSQL: another session).
APPEND_FROM_ANOTHER_PROCESS = """
import sys
from datetime import UTC, datetime
from domain.events import parse_event
from leadflow.bootstrap import open_store
from leadflow.settings import Settings

store = open_store(Settings())
body = {"type": "lead.captured", "data": {"email": sys.argv[1], "source": "website"}}
store.append([parse_event(body, now=datetime.now(UTC), phone_region="CN")], [None])
store.close()
"""


def watch_of(store: Store) -> LogWatch:
    return open_log_watch(
        store.event_log, store.engine.url, poll_seconds=FALLBACK_SECONDS, check_seconds=0.005
    )


async def append_from_another_process(settings: Settings, email: str) -> None:
    env = {**os.environ, "LEADFLOW_DATA_DIR": str(settings.data_dir)}
    env.pop("LEADFLOW_DATABASE_URL", None)
    if settings.database_url is not None:
        env["LEADFLOW_DATABASE_URL"] = settings.database_url
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        APPEND_FROM_ANOTHER_PROCESS,
        email,
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()


def capture_here(store: Store, email: str) -> None:
    body = {"type": "lead.captured", "data": {"email": email, "source": "website"}}
    store.append([parse_event(body, now=datetime.now(UTC), phone_region="CN")], [None])


async def until(check: Callable[[], bool], what: str) -> None:
    # Well before the fallback poll: a wake-up that came did it, not the 60 s poll.
    await poll_until(check, f"{what} (a 60 s poll would have)", GIVE_UP_SECONDS, 0.05)


@contextlib.asynccontextmanager
async def following(
    run_forever: Callable[[asyncio.Event], Coroutine[Any, Any, None]],
) -> AsyncIterator[None]:
    """Runs a follower's `run_forever(stop)` for the block, then stops it."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_forever(stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, GIVE_UP_SECONDS)


async def test_an_append_from_another_process_wakes_the_watch(
    store: Store, settings: Settings
) -> None:
    stop = asyncio.Event()
    async with watch_of(store) as watch:
        seen = watch.changes
        await append_from_another_process(settings, "ann@example.com")
        await asyncio.wait_for(watch.wait(seen, stop), GIVE_UP_SECONDS)
        assert watch.changes > seen


async def test_writes_that_do_not_grow_the_log_wake_nobody(
    store: Store, settings: Settings
) -> None:
    stop = asyncio.Event()
    async with watch_of(store) as watch:
        seen = watch.changes
        # A follower's own bookkeeping (here from this process: another connection than
        # the watch's) is no news to the followers.
        store.positions.set("someone", 7)
        await asyncio.sleep(0.2)
        await append_from_another_process(settings, "ann@example.com")
        await asyncio.wait_for(watch.wait(seen, stop), GIVE_UP_SECONDS)
        assert watch.changes == seen + 1


async def test_the_dispatcher_delivers_what_another_process_appends(
    store: Store, settings: Settings
) -> None:
    delivered: list[LoggedEvent] = []

    async def deliver(event: LoggedEvent) -> None:
        delivered.append(event)

    dispatcher = Dispatcher(
        store.event_log,
        store.positions,
        deliver,
        store.quarantine,
        is_outage=is_outage,
        poll_seconds=FALLBACK_SECONDS,
    )
    async with watch_of(store) as watch, following(lambda s: dispatcher.run_forever(s, watch)):
        capture_here(store, "ann@example.com")
        await until(lambda: len(delivered) == 1, "the first capture delivered")
        # The dispatcher is now idle, waiting on the watch.
        await append_from_another_process(settings, "bob@example.com")
        await until(lambda: len(delivered) == 2, "the other process's capture delivered")

    assert [(e.type, e.data["email"]) for e in delivered] == [
        ("lead.captured", "ann@example.com"),
        ("lead.captured", "bob@example.com"),
    ]
    # The position moved past both pages: a restart delivers nothing again.
    assert await dispatcher.dispatch_page() == 0
    assert delivered[2:] == []


async def test_the_projector_follows_what_another_process_appends(
    store: Store, settings: Settings
) -> None:
    table = LeadsProjection().table

    def emails() -> list[str]:
        with store.engine.connect() as conn:
            rows = conn.execute(select(table.c.email).order_by(table.c.email))
            return [row.email for row in rows]

    projector = Projector(
        store.event_log, store.engine, [LeadsProjection()], poll_seconds=FALLBACK_SECONDS
    )
    async with watch_of(store) as watch, following(lambda s: projector.run_forever(s, watch)):
        capture_here(store, "ann@example.com")
        await until(lambda: emails() == ["ann@example.com"], "the first capture projected")
        await append_from_another_process(settings, "bob@example.com")
        await until(
            lambda: emails() == ["ann@example.com", "bob@example.com"],
            "the other process's capture projected",
        )
