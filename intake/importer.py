"""Running a CSV import: the file's rows, read through the mapping (`intake.rows`),
appended in batches through the store's ingest path (the one `POST /v1/events/batch`
takes: identity resolution, idempotency records), with a report of what happened to every
row. `leadflow import` and `POST /v1/imports` both run `run_import`.

Idempotent: a row's event id is the hash of what it became, and it is the row's
idempotency key in leadflow's own scope (`IMPORT_SCOPE`), shared by every import, so a
re-run (of the same file, or of another file holding the same rows) appends nothing and
counts the rows as duplicates. A dry run reads and validates every row and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from domain.events import IncomingEvent
from intake.mapping import ImportMapping
from intake.rows import Row, RowError, RowReader, read_table
from store.ingest import Appended, ItemRejected

# The idempotency scope of imported rows: leadflow's own keys (None), not an API key's, so
# every import, by the CLI or any API key, shares them; one record read per row, not two.
IMPORT_SCOPE = None
# Rows appended per transaction: a batch of the API's size (`MAX_BATCH`), one commit each.
BATCH_ROWS = 1000
# The report lists at most this many row errors; `bad_rows` counts them all.
MAX_LISTED_ERRORS = 10_000

# `Store.append`: events, their idempotency keys, the keys' scope → one result per event.
Append = Callable[[list[IncomingEvent], list[str | None], str | None], list[Appended]]
# Rows done so far, rows in the file.
Progress = Callable[[int, int], None]


@dataclass
class ImportReport:
    """What an import did: rows read, imported (new events), of which new leads,
    duplicates (imported before, or twice in the file), bad rows and their errors."""

    dry_run: bool
    rows: int = 0
    imported: int = 0
    new_leads: int = 0
    duplicates: int = 0
    bad_rows: int = 0
    errors: list[RowError] = field(default_factory=list)
    errors_listed_all: bool = True

    def add_errors(self, errors: Sequence[RowError]) -> None:
        self.bad_rows += 1
        room = MAX_LISTED_ERRORS - len(self.errors)
        if len(errors) > room:
            self.errors_listed_all = False
        self.errors.extend(errors[: max(room, 0)])

    def as_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "rows": self.rows,
            "imported": self.imported,
            "new_leads": self.new_leads,
            "duplicates": self.duplicates,
            "bad_rows": self.bad_rows,
            "errors": [error.as_json() for error in sorted(self.errors, key=_error_order)],
            "errors_listed_all": self.errors_listed_all,
        }


def _error_order(error: RowError) -> tuple[int, str]:
    return error.row, error.column or ""


def run_import(
    content: bytes,
    mapping: ImportMapping,
    append: Append | None,
    *,
    phone_region: str,
    progress: Progress | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ImportReport:
    """Import `content` as `mapping` says, `append`ing each batch of valid rows (None: a
    dry run, nothing written). Raises InvalidImportFile or InvalidMapping before anything is
    written when the file cannot be read as the mapping says; a bad row never stops the
    import: it is reported, and the other rows are imported."""
    table = read_table(content, mapping)
    reader = RowReader(table, mapping, phone_region)
    report = ImportReport(dry_run=append is None, rows=len(table.records))
    total = len(table.records)
    if progress is not None:
        progress(0, total)
    done = 0
    for start in range(0, total, BATCH_ROWS):
        batch = table.records[start : start + BATCH_ROWS]
        now = clock()
        rows: list[Row] = []
        for number, cells in batch:
            read = reader.read(number, cells, now)
            if isinstance(read, Row):
                rows.append(read)
            else:
                report.add_errors(read)
        if append is None:
            report.imported += len(rows)
        else:
            _append_rows(rows, append, report)
        done += len(batch)
        if progress is not None:
            progress(done, total)
    return report


def _append_rows(rows: list[Row], append: Append, report: ImportReport) -> None:
    """Append `rows` all together; a row the log refuses (e.g. its lead's attributes are
    full) is reported bad and the others are appended without it."""
    while rows:
        events = [row.event for row in rows]
        try:
            results = append(events, [e.event_id for e in events], IMPORT_SCOPE)
        except ItemRejected as rejected:
            refused = rows.pop(rejected.index)
            report.add_errors([RowError(refused.row, None, rejected.cause.message)])
            continue
        for result in results:
            if result.duplicate:
                report.duplicates += 1
            else:
                report.imported += 1
                report.new_leads += result.new_lead
        return
