"""What-if replays started over HTTP (`POST /v1/replays`): their state in the `replays`
table, so any API replica answers `GET /v1/replays/{id}` and takes a cancel, and the worker
thread that runs them, one at a time, in the API process that accepted them.

A process holds at most `MAX_QUEUED` unfinished replays; each runs within a time budget
and stops at its next progress report once cancelled (the cancel is a status in the table,
so any replica may record it).

A process that runs replays keeps a heartbeat on its unfinished ones; one whose heartbeat
is older than `STALE_AFTER` was interrupted (its process died or restarted) and is marked
`failed` (`cancelled`, if a cancel was pending) the next time anyone looks, or when an API
starts, instead of staying unfinished.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text
from sqlalchemy.engine import Engine

from domain.errors import Conflict, DomainError
from replay.diff import to_json
from replay.whatif import PHASES, ReplayOverTime, WhatIf, answer
from store.jobs import STALE_AFTER, JobRows, JobWorker
from store.log import EventLog
from store.rulebook import Rulebook
from store.times import utc

log = logging.getLogger(__name__)

QUEUED, RUNNING, CANCELLING = "queued", "running", "cancelling"
SUCCEEDED, FAILED, CANCELLED = "succeeded", "failed", "cancelled"

REPLAY_RUNS = Counter(
    "leadflow_replay_runs", "What-if replays this process ran, by how they ended", ["status"]
)
# `cancelling`: a cancel was recorded while it ran; it ends `cancelled` at its next report.
UNFINISHED = (QUEUED, RUNNING, CANCELLING)

# Unfinished replays (queued and running) one API process holds; one more is refused
# (429) with a Retry-After of `RETRY_AFTER_SECONDS`, a guess at when one will have ended.
MAX_QUEUED = 4
RETRY_AFTER_SECONDS = 30

# Progress is written, and a cancel noticed, at most this often (a replay reports every
# few hundred events).
PROGRESS_EVERY_SECONDS = 1.0

INTERRUPTED = "interrupted: the API process running this replay stopped; post it again"

metadata = MetaData()

replays = Table(
    "replays",
    metadata,
    Column("replay_id", String(36), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("request", Text, nullable=False),
    Column("done", Integer, nullable=False),
    Column("total", Integer, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("runner", String(64), nullable=False),
    Column("heartbeat_at", DateTime(timezone=True), nullable=False),
    Column("result", Text, nullable=True),
    Column("error", Text, nullable=True),
)


class ReplayNotFound(DomainError):
    code = "replay_not_found"


class ReplayFinished(Conflict):
    """A cancel of a replay that has already ended (succeeded, failed or cancelled)."""

    code = "replay_finished"


class TooManyReplays(DomainError):
    """This API process already holds `MAX_QUEUED` unfinished replays; nothing was recorded.
    Ask again after `retry_after_seconds`."""

    code = "too_many_replays"
    retry_after_seconds = RETRY_AFTER_SECONDS


class ReplayStopped(Exception):
    """Raised inside a running replay when its process is stopping."""


class ReplayNoLongerRunning(Exception):
    """Raised inside a running replay whose row is no longer `running`: it was cancelled
    (from any replica), or given up as interrupted."""


def over_time_error(limit_seconds: float) -> str:
    """The `error` of a replay stopped by its time budget: what happened and what to do."""
    return (
        f"the replay exceeded its time budget of {limit_seconds:g} s "
        "(LEADFLOW_REPLAY_TIME_LIMIT_SECONDS) and was stopped; replay fewer leads: "
        "a shorter capture window (`from`/`to`) or one lead (`lead_id`)"
    )


@dataclass(frozen=True)
class ReplayRun:
    """A replay as `GET /v1/replays/{id}` shows it."""

    replay_id: str
    status: str
    request: dict[str, Any]
    done: int
    total: int | None
    created_at: datetime
    finished_at: datetime | None
    result: dict[str, Any] | None
    error: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "replay_id": self.replay_id,
            "status": self.status,
            "progress": {"done": self.done, "total": self.total},
            "created_at": self.created_at.isoformat(),
            "finished_at": None if self.finished_at is None else self.finished_at.isoformat(),
            "request": self.request,
            "result": self.result,
            "error": self.error,
        }


class ReplayProgress:
    """A replay's progress as `GET /v1/replays/{id}` shows it: the event replays done in
    both phases out of twice the selected events. The phases may run at once, their
    reports interleaved, so each phase's count is kept and the two are added."""

    def __init__(self) -> None:
        self.done_in = dict.fromkeys(PHASES, 0)
        self.total = 0

    def update(self, phase: str, done: int, events: int) -> None:
        """`phase` has replayed `done` of its `events`."""
        self.done_in[phase] = done
        self.total = events * len(PHASES)

    @property
    def done(self) -> int:
        return sum(self.done_in.values())


