"""Jobs an API process runs for its callers, one at a time on a worker thread of its own, in
the order they were posted (what-if replays: `replay.jobs`; CSV imports: `intake.jobs`).

Each kind keeps its jobs' state in a table of its own, so any replica answers for a job;
`JobWorker` holds what is common: the queue, the worker thread, and the heartbeat that tells
the other replicas the job's process is alive. A job whose heartbeat stops was interrupted:
its table ends it the next time anyone looks, or when an API starts (`fail_interrupted`).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import Table, select
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

Job = TypeVar("Job")

HEARTBEAT_EVERY = timedelta(seconds=5)
# A job whose heartbeat is older than this was interrupted (its process stopped).
STALE_AFTER = timedelta(seconds=30)


class JobTable(Protocol):
    """What `JobWorker` needs of a kind's table."""

    def unfinished(self, runner: str) -> Collection[str]:
        """The ids of `runner`'s jobs that have not ended."""
        ...

    def beat(self, runner: str, now: datetime) -> None:
        """`runner` is alive: push back the heartbeat of its unfinished jobs."""
        ...

    def fail_interrupted(self, now: datetime) -> int:
        """End every unfinished job whose runner stopped beating; how many."""
        ...

    def abandon(self, runner: str, now: datetime) -> None:
        """End every unfinished job of `runner` (it is stopping)."""
        ...


class JobRows:
    """The reads and writes every kind makes of its jobs table: `table`, keyed by its
    primary key, with `status`, `runner` and `heartbeat_at` columns; `unfinished_statuses`
    are the statuses of a job that has not ended."""

    def __init__(
        self,
        engine: Engine,
        table: Table,
        unfinished_statuses: tuple[str, ...],
        not_found: Callable[[str], Exception],
    ) -> None:
        self.engine = engine
        self.table = table
        [self._key] = table.primary_key.columns
        self._unfinished_statuses = unfinished_statuses
        self._not_found = not_found

    def row(self, job_id: str) -> Any:
        """The job's row; raises `not_found(job_id)` when there is none."""
        with self.engine.connect() as conn:
            row = conn.execute(select(self.table).where(self._key == job_id)).first()
        if row is None:
            raise self._not_found(job_id)
        return row

    def update(self, job_id: str, when: tuple[str, ...], **values: Any) -> bool:
        """Set `values` on the job if its status is one of `when`; whether it was."""
        with self.engine.begin() as conn:
            found = conn.execute(
                self.table.update()
                .where(self._key == job_id, self.table.c.status.in_(when))
                .values(**values)
            )
        return bool(found.rowcount)

    def unfinished(self, runner: str) -> set[str]:
        """The ids of `runner`'s jobs that have not ended."""
        with self.engine.connect() as conn:
            found = conn.execute(
                select(self._key).where(
                    self.table.c.runner == runner,
                    self.table.c.status.in_(self._unfinished_statuses),
                )
            )
            return set(found.scalars())

    def beat(self, runner: str, now: datetime) -> None:
        """`runner` is alive: push back the heartbeat of its unfinished jobs."""
        with self.engine.begin() as conn:
            conn.execute(
                self.table.update()
                .where(
                    self.table.c.runner == runner,
                    self.table.c.status.in_(self._unfinished_statuses),
                )
                .values(heartbeat_at=now)
            )


class JobWorker(Generic[Job]):
    """Runs `run(job_id, job)` for each submitted job on one thread, in order; keeps the
    heartbeat of this process's unfinished jobs in `table`. `kind` names the threads and
    the log lines ("replay", "import")."""

    def __init__(self, kind: str, table: JobTable, run: Callable[[str, Job], None]) -> None:
        self.kind = kind
        self.table = table
        self._run = run
        # Who runs a job, in the table; new at every start, so a restarted process does
        # not keep its predecessor's jobs alive.
        self.runner = f"api-{uuid.uuid4().hex[:12]}"
        # Set when the process stops: a running job checks it at its next progress report.
        self.stopping = threading.Event()
        # The jobs waiting for the worker, in the order posted, and the one it runs.
        self._queued: dict[str, Job] = {}
        self._running: str | None = None
        self._changed = threading.Condition()
        self._worker = threading.Thread(target=self._work, name=kind, daemon=True)
        self._heart = threading.Thread(target=self._beat, name=f"{kind}-heartbeat", daemon=True)

    def start(self) -> None:
        """End the jobs interrupted by a stopped process, then start the worker and the
        heartbeat."""
        interrupted = self.table.fail_interrupted(datetime.now(UTC))
        if interrupted:
            log.warning("ended %d interrupted %s(s)", interrupted, self.kind)
        self._worker.start()
        self._heart.start()

    def submit(
        self, job: Job, create: Callable[[str], str], at_most: int, refuse: Callable[[], Exception]
    ) -> str:
        """Record a job with `create(runner)` (its id) and queue it, unless this process
        already holds `at_most` unfinished jobs: then raise `refuse()`, recording nothing."""
        with self._changed:
            # The table knows of jobs ended elsewhere (a replay cancelled on another
            # replica): those no longer count, and are dropped here rather than when the
            # worker reaches them.
            unfinished = set(self.table.unfinished(self.runner))
            for job_id in self._queued.keys() - unfinished:
                del self._queued[job_id]
            if len(unfinished) >= at_most:
                raise refuse()
            job_id = create(self.runner)
            self._queued[job_id] = job
            self._changed.notify()
        return job_id

    def stop(self) -> None:
        """Stop the running job at its next progress report (it sees `stopping`); it and
        the queued ones are abandoned in the table."""
        self.stopping.set()
        with self._changed:
            self._changed.notify_all()
        if self._worker.is_alive():
            self._worker.join()
        self.table.abandon(self.runner, datetime.now(UTC))

    def _beat(self) -> None:
        while not self.stopping.wait(HEARTBEAT_EVERY.total_seconds()):
            if self._queued or self._running is not None:
                try:
                    self.table.beat(self.runner, datetime.now(UTC))
                except Exception:  # the database is away for a moment: beat again later
                    log.exception("%s heartbeat failed", self.kind)

    def _work(self) -> None:
        while True:
            with self._changed:
                while not self._queued and not self.stopping.is_set():
                    self._changed.wait()
                if self.stopping.is_set():
                    return
                job_id = next(iter(self._queued))
                job = self._queued.pop(job_id)
                self._running = job_id
            try:
                self._run(job_id, job)
            except Exception:  # the database is away: its heartbeat stops, a look ends it
                log.exception("%s %s could not be run to its end", self.kind, job_id)
            finally:
                self._running = None
