"""What-if replays started over HTTP (`POST /v1/replays`): their state in the `replays`
table, so any API replica answers `GET /v1/replays/{id}`, and the worker thread that runs
them, one at a time, in the API process that accepted them.

A process that runs replays keeps a heartbeat on its unfinished ones; one whose heartbeat
is older than `STALE_AFTER` was interrupted (its process died or restarted) and is marked
`failed` the next time anyone looks, or when an API starts, instead of staying `running`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, select
from sqlalchemy.engine import Engine

from domain.errors import DomainError
from leadflow.eventlog import EventLog
from leadflow.rulebook import Rulebook
from replay.diff import to_json
from replay.whatif import PHASES, WhatIf, answer

log = logging.getLogger(__name__)

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
UNFINISHED = (QUEUED, RUNNING)

HEARTBEAT_EVERY = timedelta(seconds=5)
STALE_AFTER = timedelta(seconds=30)
# Progress is written at most this often (a replay reports every few hundred events).
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


class ReplayStopped(Exception):
    """Raised inside a running replay when its process is stopping."""


def _utc(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; every time stored here is UTC.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


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


class ReplayRuns:
    """The `replays` table. A finished replay (succeeded or failed) never changes again."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

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
        """The replay, with an interrupted one reported (and recorded) as failed; raises
        ReplayNotFound."""
        row = self._row(replay_id)
        heartbeat_at = _utc(row.heartbeat_at)
        assert heartbeat_at is not None
        if row.status in UNFINISHED and heartbeat_at < now - STALE_AFTER:
            stale = replays.c.heartbeat_at < now - STALE_AFTER
            self._fail_unfinished(now, replays.c.replay_id == replay_id, stale)
            row = self._row(replay_id)
        created_at = _utc(row.created_at)
        assert created_at is not None
        return ReplayRun(
            replay_id=row.replay_id,
            status=row.status,
            request=json.loads(row.request),
            done=row.done,
            total=row.total,
            created_at=created_at,
            finished_at=_utc(row.finished_at),
            result=None if row.result is None else json.loads(row.result),
            error=row.error,
        )

    def _row(self, replay_id: str) -> Any:
        with self.engine.connect() as conn:
            row = conn.execute(select(replays).where(replays.c.replay_id == replay_id)).first()
        if row is None:
            raise ReplayNotFound(f"no replay {replay_id}")
        return row

    def started(self, replay_id: str) -> bool:
        """Mark the replay running; False when it is no longer queued (already failed)."""
        return self._update(replay_id, (QUEUED,), status=RUNNING)

    def progressed(self, replay_id: str, done: int, total: int) -> None:
        self._update(replay_id, (RUNNING,), done=done, total=total)

    def succeeded(
        self, replay_id: str, result: Mapping[str, Any], total: int, at: datetime
    ) -> None:
        self._update(
            replay_id,
            (RUNNING,),
            status=SUCCEEDED,
            done=total,
            total=total,
            result=json.dumps(result),
            finished_at=at,
        )

    def failed(self, replay_id: str, error: str, at: datetime) -> None:
        self._update(replay_id, UNFINISHED, status=FAILED, error=error, finished_at=at)

    def beat(self, runner: str, now: datetime) -> None:
        """The runner is alive: push back the heartbeat of its unfinished replays."""
        with self.engine.begin() as conn:
            conn.execute(
                replays.update()
                .where(replays.c.runner == runner, replays.c.status.in_(UNFINISHED))
                .values(heartbeat_at=now)
            )

    def fail_interrupted(self, now: datetime) -> int:
        """Mark failed every unfinished replay whose runner stopped beating; how many."""
        return self._fail_unfinished(now, replays.c.heartbeat_at < now - STALE_AFTER)

    def abandon(self, runner: str, now: datetime) -> None:
        """Mark failed every unfinished replay of `runner` (it is stopping)."""
        self._fail_unfinished(now, replays.c.runner == runner)

    def _fail_unfinished(self, now: datetime, *conditions: Any) -> int:
        with self.engine.begin() as conn:
            found = conn.execute(
                replays.update()
                .where(replays.c.status.in_(UNFINISHED), *conditions)
                .values(status=FAILED, error=INTERRUPTED, finished_at=now)
            )
        return int(found.rowcount)

    def _update(self, replay_id: str, when: tuple[str, ...], **values: Any) -> bool:
        with self.engine.begin() as conn:
            found = conn.execute(
                replays.update()
                .where(replays.c.replay_id == replay_id, replays.c.status.in_(when))
                .values(**values)
            )
        return bool(found.rowcount)


