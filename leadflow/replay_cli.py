"""`leadflow replay`: what a candidate ruleset would have done to the log's history, and
`--verify`, whether replaying under the versions that were active reproduces the log.

Mounted on the `leadflow` command line by `leadflow/cli.py`; reads the store, never
writes to the log. The report goes to stdout (a table rendered here, or the JSON of
`replay.diff.to_json`), progress to stderr.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from domain.locales import UnknownLocale, parse_locale
from leadflow.settings import Settings
from replay.diff import POOL, Mismatch, ReplayDiff, to_json, verify
from replay.simulator import ReportProgress
from replay.whatif import (
    PHASES,
    PhaseProgress,
    ReplayOverTime,
    WhatIf,
    answer,
    check_baseline,
    lead_id_of,
    parse_time,
)
from rules.validation import InvalidRuleset, parse_ruleset
from store.rulebook import RulesetNotFound


def _ids(ids: list[str], limit: int = 3) -> str:
    shown = ", ".join(ids[:limit])
    return shown + (f" (+{len(ids) - limit})" if len(ids) > limit else "")


def render_table(diff: ReplayDiff) -> str:
    """The diff as tables for a terminal; `to_json` has every lead id."""
    out = io.StringIO()
    console = Console(file=out, width=140, force_terminal=False, color_system=None)
    for sentence in diff.summary:  # in business terms first; the tables follow
        console.print(sentence, markup=False, highlight=False)
    if diff.summary:
        console.print()
    console.print(
        f"Replayed {diff.events_replayed} events of {diff.leads_replayed} leads: "
        + ("no change." if diff.unchanged else f"{len(diff.assignments)} assignments change.")
    )
    if diff.rules_changed:
        console.print("Rules the candidate changes: " + ", ".join(diff.rules_changed))
    if diff.assignments:
        table = Table(title="Assignments that change")
        for column in ("lead", "from", "to"):
            table.add_column(column)
        for change in diff.assignments:
            table.add_row(
                change.lead_id,
                f"{change.from_owner or POOL} ({change.from_team or '-'})",
                f"{change.to_owner or POOL} ({change.to_team or '-'})",
            )
        console.print(table)
    for title, holders in (("Per rep", diff.reps), ("Per team", diff.teams)):
        if not holders:
            continue
        table = Table(title=title)
        for column in ("", "gained", "lost", "open before", "open after", "leads"):
            table.add_column(column)
        for h in holders:
            table.add_row(
                h.holder,
                f"+{len(h.gained)}",
                f"-{len(h.lost)}",
                "" if h.load_before is None else str(h.load_before),
                "" if h.load_after is None else str(h.load_after),
                _ids(h.gained + h.lost),
            )
        console.print(table)
    for title, rows in (("Outcomes", diff.movements), ("Rules that fired differently", diff.rules)):
        if not rows:
            continue
        table = Table(title=title)
        for column in ("what", "", "before", "after", "leads gaining", "leads losing"):
            table.add_column(column)
        for m in rows:
            table.add_row(
                m.kind,
                m.detail,
                str(m.baseline),
                str(m.candidate),
                _ids(m.gained),
                _ids(m.lost),
            )
        console.print(table)
    return out.getvalue()


replay_app = typer.Typer(name="replay", help="What-if replay of the log's history.")
errors = Console(stderr=True)
_BAR_COLUMNS = (
    TextColumn("{task.description}"),
    BarColumn(),
    MofNCompleteColumn(),
    TimeElapsedColumn(),
)


class ReportFormat(StrEnum):
    table = "table"
    json = "json"


def _time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError as exc:
        raise typer.BadParameter(
            f"not an ISO 8601 date or time: {value}", param_hint=option
        ) from exc


@contextmanager
def _progress_bar(description: str) -> Iterator[ReportProgress]:
    with Progress(*_BAR_COLUMNS, console=errors, transient=True) as bar:
        task = bar.add_task(description, total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield advance


@contextmanager
def _phase_bars() -> Iterator[PhaseProgress]:
    """One bar per replay phase (baseline, then candidate)."""
    with Progress(*_BAR_COLUMNS, console=errors, transient=True) as bar:
        tasks = {phase: bar.add_task(phase, total=None) for phase in PHASES}

        def advance(phase: str, done: int, total: int) -> None:
            bar.update(tasks[phase], completed=done, total=total)

        yield advance


def _mismatch_lines(mismatches: list[Mismatch]) -> list[str]:
    lines = []
    for m in mismatches:
        recorded = m.recorded[m.position] if m.position < len(m.recorded) else None
        replayed = m.replayed[m.position] if m.position < len(m.replayed) else None
        lines.append(f"lead {m.lead_id}: decision #{m.position + 1} differs")
        lines.append(f"  recorded: {recorded}")
        lines.append(f"  replayed: {replayed}")
    return lines


@replay_app.callback(invoke_without_command=True)
def replay(
    ruleset: Annotated[
        Path | None,
        typer.Option("--ruleset", help="The candidate ruleset (JSON).", exists=True),
    ] = None,
    baseline: Annotated[
        int | None,
        typer.Option(
            "--baseline", help="Compare with this version (default: the versions active then)."
        ),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--from", help="Only leads captured at or after this time.")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--to", help="Only leads captured before this time.")
    ] = None,
    lead: Annotated[str | None, typer.Option("--lead", help="Only this lead.")] = None,
    report_format: Annotated[
        ReportFormat, typer.Option("--format", help="How to print the report.")
    ] = ReportFormat.table,
    check: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Check that replaying under the active versions reproduces the log; exit 1 "
            "naming every lead where it does not.",
        ),
    ] = False,
    time_limit: Annotated[
        float | None,
        typer.Option(
            "--time-limit",
            metavar="SECONDS",
            min=0,
            help="Stop the what-if after this long and exit 3 (default: no limit).",
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Where SQLite and Temporal keep their files."),
    ] = None,
    locale: Annotated[
        str, typer.Option("--locale", help="The language of the summary: en or zh-CN.")
    ] = "en",
) -> None:
    """Re-run history through the lifecycle under a candidate ruleset (nothing is written)
    and report what would have changed, lead by lead."""
    from leadflow.bootstrap import open_store

    if ruleset is None and not check:
        raise typer.BadParameter("give --ruleset, --verify or both", param_hint="--ruleset")
    captured_from, captured_to = _time(since, "--from"), _time(until, "--to")
    settings = Settings()
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})
    if lead is not None:
        try:
            lead = lead_id_of(lead)
        except ValueError as bad:
            raise typer.BadParameter(f"{bad}: {lead}", param_hint="--lead") from bad
    store = open_store(settings)
    try:
        rulebook = store.rulebook
        directory = rulebook.directory()
        if check:
            with _progress_bar("verifying") as progress:
                mismatches = verify(store.event_log, rulebook, directory, progress=progress)
            if report_format is ReportFormat.json:
                typer.echo(json.dumps({"mismatches": [vars(m) for m in mismatches]}, indent=2))
            else:
                for line in _mismatch_lines(mismatches):
                    typer.echo(line)
                typer.echo(f"{len(mismatches)} lead(s) where the replay differs from the log")
            if mismatches:
                raise typer.Exit(1)
        if ruleset is None:
            return
        try:
            document = json.loads(ruleset.read_text())
            question = WhatIf(
                parse_ruleset(document, directory),
                baseline,
                captured_from,
                captured_to,
                lead,
                parse_locale(locale),
            )
            check_baseline(question, rulebook)
        except json.JSONDecodeError as exc:
            errors.print(f"[red]{ruleset}: not JSON: {exc}[/]")
            raise typer.Exit(2) from exc
        except InvalidRuleset as invalid:
            for error in invalid.errors:
                errors.print(f"{ruleset}:{error.path or '/'}: {error.message}")
            raise typer.Exit(2) from invalid
        except UnknownLocale as unknown:
            errors.print(f"--locale: {unknown}")
            raise typer.Exit(2) from unknown
        except RulesetNotFound as missing:
            errors.print(f"[red]--baseline: {missing.message}[/]")
            raise typer.Exit(2) from missing
        try:
            with _phase_bars() as progress:
                diff = answer(question, store.event_log, rulebook, progress, time_limit=time_limit)
        except ReplayOverTime as over:
            errors.print(
                f"[red]stopped: {over}; replay fewer leads: a shorter capture window "
                "(--from/--to) or one lead (--lead)[/]"
            )
            raise typer.Exit(3) from over
        if report_format is ReportFormat.json:
            typer.echo(json.dumps(to_json(diff), indent=2))
        else:
            typer.echo(render_table(diff), nl=False)
    finally:
        store.close()
