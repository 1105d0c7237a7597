"""Waking the log's followers (projector, dispatcher) when the log grows, instead of
reading it on a timer, and the loop they both follow it with (`follow`).

The API appends in another process, so the followers cannot be called; they are told.
SQLite cannot push: one dedicated connection asks `PRAGMA data_version` every few ms
(microseconds, no thread hop; it changes when another connection commits) and only then
whether the log's last id moved, so the followers' own writes (positions, read models) wake
nobody. PostgreSQL: every append sends `NOTIFY` on the log's channel inside its transaction
(`store.log.LogRecorder`; delivered at commit) and one dedicated connection
`LISTEN`s. Either way a follower also reads at least every `poll_seconds`: a missed signal
(a dropped connection) delays an event, never strands it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Self

import psycopg
from eventsourcing_sqlalchemy.recorders import SQLAlchemyApplicationRecorder
from sqlalchemy.engine import URL

from store.log import EventLog

log = logging.getLogger(__name__)

RECONNECT_SECONDS = 1.0


class LogWatch:
    """When a follower should read the log again: after the log grew, and at the latest
    every `poll_seconds`. This base class has no change signal: it is the plain poll.

    A follower takes `seen = watch.changes` before it reads and, when it found nothing new,
    `await watch.wait(seen, stop)`: a change committed after `seen` was taken is never
    slept through, however the read and the signal interleave.
    """

    def __init__(self, poll_seconds: float) -> None:
        self.poll_seconds = poll_seconds
        self.changes = 0  # how many times the log was seen to grow
        self._changed = asyncio.Event()
        self._following: asyncio.Task[None] | None = None

    async def wait(self, seen: int, stop: asyncio.Event) -> None:
        """Return once the log grew after `self.changes` was `seen`, once `stop` is set, or
        after `poll_seconds`, whichever comes first."""
        if self.changes != seen or stop.is_set():
            return
        changed = asyncio.ensure_future(self._changed.wait())
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait(
                {changed, stopping}, timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            changed.cancel()
            stopping.cancel()

    def _signal(self) -> None:
        self.changes += 1
        self._changed.set()
        self._changed = asyncio.Event()  # waiters of the set event wake; later ones wait anew

    async def _start(self) -> None:
        """Take the baseline a change is measured against (before any follower reads)."""

    async def _follow(self) -> None:
        """Signal every change until cancelled."""

    async def _close(self) -> None:
        """Release what `_start` and `_follow` opened."""

    async def __aenter__(self) -> Self:
        await self._start()
        self._following = asyncio.create_task(self._follow())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._following is not None:
            self._following.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._following
        await self._close()


class SQLiteLogWatch(LogWatch):
    """Checks every `check_seconds` whether another connection grew the log."""

    def __init__(self, path: str, table: str, poll_seconds: float, check_seconds: float) -> None:
        super().__init__(poll_seconds)
        self.path = path
        self.check_seconds = check_seconds
        self._last_id_query = f'SELECT max(id) FROM "{table}"'
        self._connection: sqlite3.Connection | None = None
        self._version: int | None = None
        self._last_id: int | None = None

    async def _start(self) -> None:
        # timeout=0: the checks run on the event loop, which must never wait on a lock; a
        # check that finds the database busy is made again at the next tick.
        self._connection = sqlite3.connect(self.path, isolation_level=None, timeout=0)
        self._check()

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self.check_seconds)
            if self._check():
                self._signal()

    def _check(self) -> bool:
        """Whether the log grew since the last check that could tell."""
        assert self._connection is not None
        try:
            (version,) = self._connection.execute("PRAGMA data_version").fetchone()
            if version == self._version:
                return False
            (last_id,) = self._connection.execute(self._last_id_query).fetchone()
        except sqlite3.Error as exc:
            # Briefly locked (a writer closing, a checkpoint): the next check reads the
            # last id again, so a change is late by one tick, never missed.
            log.debug("log watch: cannot check the log now (%s)", exc)
            return False
        self._version = version
        grew = last_id != self._last_id
        self._last_id = last_id
        return grew

    async def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()


class PostgresLogWatch(LogWatch):
    """LISTENs on the log's NOTIFY channel on a connection of its own."""

    def __init__(self, conninfo: str, channel: str, poll_seconds: float) -> None:
        super().__init__(poll_seconds)
        self.conninfo = conninfo
        self.channel = channel
        self._connection: psycopg.AsyncConnection[Any] | None = None

    async def _start(self) -> None:
        try:
            await self._listen()
        except psycopg.Error as exc:
            # The followers still poll; `_follow` keeps trying to listen.
            log.warning("cannot listen for log changes yet (%s)", exc)

    async def _listen(self) -> None:
        connection = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
        await connection.execute(f'LISTEN "{self.channel}"')
        self._connection = connection

    async def _follow(self) -> None:
        while True:
            try:
                if self._connection is None:
                    await self._listen()
                    self._signal()  # something may have been appended while it was away
                assert self._connection is not None
                async for _ in self._connection.notifies():
                    self._signal()
            except psycopg.Error as exc:
                log.warning(
                    "listening for log changes failed (%s); again in %.0fs", exc, RECONNECT_SECONDS
                )
                await self._close()
                await asyncio.sleep(RECONNECT_SECONDS)

    async def _close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            with contextlib.suppress(psycopg.Error):
                await connection.close()