class ReplayRunner:
    """Runs this process's replays on one worker thread, in the order they were posted,
    with `replay.whatif.answer` (what `leadflow replay` runs), and keeps their heartbeat."""

    def __init__(self, runs: ReplayRuns, event_log: EventLog, rulebook: Rulebook) -> None:
        self.runs = runs
        self.event_log = event_log
        self.rulebook = rulebook
        # Who runs a replay, in the table; new at every start, so a restarted process
        # does not keep its predecessor's replays alive.
        self.runner = f"api-{uuid.uuid4().hex[:12]}"
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="replay")
        self._stopping = threading.Event()
        self._unfinished = 0
        self._lock = threading.Lock()
        self._heart = threading.Thread(target=self._beat, name="replay-heartbeat", daemon=True)

    def start(self) -> None:
        """Fail the replays interrupted by a stopped process, then start the heartbeat."""
        interrupted = self.runs.fail_interrupted(datetime.now(UTC))
        if interrupted:
            log.warning("marked %d interrupted replay(s) failed", interrupted)
        self._heart.start()

    def submit(self, question: WhatIf, request: Mapping[str, Any]) -> str:
        """Queue a replay of `question` (`request` is what GET shows of it); its id."""
        replay_id = self.runs.create(request, self.runner, datetime.now(UTC))
        with self._lock:
            self._unfinished += 1
        self._executor.submit(self._run, replay_id, question)
        return replay_id

    def stop(self) -> None:
        """Stop at the next progress report; the running and queued replays are failed."""
        self._stopping.set()
        self._executor.shutdown(wait=True, cancel_futures=True)
        self.runs.abandon(self.runner, datetime.now(UTC))

    def _beat(self) -> None:
        while not self._stopping.wait(HEARTBEAT_EVERY.total_seconds()):
            if self._unfinished:
                try:
                    self.runs.beat(self.runner, datetime.now(UTC))
                except Exception:  # the database is away for a moment: beat again later
                    log.exception("replay heartbeat failed")

    def _run(self, replay_id: str, question: WhatIf) -> None:
        try:
            if self.runs.started(replay_id):
                self._answer(replay_id, question)
        finally:
            with self._lock:
                self._unfinished -= 1

    def _answer(self, replay_id: str, question: WhatIf) -> None:
        last_write = float("-inf")
        progress = ReplayProgress()

        def report(phase: str, done: int, events: int) -> None:
            nonlocal last_write
            if self._stopping.is_set():
                raise ReplayStopped
            progress.update(phase, done, events)
            if time.monotonic() - last_write >= PROGRESS_EVERY_SECONDS:
                self.runs.progressed(replay_id, progress.done, progress.total)
                last_write = time.monotonic()

        try:
            diff = answer(question, self.event_log, self.rulebook, report)
        except ReplayStopped:
            self.runs.failed(replay_id, INTERRUPTED, datetime.now(UTC))
        except Exception as exc:
            log.exception("replay %s failed", replay_id)
            self.runs.failed(replay_id, f"{type(exc).__name__}: {exc}", datetime.now(UTC))
        else:
            self.runs.succeeded(replay_id, to_json(diff), progress.total, datetime.now(UTC))
