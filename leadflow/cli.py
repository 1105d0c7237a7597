"""The `leadflow` command line."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from domain.errors import DomainError
from leadflow.import_cli import import_csv
from leadflow.replay_cli import replay_app
from leadflow.settings import Settings
from store.keys import DEFAULT_ROTATION_GRACE, MAX_ROTATION_GRACE

if TYPE_CHECKING:
    from domain.directory import Directory
    from leadflow.bootstrap import Store
    from projections.base import Projection

app = typer.Typer(help="leadflow: lead-management automation on Temporal.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
rules_app = typer.Typer(help="Rulesets.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")
projections_app = typer.Typer(help="Read models (projections) of the log.", no_args_is_help=True)
app.add_typer(projections_app, name="projections")
app.add_typer(replay_app, name="replay")
app.command("import")(import_csv)
quarantine_app = typer.Typer(
    help="What failed for one lead and waits for an operator.", no_args_is_help=True
)
app.add_typer(quarantine_app, name="quarantine")

console = Console(stderr=True)

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Where SQLite and Temporal keep their files [./.leadflow]."),
]


def _settings(data_dir: Path | None, **overrides: object) -> Settings:
    settings = Settings()
    updates = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        updates["data_dir"] = data_dir
    return settings.model_copy(update=updates)


@app.command()
def dev(
    data_dir: DataDir = None,
    port: Annotated[int, typer.Option(help="API port.")] = 8000,
    temporal_port: Annotated[int, typer.Option(help="Temporal gRPC port.")] = 7233,
    ui_port: Annotated[int, typer.Option(help="Temporal UI port.")] = 8233,
    no_ui: Annotated[bool, typer.Option("--no-ui", help="Start Temporal without its UI.")] = False,
    worker_metrics_port: Annotated[
        int, typer.Option(help="The worker's /metrics port (0: none).", min=0, max=65535)
    ] = 9101,
    projector_metrics_port: Annotated[
        int, typer.Option(help="The projector's /metrics port (0: none).", min=0, max=65535)
    ] = 9102,
    temporal_metrics_port: Annotated[
        int,
        typer.Option(help="The worker's Temporal SDK metrics port (0: none).", min=0, max=65535),
    ] = 9103,
) -> None:
    """Start everything: Temporal dev server (with UI), worker, projector and API."""
    from leadflow.dev import DevServerMissing, run_dev
    from leadflow.logs import configure as configure_logs

    settings = _settings(
        data_dir,
        api_port=port,
        worker_metrics_port=worker_metrics_port or None,
        projector_metrics_port=projector_metrics_port or None,
        temporal_metrics_port=temporal_metrics_port or None,
    )
    configure_logs(settings, "dev", default_format="human")
    try:
        run_dev(
            settings,
            temporal_port=temporal_port,
            ui_port=None if no_ui else ui_port,
            console=console,
        )
    except DevServerMissing as missing:
        # Not markup: the message holds `leadflow[dev-server]`.
        console.print(str(missing), style="red", markup=False)
        raise typer.Exit(1) from missing


@app.command()
def api(
    data_dir: DataDir = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    host: Annotated[str | None, typer.Option(help="Address to bind.")] = None,
) -> None:
    """Run the HTTP API (production process)."""
    from leadflow.logs import configure as configure_logs
    from leadflow.processes import run_api

    settings = _settings(data_dir, api_port=port, api_host=host)
    configure_logs(settings, "api")
    run_api(settings)


@app.command()
def openapi(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write it here, not to stdout.")
    ] = None,
) -> None:
    """Print the API's OpenAPI description (`make openapi` writes docs/openapi.json)."""
    from api.app import create_app
    from api.openapi_bodies import openapi_json

    document = openapi_json(create_app(Settings()).openapi())
    if output is None:
        typer.echo(document, nl=False)
    else:
        output.write_text(document, encoding="utf-8")


@app.command()
def worker(data_dir: DataDir = None) -> None:
    """Run the Temporal worker (production process)."""
    from leadflow.logs import configure as configure_logs
    from leadflow.processes import run_worker

    settings = _settings(data_dir)
    configure_logs(settings, "worker")
    asyncio.run(run_worker(settings))