def open_log_watch(
    event_log: EventLog, url: URL, *, poll_seconds: float, check_seconds: float
) -> LogWatch:
    """The watch for the log at `url` (the store's SQLAlchemy URL); use it as `async with`.
    An in-memory SQLite database has no other connection to watch: there it only polls."""
    recorder = event_log.recorder
    assert isinstance(recorder, SQLAlchemyApplicationRecorder)
    table = recorder.events_table_name
    backend = url.get_backend_name()
    if backend == "sqlite" and url.database not in (None, "", ":memory:"):
        assert url.database is not None
        return SQLiteLogWatch(url.database, table, poll_seconds, check_seconds)
    if backend == "postgresql":
        conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        return PostgresLogWatch(conninfo, recorder.channel_name, poll_seconds)
    return LogWatch(poll_seconds)


# A follower that fails waits this long at the most before it tries again.
MAX_BACKOFF_SECONDS = 5.0
# How often a follower looks for quarantined streams to retry (`Every`): an operator's
# retry or skip is acted on within about this long, and the first automatic retry comes
# 2 s after a failure at the earliest.
QUARANTINE_CHECK_SECONDS = 1.0


class Every:
    """True at most once per `seconds` (the first time at once): for what a follower does
    on a schedule of its own between pages, not on every wake of the log."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._next = 0.0

    def __call__(self) -> bool:
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + self.seconds
        return True


async def follow(
    step: Callable[[], Awaitable[int]],
    stop: asyncio.Event,
    watch: LogWatch,
    *,
    page_size: int,
    what: str,
    batch_seconds: float = 0.0,
) -> None:
    """Run a follower until `stop` is set: `step` handles the next page of the log (and
    returns how many events it read); when it read less than `page_size` it reached the
    end, and the next step waits until `watch` says the log grew (at the latest
    `watch.poll_seconds`), then `batch_seconds` more so a burst is handled in one pass.
    A failing step (an outage: one lead's failures are the follower's to keep) is logged
    once per attempt and tried again after a backoff that doubles up to
    MAX_BACKOFF_SECONDS."""
    backoff = watch.poll_seconds
    while not stop.is_set():
        seen = watch.changes  # taken before the read: a later append ends the wait below
        try:
            handled = await step()
            backoff = watch.poll_seconds
        except Exception as exc:
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            # One line per failed attempt: an outage would otherwise flood the log.
            log.warning("%s failed (%s); retrying in %.1fs", what, exc, backoff)
            log.debug("%s failure", what, exc_info=True)
            await sleep_or_stop(stop, backoff)
            continue
        if handled < page_size:
            await watch.wait(seen, stop)
            await sleep_or_stop(stop, batch_seconds)


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or less if `stop` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