class ReplayRuns(JobRows):
    """The `replays` table. A finished replay (succeeded, failed or cancelled) never
    changes again."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine, replays, UNFINISHED, lambda i: ReplayNotFound(f"no replay {i}"))

    def create(self, request: Mapping[str, Any], runner: str, now: datetime) -> str:
        """Record a queued replay; returns its id."""
        replay_id = str(uuid.uuid4())
        with self.engine.begin() as conn:
            conn.execute(
                replays.insert().values(
                    replay_id=replay_id,
                    status=QUEUED,
                    request=json.dumps(request),
                    done=0,
                    total=None,
                    created_at=now,
                    runner=runner,
                    heartbeat_at=now,
                )
            )
        return replay_id

    def get(self, replay_id: str, now: datetime) -> ReplayRun:
        """The replay, with an interrupted one reported (and recorded) as failed, or as
        cancelled when a cancel was pending; raises ReplayNotFound."""
        row = self.row(replay_id)
        heartbeat_at = utc(row.heartbeat_at)
        assert heartbeat_at is not None
        if row.status in UNFINISHED and heartbeat_at < now - STALE_AFTER:
            stale = replays.c.heartbeat_at < now - STALE_AFTER
            self._fail_unfinished(now, replays.c.replay_id == replay_id, stale)
            row = self.row(replay_id)
        created_at = utc(row.created_at)
        assert created_at is not None
        return ReplayRun(
            replay_id=row.replay_id,
            status=row.status,
            request=json.loads(row.request),
            done=row.done,
            total=row.total,
            created_at=created_at,
            finished_at=utc(row.finished_at),
            result=None if row.result is None else json.loads(row.result),
            error=row.error,
        )

    def started(self, replay_id: str) -> bool:
        """Mark the replay running; False when it is no longer queued (cancelled, or
        failed as interrupted)."""
        return self.update(replay_id, (QUEUED,), status=RUNNING)

    def progressed(self, replay_id: str, done: int, total: int) -> bool:
        """Record the running replay's progress; False when it is no longer running (a
        cancel is pending, or it was failed as interrupted): its run should stop."""
        return self.update(replay_id, (RUNNING,), done=done, total=total)

    def succeeded(
        self, replay_id: str, result: Mapping[str, Any], total: int, at: datetime
    ) -> None:
        """The running replay's report; one cancelled meanwhile ends `cancelled`."""
        counts = {"done": total, "total": total}
        self._end(replay_id, counts, at, status=SUCCEEDED, result=json.dumps(result))
        REPLAY_RUNS.labels(SUCCEEDED).inc()

    def failed(self, replay_id: str, error: str, done: int, at: datetime) -> None:
        """The running replay failed after `done` event replays; one cancelled meanwhile
        ends `cancelled`."""
        self._end(replay_id, {"done": done}, at, status=FAILED, error=error)
        REPLAY_RUNS.labels(FAILED).inc()

    def cancelled(self, replay_id: str, done: int, at: datetime) -> None:
        """The running replay stopped for a pending cancel after `done` event replays: it
        ends `cancelled`."""
        self._end(replay_id, {"done": done}, at)
        REPLAY_RUNS.labels(CANCELLED).inc()

    def cancel(self, replay_id: str, now: datetime) -> str:
        """Cancel the replay, from any process: a queued one ends `cancelled` now, a
        running one becomes `cancelling` and its runner ends it `cancelled` at its next
        progress report. Returns the status it now has. Raises ReplayNotFound, and
        ReplayFinished when it has already ended."""
        self.get(replay_id, now)  # raises ReplayNotFound; ends an interrupted one first
        if self.update(replay_id, (QUEUED,), status=CANCELLED, finished_at=now):
            return CANCELLED
        if self.update(replay_id, (RUNNING, CANCELLING), status=CANCELLING):
            return CANCELLING
        status = self.row(replay_id).status
        raise ReplayFinished(f"replay {replay_id} has already ended: {status}")

    def fail_interrupted(self, now: datetime) -> int:
        """End every unfinished replay whose runner stopped beating; how many."""
        return self._fail_unfinished(now, replays.c.heartbeat_at < now - STALE_AFTER)

    def abandon(self, runner: str, now: datetime) -> None:
        """End every unfinished replay of `runner` (it is stopping)."""
        self._fail_unfinished(now, replays.c.runner == runner)

    def _fail_unfinished(self, now: datetime, *conditions: Any) -> int:
        """Unfinished replays that will not run on: failed as interrupted, or cancelled
        when a cancel was pending (what was asked of them)."""
        with self.engine.begin() as conn:
            cancelled = conn.execute(
                replays.update()
                .where(replays.c.status == CANCELLING, *conditions)
                .values(status=CANCELLED, finished_at=now)
            )
            failed = conn.execute(
                replays.update()
                .where(replays.c.status.in_((QUEUED, RUNNING)), *conditions)
                .values(status=FAILED, error=INTERRUPTED, finished_at=now)
            )
        return int(cancelled.rowcount) + int(failed.rowcount)

    def _end(self, replay_id: str, counts: Mapping[str, int], at: datetime, **outcome: Any) -> None:
        """A running replay's `outcome` and how far it got (`counts`); with a cancel
        pending, `cancelled` instead."""
        ended = {**counts, "finished_at": at}
        if outcome and self.update(replay_id, (RUNNING,), **ended, **outcome):
            return
        self.update(replay_id, (CANCELLING,), status=CANCELLED, **ended)