@app.command()
def projector(data_dir: DataDir = None) -> None:
    """Run the projector (read models) and the dispatcher (log to workflows), the
    production process that follows the log."""
    from leadflow.logs import configure as configure_logs
    from leadflow.processes import run_projector
    from store.leases import PartitionCountChanged

    settings = _settings(data_dir)
    configure_logs(settings, "projector")
    try:
        asyncio.run(run_projector(settings))
    except PartitionCountChanged as changed:
        logging.getLogger("leadflow.projector").error("%s", changed)
        raise typer.Exit(2) from changed


@app.command()
def migrate(
    data_dir: DataDir = None,
    to: Annotated[str, typer.Option("--to", help="The revision to upgrade to.")] = "head",
) -> None:
    """Upgrade the database's schema (leadflow's own tables; the event log's are created if
    missing) and print its revision before and after. Every process does this as it starts
    unless LEADFLOW_AUTO_MIGRATE=false. At head, also checks that the tables are what this
    leadflow declares: exit 1 naming each difference."""
    from sqlalchemy import create_engine

    from leadflow.logs import configure as configure_logs
    from leadflow.migrations import schema_differences
    from store.log import open_event_log
    from store.schema import head, migrated

    settings = _settings(data_dir)
    configure_logs(settings, "migrate", default_format="human")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.sqlalchemy_url)
    try:
        with migrated(engine, to) as done:
            open_event_log(settings.sqlalchemy_url).close()
        typer.echo(f"before: {done.before or 'none'}")
        typer.echo(f"after:  {done.after}" + (" (head)" if done.after == head() else ""))
        if done.after != head():
            return
        with engine.connect() as conn:
            differences = schema_differences(conn)
    finally:
        engine.dispose()
    for difference in differences:
        message = f"the database differs from leadflow's tables: {difference}"
        console.print(message, style="red", markup=False)
    if differences:
        raise typer.Exit(1)


class Scope(StrEnum):
    read = "read"
    ingest = "ingest"
    admin = "admin"


