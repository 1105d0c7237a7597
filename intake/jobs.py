"""CSV imports started over HTTP (`POST /v1/imports`): their state in the `imports` table,
so any API replica answers `GET /v1/imports/{id}` and `GET /v1/imports`, and the worker
thread that runs them, one at a time, in the API process that accepted the upload.

The uploaded file is held in that process's memory until its import has run (at most
`MAX_QUEUED` per process, each at most `MAX_UPLOAD_BYTES`). A process that runs imports
keeps a heartbeat on its unfinished ones; one whose heartbeat is older than `STALE_AFTER`
was interrupted (its process stopped) and is marked `failed` the next time anyone looks,
or when an API starts. The rows it appended stay appended: posting the file again
imports the rest, the rows already imported counting as duplicates.
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

from sqlalchemy import Boolean, Column, DateTime, Integer, MetaData, String, Table, Text, select
from sqlalchemy.engine import Engine

from domain.errors import DomainError
from intake.importer import Append, run_import
from intake.mapping import ImportMapping
from store.jobs import STALE_AFTER, JobRows, JobWorker
from store.times import utc

log = logging.getLogger(__name__)

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
UNFINISHED = (QUEUED, RUNNING)

# An upload's size limit (larger than the 1 MiB of posted events): 413 above it.
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
# Unfinished imports (queued and running) one API process holds: their files are in its
# memory. One more is refused (429) with a Retry-After of `RETRY_AFTER_SECONDS`.
MAX_QUEUED = 2
RETRY_AFTER_SECONDS = 30
PROGRESS_EVERY_SECONDS = 1.0
LISTED = 100

INTERRUPTED = (
    "interrupted: the API process running this import stopped; post the file again (rows "
    "already imported count as duplicates)"
)

metadata = MetaData()

imports = Table(
    "imports",
    metadata,
    Column("import_id", String(36), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("file_name", String(200), nullable=True),
    Column("file_bytes", Integer, nullable=False),
    Column("mapping", Text, nullable=False),
    Column("dry_run", Boolean, nullable=False),
    Column("done", Integer, nullable=False),
    Column("total", Integer, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("runner", String(64), nullable=False),
    Column("heartbeat_at", DateTime(timezone=True), nullable=False),
    Column("report", Text, nullable=True),
    Column("error", Text, nullable=True),
)


class ImportNotFound(DomainError):
    code = "import_not_found"


class TooManyImports(DomainError):
    """This API process already holds `MAX_QUEUED` unfinished imports; nothing was
    recorded. Ask again after `retry_after_seconds`."""

    code = "too_many_imports"
    retry_after_seconds = RETRY_AFTER_SECONDS


@dataclass(frozen=True)
class Upload:
    """What was posted: the file, its name, the validated mapping, whether a dry run."""

    content: bytes
    file_name: str | None
    mapping: ImportMapping
    dry_run: bool


class ImportJobs(JobRows):
    """The `imports` table. A finished import (succeeded or failed) never changes again."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine, imports, UNFINISHED, lambda i: ImportNotFound(f"no import {i}"))

    def create(self, upload: Upload, runner: str, now: datetime) -> str:
        import_id = str(uuid.uuid4())
        with self.engine.begin() as conn:
            conn.execute(
                imports.insert().values(
                    import_id=import_id,
                    status=QUEUED,
                    file_name=upload.file_name,
                    file_bytes=len(upload.content),
                    mapping=json.dumps(upload.mapping.as_json(), ensure_ascii=False),
                    dry_run=upload.dry_run,
                    done=0,
                    created_at=now,
                    runner=runner,
                    heartbeat_at=now,
                )
            )
        return import_id

    def get(self, import_id: str, now: datetime) -> dict[str, Any]:
        """The import as `GET /v1/imports/{id}` shows it; an interrupted one is recorded
        (and shown) as failed. Raises ImportNotFound."""
        row = self.row(import_id)
        if _stale(row, now):
            self.fail_interrupted(now, imports.c.import_id == import_id)
            row = self.row(import_id)
        return _as_json(row, with_report=True)

    def list(self, now: datetime) -> list[dict[str, Any]]:
        """The newest `LISTED` imports, newest first, without their reports."""
        query = select(imports).order_by(imports.c.created_at.desc()).limit(LISTED)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        if any(_stale(row, now) for row in rows):
            self.fail_interrupted(now)
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
        return [_as_json(row, with_report=False) for row in rows]

    def fail_interrupted(self, now: datetime, *conditions: Any) -> int:
        """Fail the unfinished imports whose runner stopped beating; how many."""
        return self._fail(now, imports.c.heartbeat_at < now - STALE_AFTER, *conditions)

    def abandon(self, runner: str, now: datetime) -> None:
        """Fail every unfinished import of `runner` (it is stopping)."""
        self._fail(now, imports.c.runner == runner)

    def _fail(self, now: datetime, *conditions: Any) -> int:
        with self.engine.begin() as conn:
            failed = conn.execute(
                imports.update()
                .where(imports.c.status.in_(UNFINISHED), *conditions)
                .values(status=FAILED, error=INTERRUPTED, finished_at=now)
            )
        return int(failed.rowcount)