class ReplayRunner:
    """Runs this process's replays on one worker thread, in the order they were posted,
    with `replay.whatif.answer` (what `leadflow replay` runs), each within
    `time_limit_seconds`; holds at most `MAX_QUEUED` unfinished ones and keeps their
    heartbeat (`store.jobs.JobWorker`)."""

    def __init__(
        self,
        runs: ReplayRuns,
        event_log: EventLog,
        rulebook: Rulebook,
        *,
        time_limit_seconds: float | None = None,
    ) -> None:
        self.runs = runs
        self.event_log = event_log
        self.rulebook = rulebook
        self.time_limit_seconds = time_limit_seconds
        self.worker = JobWorker[WhatIf]("replay", runs, self._answer_unless_cancelled)

    def start(self) -> None:
        """End the replays interrupted by a stopped process, then start the worker and
        the heartbeat."""
        self.worker.start()

    def submit(self, question: WhatIf, request: Mapping[str, Any]) -> str:
        """Queue a replay of `question` (`request` is what GET shows of it); its id.
        Raises TooManyReplays, recording nothing, when this process already holds
        `MAX_QUEUED` unfinished replays."""
        return self.worker.submit(
            question,
            lambda runner: self.runs.create(request, runner, datetime.now(UTC)),
            MAX_QUEUED,
            lambda: TooManyReplays(
                f"this API process already holds {MAX_QUEUED} unfinished replays; "
                f"try again in {RETRY_AFTER_SECONDS} s, or cancel one"
            ),
        )

    def stop(self) -> None:
        """Stop the running replay at its next progress report; it and the queued ones
        end as interrupted (or cancelled, if a cancel was pending)."""
        self.worker.stop()

    def _answer_unless_cancelled(self, replay_id: str, question: WhatIf) -> None:
        if self.runs.started(replay_id):  # not cancelled while it waited
            self._answer(replay_id, question)

    def _answer(self, replay_id: str, question: WhatIf) -> None:
        last_write = float("-inf")
        progress = ReplayProgress()

        def report(phase: str, done: int, events: int) -> None:
            nonlocal last_write
            if self.worker.stopping.is_set():
                raise ReplayStopped
            progress.update(phase, done, events)
            if time.monotonic() - last_write >= PROGRESS_EVERY_SECONDS:
                if not self.runs.progressed(replay_id, progress.done, progress.total):
                    raise ReplayNoLongerRunning
                last_write = time.monotonic()

        try:
            diff = answer(
                question,
                self.event_log,
                self.rulebook,
                report,
                time_limit=self.time_limit_seconds,
            )
        except ReplayNoLongerRunning:
            self.runs.cancelled(replay_id, progress.done, datetime.now(UTC))
        except ReplayStopped:
            self.runs.failed(replay_id, INTERRUPTED, progress.done, datetime.now(UTC))
        except ReplayOverTime as over:
            log.warning("replay %s stopped: %s", replay_id, over)
            error = over_time_error(over.limit_seconds)
            self.runs.failed(replay_id, error, progress.done, datetime.now(UTC))
        except Exception as exc:
            log.exception("replay %s failed", replay_id)
            error = f"{type(exc).__name__}: {exc}"
            self.runs.failed(replay_id, error, progress.done, datetime.now(UTC))
        else:
            self.runs.succeeded(replay_id, to_json(diff), progress.total, datetime.now(UTC))
