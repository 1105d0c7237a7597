"""The writer of `POST /v1/events` and `/v1/events/batch`: posted events are appended by a
single thread that commits the requests waiting at that moment together (a group commit).

A lone request is appended exactly as before, one transaction. Under concurrent posts the
requests that arrive while a commit is in progress form the next group: one transaction,
one lock of the log, one commit (one fsync on SQLite, one round trip on PostgreSQL) for
all of them, instead of each request queueing on the log's lock in its own thread. Nothing
waits to fill a group, so a single client's latency is unchanged. Every request still gets
its own answer: each append is all or nothing on its own (`EventLog.append_many`), and a
202 is only sent after the commit that made it durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import Histogram

from api.errors import ApiError
from domain.errors import DomainError
from domain.events import IncomingEvent
from leadflow.tracing import current_traceparent
from store.ingest import Appended, PendingAppend
from store.log import LOG_APPENDS

log = logging.getLogger(__name__)

# A group stops growing at this many events: a batch of 1000 is a group of its own.
MAX_GROUP_EVENTS = 1000

GROUP_EVENTS = Histogram(
    "leadflow_ingest_group_commit_events",
    "Events posted per group commit (one transaction and commit for every waiting request)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000),
)

AppendMany = Callable[[Sequence[PendingAppend]], list[list[Appended] | DomainError]]


@dataclass(frozen=True)
class _Request:
    pending: PendingAppend
    loop: asyncio.AbstractEventLoop
    answer: asyncio.Future[list[Appended]]


# A request's future and what to settle it with: its results, or the error that refused it.
_Answer = tuple[asyncio.Future[list[Appended]], list[Appended] | BaseException]


class GroupCommitter:
    """Appends from one thread; `append` is awaited by request handlers on the event loop."""

    def __init__(self, append_many: AppendMany, max_group_events: int = MAX_GROUP_EVENTS) -> None:
        self._append_many = append_many
        self._max_group_events = max_group_events
        self._requests: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="leadflow-writer", daemon=True)
        self._stopping = False
        self._lock = threading.Lock()  # no request is queued behind the stop marker
        self.groups = 0  # groups handed to the store so far (for tests and diagnostics)
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        with contextlib.suppress(RuntimeError):  # no running loop: no `append_from_thread`
            self._loop = asyncio.get_running_loop()
        self._thread.start()

    def stop(self) -> None:
        """Append what is already queued, then end the thread."""
        with self._lock:
            self._stopping = True
            self._requests.put(None)
        self._thread.join()

    async def append(
        self,
        events: Sequence[IncomingEvent],
        keys: Sequence[str | None],
        *,
        scope: str | None = None,
        actor: dict[str, Any] | None = None,
    ) -> list[Appended]:
        """Append `events` (all or nothing) and return their results once committed;
        `keys` are idempotency keys of `scope` (the API key that sent them). Raises what
        `EventLog.append` raises (ItemRejected, ...). With traces on, each event keeps the
        context of the request's span (`leadflow.tracing`); with `actor`, each records who
        posted it."""
        if actor is not None:
            events = [dataclasses.replace(event, actor=actor) for event in events]
        traceparent = current_traceparent()
        if traceparent is not None:  # traces on: the request's span is kept on each event
            events = [dataclasses.replace(event, traceparent=traceparent) for event in events]
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[list[Appended]] = loop.create_future()
        with self._lock:
            if self._stopping:
                raise ApiError(503, "shutting_down", "the API is shutting down; retry")
            self._requests.put(_Request(PendingAppend(events, keys, scope), loop, answer))
        return await answer

    def append_from_thread(
        self, events: list[IncomingEvent], keys: list[str | None], scope: str | None
    ) -> list[Appended]:
        """`append` for a thread that is not the event loop's (an import job): the events
        join the same groups as posted ones, and this waits for their commit. Needs
        `start` to have been called from the running loop."""
        assert self._loop is not None, "start() the writer from the event loop first"
        future = asyncio.run_coroutine_threadsafe(
            self.append(events, keys, scope=scope), self._loop
        )
        return future.result()

    def _run(self) -> None:
        while (first := self._requests.get()) is not None:
            group = [first]
            size = len(first.pending.events)
            last = False
            while size < self._max_group_events:
                try:
                    more = self._requests.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    last = True
                    break
                group.append(more)
                size += len(more.pending.events)
            self._commit(group)
            if last:
                return

    def _commit(self, group: list[_Request]) -> None:
        answers: Sequence[list[Appended] | BaseException]
        try:
            answers = self._append_many([request.pending for request in group])
        except Exception as failed:  # the store is down, ...: every request of the group
            log.debug("group of %d appends failed", len(group), exc_info=True)
            answers = [failed] * len(group)
        self.groups += 1
        events = sum(len(request.pending.events) for request in group)
        GROUP_EVENTS.observe(events)
        appended = sum(
            not result.duplicate
            for answer in answers
            if isinstance(answer, list)
            for result in answer
        )
        if appended:
            LOG_APPENDS.labels("ingest").inc(appended)
        # One wake-up per event loop for the whole group, not one per request.
        by_loop: dict[asyncio.AbstractEventLoop, list[_Answer]] = {}
        for request, answer in zip(group, answers, strict=True):
            by_loop.setdefault(request.loop, []).append((request.answer, answer))
        for loop, settled in by_loop.items():
            # A loop closed meanwhile has no one waiting on the answers.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, settled)


def _settle(answers: list[_Answer]) -> None:
    for future, answer in answers:
        if future.cancelled():  # the client went away; the append stands
            continue
        if isinstance(answer, BaseException):
            future.set_exception(answer)
        else:
            future.set_result(answer)