def _stale(row: Any, now: datetime) -> bool:
    """Unfinished, and its runner has stopped beating (a look writes only then: on SQLite a
    write waits for the import's own batches)."""
    heartbeat_at = utc(row.heartbeat_at)
    assert heartbeat_at is not None
    return row.status in UNFINISHED and heartbeat_at < now - STALE_AFTER


def _as_json(row: Any, *, with_report: bool) -> dict[str, Any]:
    finished_at = utc(row.finished_at)
    created_at = utc(row.created_at)
    assert created_at is not None
    answer: dict[str, Any] = {
        "import_id": row.import_id,
        "status": row.status,
        "dry_run": bool(row.dry_run),
        "file_name": row.file_name,
        "file_bytes": row.file_bytes,
        "progress": {"done": row.done, "total": row.total},
        "created_at": created_at.isoformat(),
        "finished_at": None if finished_at is None else finished_at.isoformat(),
        "error": row.error,
    }
    if with_report:
        answer["mapping"] = json.loads(row.mapping)
        answer["report"] = None if row.report is None else json.loads(row.report)
    return answer


class ImportStopped(Exception):
    """Raised inside a running import when its process is stopping."""


class ImportRunner:
    """Runs this process's imports on one worker thread, in the order they were posted,
    appending through `append` (the store's); holds at most `MAX_QUEUED` unfinished ones
    and keeps their heartbeat (`store.jobs.JobWorker`)."""

    def __init__(self, jobs: ImportJobs, append: Append, phone_region: str) -> None:
        self.jobs = jobs
        self.append = append
        self.phone_region = phone_region
        self.worker = JobWorker[Upload]("import", jobs, self._run_if_queued)

    @property
    def runner(self) -> str:
        return self.worker.runner

    def start(self) -> None:
        """Fail the imports a stopped process left unfinished; start the worker and heart."""
        self.worker.start()

    def submit(self, upload: Upload) -> str:
        """Queue an import of `upload`; its id. Raises TooManyImports, recording nothing,
        when this process already holds `MAX_QUEUED` unfinished imports."""
        return self.worker.submit(
            upload,
            lambda runner: self.jobs.create(upload, runner, datetime.now(UTC)),
            MAX_QUEUED,
            lambda: TooManyImports(
                f"this API process already runs {MAX_QUEUED} imports; "
                f"try again in {RETRY_AFTER_SECONDS} s"
            ),
        )

    def stop(self) -> None:
        """Stop the running import at its next batch; it and the queued ones end failed
        as interrupted."""
        self.worker.stop()

    def _run_if_queued(self, import_id: str, upload: Upload) -> None:
        if self.jobs.update(import_id, (QUEUED,), status=RUNNING):
            self._run(import_id, upload)

    def _run(self, import_id: str, upload: Upload) -> None:
        last_write = float("-inf")

        def progress(done: int, total: int) -> None:
            nonlocal last_write
            if self.worker.stopping.is_set():
                raise ImportStopped
            if done == total or time.monotonic() - last_write >= PROGRESS_EVERY_SECONDS:
                self.jobs.update(import_id, (RUNNING,), done=done, total=total)
                last_write = time.monotonic()

        outcome: Mapping[str, Any]
        try:
            report = run_import(
                upload.content,
                upload.mapping,
                None if upload.dry_run else self.append,
                phone_region=self.phone_region,
                progress=progress,
            )
        except ImportStopped:
            outcome = {"status": FAILED, "error": INTERRUPTED}
        except DomainError as refused:  # the file cannot be read as the mapping says
            outcome = {"status": FAILED, "error": refused.message}
        except Exception as exc:
            log.exception("import %s failed", import_id)
            outcome = {"status": FAILED, "error": f"{type(exc).__name__}: {exc}"}
        else:
            body = json.dumps(report.as_json(), ensure_ascii=False)
            outcome = {"status": SUCCEEDED, "report": body}
        self.jobs.update(import_id, (RUNNING,), finished_at=datetime.now(UTC), **outcome)
