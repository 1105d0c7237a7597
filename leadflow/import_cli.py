"""`leadflow import FILE --mapping M`: a CSV file of leads into the log (docs/imports.md).

Mounted on the `leadflow` command line by `leadflow/cli.py`. Rows are appended through the
store in batches (`intake.importer`), with a progress bar on stderr and the report on
stdout: a table, or `--format json` (what `GET /v1/imports/{id}` shows as `report`).

Exit codes: 0 every row imported (or already imported); 1 some rows are bad (the others
were imported, the report lists the bad ones); 2 the mapping or the file cannot be used
(nothing imported).
"""

from __future__ import annotations

import gc
import io
import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from domain.errors import InvalidDocument
from intake.importer import ImportReport, run_import
from intake.mapping import parse_mapping
from leadflow.settings import Settings

errors = Console(stderr=True)


class ReportFormat(StrEnum):
    table = "table"
    json = "json"


def render_report(report: ImportReport) -> str:
    """The report for a terminal: the counts, then one line per bad row's fault."""
    out = io.StringIO()
    console = Console(file=out, width=140, force_terminal=False, color_system=None)
    what = "Would import" if report.dry_run else "Imported"
    console.print(
        f"{report.rows:,} rows read. {what} {report.imported:,}"
        + ("" if report.dry_run else f" ({report.new_leads:,} new leads)")
        + f", {report.duplicates:,} already imported, {report.bad_rows:,} bad."
    )
    if report.errors:
        table = Table(title="Bad rows")
        for column in ("row", "column", "message"):
            table.add_column(column)
        for error in sorted(report.errors, key=lambda e: (e.row, e.column or "")):
            table.add_row(str(error.row), error.column or "", error.message)
        console.print(table)
        if not report.errors_listed_all:
            console.print(f"(the first {len(report.errors):,} faults are listed)")
    return out.getvalue()


def import_csv(
    file: Annotated[Path, typer.Argument(help="The CSV file.", exists=True, dir_okay=False)],
    mapping: Annotated[
        Path,
        typer.Option("--mapping", "-m", help="The mapping (JSON, docs/imports.md).", exists=True),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate every row; write nothing.")
    ] = False,
    report_format: Annotated[
        ReportFormat, typer.Option("--format", help="How to print the report.")
    ] = ReportFormat.table,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Where SQLite keeps its files [./.leadflow]."),
    ] = None,
) -> None:
    """Import leads from a CSV file: each row a `lead.captured` event, validated as the API
    validates; re-running the same file imports nothing twice."""
    from leadflow.bootstrap import open_store

    try:
        document = json.loads(mapping.read_text(encoding="utf-8"))
        parsed = parse_mapping(document)
    except (ValueError, InvalidDocument) as bad:
        _refuse(mapping, bad)
    settings = Settings()
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})
    content = file.read_bytes()
    store = None if dry_run else open_store(settings)
    # What the store and the libraries built lives as long as this command: frozen, the
    # cyclic collector stops walking it on every full collection, which the aggregates of
    # each batch trigger (as `api.app` does at start-up; ~30% of an import's time).
    gc.collect()
    gc.freeze()
    try:
        with Progress(
            TextColumn("importing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=errors,
            transient=True,
        ) as bar:
            task = bar.add_task("rows", total=None)
            report = run_import(
                content,
                parsed,
                None if store is None else store.append,
                phone_region=settings.phone_region,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    except InvalidDocument as bad:
        _refuse(file, bad)
    finally:
        if store is not None:
            store.close()
    if report_format is ReportFormat.json:
        typer.echo(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
    else:
        typer.echo(render_report(report), nl=False)
    if report.bad_rows:
        raise typer.Exit(1)


def _refuse(source: Path, bad: Exception) -> NoReturn:
    """Print why the mapping or the file cannot be used, each field on its line; exit 2."""
    if isinstance(bad, InvalidDocument):
        for detail in bad.details:
            errors.print(f"{source}:{detail['path'] or '/'}: {detail['message']}", markup=False)
    else:
        errors.print(f"{source}: not JSON: {bad}", markup=False)
    raise typer.Exit(2)
