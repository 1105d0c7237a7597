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
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Boolean, Column, DateTime, Integer, MetaData, String, Table, Text, select
from sqlalchemy.engine import Engine

from domain.errors import DomainError
from intake.importer import Append, run_import
from intake.mapping import ImportMapping
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
HEARTBEAT_EVERY = timedelta(seconds=5)
STALE_AFTER = timedelta(seconds=30)
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


class ImportJobs:
    """The `imports` table. A finished import (succeeded or failed) never changes again."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

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
        row = self._row(import_id)
        if _stale(row, now):
            self.fail_interrupted(now, imports.c.import_id == import_id)
            row = self._row(import_id)
        return _as_json(row, with_report=True)

    def _row(self, import_id: str) -> Any:
        with self.engine.connect() as conn:
            row = conn.execute(select(imports).where(imports.c.import_id == import_id)).first()
        if row is None:
            raise ImportNotFound(f"no import {import_id}")
        return row

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

    def unfinished(self, runner: str) -> int:
        with self.engine.connect() as conn:
            found = conn.execute(
                select(imports.c.import_id).where(
                    imports.c.runner == runner, imports.c.status.in_(UNFINISHED)
                )
            )
            return len(found.all())

    def update(self, import_id: str, when: tuple[str, ...], **values: Any) -> bool:
        with self.engine.begin() as conn:
            found = conn.execute(
                imports.update()
                .where(imports.c.import_id == import_id, imports.c.status.in_(when))
                .values(**values)
            )
        return bool(found.rowcount)

    def beat(self, runner: str, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                imports.update()
                .where(imports.c.runner == runner, imports.c.status.in_(UNFINISHED))
                .values(heartbeat_at=now)
            )

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
    and keeps their heartbeat."""

    def __init__(self, jobs: ImportJobs, append: Append, phone_region: str) -> None:
        self.jobs = jobs
        self.append = append
        self.phone_region = phone_region
        self.runner = f"api-{uuid.uuid4().hex[:12]}"
        self._stopping = threading.Event()
        self._queued: dict[str, Upload] = {}
        self._running: str | None = None
        self._changed = threading.Condition()
        self._worker = threading.Thread(target=self._work, name="import", daemon=True)
        self._heart = threading.Thread(target=self._beat, name="import-heartbeat", daemon=True)

    def start(self) -> None:
        """Fail the imports a stopped process left unfinished; start the worker and heart."""
        interrupted = self.jobs.fail_interrupted(datetime.now(UTC))
        if interrupted:
            log.warning("ended %d interrupted import(s)", interrupted)
        self._worker.start()
        self._heart.start()

    def submit(self, upload: Upload) -> str:
        """Queue an import of `upload`; its id. Raises TooManyImports, recording nothing,
        when this process already holds `MAX_QUEUED` unfinished imports."""
        with self._changed:
            if self.jobs.unfinished(self.runner) >= MAX_QUEUED:
                raise TooManyImports(
                    f"this API process already runs {MAX_QUEUED} imports; "
                    f"try again in {RETRY_AFTER_SECONDS} s"
                )
            import_id = self.jobs.create(upload, self.runner, datetime.now(UTC))
            self._queued[import_id] = upload
            self._changed.notify()
        return import_id

    def stop(self) -> None:
        """Stop the running import at its next batch; it and the queued ones end failed
        as interrupted."""
        self._stopping.set()
        with self._changed:
            self._changed.notify_all()
        if self._worker.is_alive():
            self._worker.join()
        self.jobs.abandon(self.runner, datetime.now(UTC))

    def _beat(self) -> None:
        while not self._stopping.wait(HEARTBEAT_EVERY.total_seconds()):
            if self._queued or self._running is not None:
                try:
                    self.jobs.beat(self.runner, datetime.now(UTC))
                except Exception:  # the database is away for a moment: beat again later
                    log.exception("import heartbeat failed")

    def _work(self) -> None:
        while True:
            with self._changed:
                while not self._queued and not self._stopping.is_set():
                    self._changed.wait()
                if self._stopping.is_set():
                    return
                import_id = next(iter(self._queued))
                upload = self._queued.pop(import_id)
                self._running = import_id
            try:
                if self.jobs.update(import_id, (QUEUED,), status=RUNNING):
                    self._run(import_id, upload)
            except Exception:  # the database is away: its heartbeat stops, a look ends it
                log.exception("import %s could not be run to its end", import_id)
            finally:
                self._running = None

    def _run(self, import_id: str, upload: Upload) -> None:
        last_write = float("-inf")

        def progress(done: int, total: int) -> None:
            nonlocal last_write
            if self._stopping.is_set():
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