@keys_app.command("create")
def keys_create(
    scope: Annotated[
        list[Scope], typer.Option("--scope", help="read, ingest or admin; repeatable.")
    ],
    name: Annotated[str | None, typer.Option(help="A label for the key.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Create an API key and print it, alone, on stdout."""
    from leadflow.bootstrap import open_store

    store = open_store(_settings(data_dir))
    try:
        key = store.keys.create([s.value for s in scope], name=name)
    finally:
        store.close()
    typer.echo(key)


@keys_app.command("list")
def keys_list(data_dir: DataDir = None) -> None:
    """Every key with each of its secrets: key_id, name, scopes, prefix, created, last used,
    revoked or expiring. Never a key or its hash."""
    from datetime import UTC, datetime

    from rich.table import Table

    from leadflow.bootstrap import open_store

    store = open_store(_settings(data_dir))
    try:
        found = store.keys.secrets()
    finally:
        store.close()
    now = datetime.now(UTC)

    def stamp(moment: datetime | None) -> str:
        return "-" if moment is None else f"{moment:%Y-%m-%d %H:%M:%S}Z"

    table = Table("key_id", "name", "scopes", "prefix", "created", "last used", "status")
    for secret in found:
        status = secret.status(now)
        if secret.revoked_at is not None:
            status += f" {stamp(secret.revoked_at)}"
        elif secret.expires_at is not None:
            status += f" {stamp(secret.expires_at)}"
        table.add_row(
            secret.key_id,
            secret.name or "",
            ",".join(secret.scopes),
            f"{secret.prefix}…" if secret.prefix else "-",
            stamp(secret.created_at),
            stamp(secret.last_used_at),
            status,
        )
    Console().print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id, as `keys list` shows it.")],
    data_dir: DataDir = None,
) -> None:
    """Revoke every secret of a key: every running API refuses it from its next request."""
    from datetime import UTC, datetime

    from leadflow.bootstrap import open_store

    store = open_store(_settings(data_dir))
    try:
        store.keys.revoke(key_id, datetime.now(UTC))
    except DomainError as refused:
        console.print(f"[red]{refused.message}[/]")
        raise typer.Exit(1) from refused
    finally:
        store.close()
    console.print(f"[green]{key_id} revoked[/]")


@keys_app.command("rotate")
def keys_rotate(
    key_id: Annotated[str, typer.Argument(help="The key's id, as `keys list` shows it.")],
    grace: Annotated[
        int,
        typer.Option(
            "--grace",
            min=0,
            max=int(MAX_ROTATION_GRACE.total_seconds()),
            help="Seconds the old secret keeps working; 0 revokes it at once.",
        ),
    ] = int(DEFAULT_ROTATION_GRACE.total_seconds()),
    data_dir: DataDir = None,
) -> None:
    """Give a key a new secret (same key_id, name and scopes) and print it, alone, on
    stdout."""
    from datetime import UTC, datetime, timedelta

    from leadflow.bootstrap import open_store

    store = open_store(_settings(data_dir))
    try:
        issued = store.keys.rotate(key_id, timedelta(seconds=grace), datetime.now(UTC))
    except DomainError as refused:
        console.print(f"[red]{refused.message}[/]")
        raise typer.Exit(1) from refused
    finally:
        store.close()
    typer.echo(issued.key)


def _stored_directory(data_dir: Path | None) -> Directory | None:
    """The directory the store holds (None before one was stored)."""
    from leadflow.bootstrap import open_store

    store = open_store(_settings(data_dir))
    try:
        return store.rulebook.stored_directory()
    finally:
        store.close()


@rules_app.command("validate")
def rules_validate(
    file: Annotated[Path, typer.Argument(help="A ruleset JSON document.", exists=True)],
    data_dir: DataDir = None,
    offline: Annotated[
        bool, typer.Option(help="Skip the check of reps and teams against the directory.")
    ] = False,
) -> None:
    """Validate a ruleset: every error with its JSON Pointer; exit 1 if there is any."""
    import json

    from rules.validation import validate_ruleset

    try:
        document = json.loads(file.read_text())
    except json.JSONDecodeError as exc:
        console.print(f"[red]{file}: not JSON: {exc}[/]")
        raise typer.Exit(1) from exc
    directory = None if offline else _stored_directory(data_dir)
    if not offline and directory is None:
        console.print("[yellow]no directory stored yet: reps and teams are not checked[/]")
    errors = validate_ruleset(document, directory)
    for error in errors:
        typer.echo(f"{file}:{error.path or '/'}: {error.message}")
    if errors:
        console.print(f"[red]{len(errors)} error(s)[/]")
        raise typer.Exit(1)
    console.print(f"[green]{file}: valid[/]")


@rules_app.command("diff")
def rules_diff(
    base: Annotated[Path, typer.Argument(help="The ruleset JSON it compares with.", exists=True)],
    candidate: Annotated[Path, typer.Argument(help="The changed ruleset JSON.", exists=True)],
    data_dir: DataDir = None,
    offline: Annotated[
        bool, typer.Option(help="Show rep and team ids instead of their directory names.")
    ] = False,
    locale: Annotated[
        str, typer.Option("--locale", help="The language of the words: en or zh-CN.")
    ] = "en",
) -> None:
    """What CANDIDATE changes against BASE, in words; exit 1 if either is invalid."""
    import json

    from domain.locales import UnknownLocale, parse_locale

    try:
        language = parse_locale(locale)
    except UnknownLocale as unknown:
        raise typer.BadParameter(str(unknown), param_hint="--locale") from unknown

    from rules.describe import describe_changes
    from rules.validation import InvalidRuleset, parse_ruleset
    from rules.vocabulary import vocabulary

    directory = None if offline else _stored_directory(data_dir)
    parsed = []
    for file in (base, candidate):
        try:
            # Names come from the directory, but a ruleset is read as written (offline).
            parsed.append(parse_ruleset(json.loads(file.read_text()), None))
        except (json.JSONDecodeError, InvalidRuleset) as exc:
            console.print(f"[red]{file}: {exc}[/]")
            raise typer.Exit(1) from exc
    changes = describe_changes(parsed[0], parsed[1], directory, language)
    if not changes:
        typer.echo(vocabulary(language).phrases["no_changes"])
    for change in changes:
        typer.echo(f"{change['kind']} {change['subject']} {change['id']}:")
        if change["kind"] == "changed":
            for difference in change["differences"]:
                typer.echo(f"  - {difference}")
        else:
            typer.echo(f"  {change['after'] or change['before']}")


@projections_app.command("rebuild")
def projections_rebuild(
    name: Annotated[
        str | None, typer.Argument(help="The projection to rebuild, e.g. leads [all].")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Replay the whole log into new tables, then swap them in: the API keeps serving the
    old tables until the new ones are complete."""
    import time

    from leadflow.bootstrap import open_store, projections
    from projections.rebuild import REBUILD_SUFFIX

    pairs = list(zip(projections(), projections(REBUILD_SUFFIX), strict=True))
    names = [live.name for live, _ in pairs]
    if name is not None:
        pairs = [(live, building) for live, building in pairs if live.name == name]
        if not pairs:
            console.print(f"[red]no projection {name!r}; there are: {', '.join(names)}[/]")
            raise typer.Exit(2)
    store = open_store(_settings(data_dir))
    try:
        for live, building in pairs:
            started = time.monotonic()
            replayed = _rebuild_with_progress(store, live, building)
            seconds = time.monotonic() - started
            console.print(
                f"[green]{live.name}: rebuilt from {replayed:,} events in {seconds:.1f}s "
                f"({replayed / max(seconds, 1e-9):,.0f} events/s)[/]"
            )
    finally:
        store.close()


def _rebuild_with_progress(store: Store, live: Projection, building: Projection) -> int:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        Task,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    from projections.rebuild import rebuild

    class EventsPerSecond(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text("… events/s" if speed is None else f"{speed:,.0f} events/s")

    columns = (
        TextColumn(f"[bold]{live.name}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        EventsPerSecond(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(live.name, total=None)
        return rebuild(
            store.event_log,
            store.engine,
            live,
            building,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )


@quarantine_app.command("list")
def quarantine_list(
    all_items: Annotated[
        bool, typer.Option("--all", help="Also the resolved and skipped items.")
    ] = False,
    stage: Annotated[
        str | None, typer.Option(help="e.g. delivery, decision, projection:leads")
    ] = None,
    lead: Annotated[str | None, typer.Option(help="One lead's items.")] = None,
    data_dir: DataDir = None,
) -> None:
    """The quarantine's items, oldest first: stage, lead, event, status, attempts, error."""
    from rich.table import Table

    from leadflow.bootstrap import open_store
    from store.quarantine import OPEN, STATUSES

    store = open_store(_settings(data_dir))
    try:
        items = store.quarantine.find(
            statuses=STATUSES if all_items else OPEN, stage=stage, lead_id=lead, limit=1000
        )
    finally:
        store.close()
    table = Table(title=f"Quarantine: {len(items)} item(s)")
    for column in ("item", "stage", "lead", "event", "status", "attempts", "last failed", "error"):
        table.add_column(column, overflow="fold")
    for item in items:
        table.add_row(
            item.item_id,
            item.stage,
            item.lead_id or item.stream_id,
            f"{item.event_type} #{item.sequence}" if item.sequence else str(item.event_type),
            item.status,
            str(item.attempts),
            item.last_failed_at.isoformat(timespec="seconds"),
            item.error.splitlines()[-1] if item.error else "",
        )
    Console().print(table)


ItemIds = Annotated[list[str], typer.Argument(help="Quarantine item ids (see `list`).")]


@quarantine_app.command("retry")
def quarantine_retry(item_ids: ItemIds, data_dir: DataDir = None) -> None:
    """Try the items' streams again now, from the event that failed."""
    _act_on_quarantine(item_ids, "retry", data_dir)


@quarantine_app.command("skip")
def quarantine_skip(item_ids: ItemIds, data_dir: DataDir = None) -> None:
    """Drop the event that failed and go on with the stream's later events."""
    _act_on_quarantine(item_ids, "skip", data_dir)


def _act_on_quarantine(item_ids: list[str], action: str, data_dir: Path | None) -> None:
    from delivery.temporal import LeadWorkflows, TemporalUnavailable, act_on_quarantine_item
    from domain.errors import DomainError
    from leadflow.bootstrap import connect_temporal, open_store

    settings = _settings(data_dir)
    store = open_store(settings)

    async def act() -> int:
        workflows = None
        with contextlib.suppress(Exception):  # needed only for parked decisions
            client = await connect_temporal(settings)
            workflows = LeadWorkflows(client, settings.task_queue, settings.workflow_history_limit)
        failed = 0
        for item_id in item_ids:
            try:
                item = await act_on_quarantine_item(store.quarantine, workflows, item_id, action)
            except (DomainError, TemporalUnavailable) as refused:
                console.print(f"[red]{item_id}: {refused}[/]")
                failed += 1
            else:
                console.print(f"{item_id}: {action} asked ({item.stage}, lead {item.lead_id})")
        return failed

    try:
        failed = asyncio.run(act())
    finally:
        store.close()
    if failed:
        raise typer.Exit(1)


def main() -> None:
    from store.schema import SchemaNotCurrent

    try:
        app()
    except SchemaNotCurrent as refused:
        console.print(str(refused), style="red", markup=False)
        raise SystemExit(1) from None
