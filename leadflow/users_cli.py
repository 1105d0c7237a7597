"""`leadflow users`: create and list the people who sign in to the console (issue #19,
docs/access.md). Mounted on the `leadflow` command line by `leadflow/cli.py`.

`users create` reads the password from the first line of stdin; run at a terminal (or
given an empty line) it generates one and prints it, once. A user created here is recorded
on the log as created by `{"kind": "cli"}`.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from domain.access import ROLES
from domain.errors import DomainError, InvalidDocument
from leadflow.settings import Settings

users_app = typer.Typer(help="People who sign in to the console.", no_args_is_help=True)
console = Console(stderr=True)

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Where SQLite and Temporal keep their files [./.leadflow]."),
]


def _settings(data_dir: Path | None) -> Settings:
    settings = Settings()
    return settings if data_dir is None else settings.model_copy(update={"data_dir": data_dir})


@users_app.command("create")
def users_create(
    login: Annotated[str, typer.Option("--login", help="What they sign in with (an email).")],
    role: Annotated[str, typer.Option("--role", help=f"One of {', '.join(ROLES)}.")],
    person: Annotated[
        str | None,
        typer.Option("--person", help="Their rep or person id in the directory (not: admin)."),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Shown in the console [the directory's name].")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Create a user; the password is stdin's first line, else generated and printed."""
    from domain.users import parse_new_user
    from leadflow.bootstrap import open_store
    from store.users import generated_password

    typed = "" if sys.stdin.isatty() else sys.stdin.readline().rstrip("\r\n")
    generated = generated_password()
    body: dict[str, object] = {"login": login, "role": role, "password": typed or generated}
    if person is not None:
        body["person_id"] = person
    if name is not None:
        body["name"] = name
    store = open_store(_settings(data_dir))
    try:
        new = parse_new_user(body, store.rulebook.directory(), generated)
        user = store.users.create(new, {"kind": "cli"}, datetime.now(UTC))
    except InvalidDocument as refused:
        for fault in refused.errors:
            console.print(f"[red]{fault.path.lstrip('/')}: {fault.message}[/]")
        raise typer.Exit(1) from refused
    except DomainError as refused:
        console.print(f"[red]{refused.message}[/]")
        raise typer.Exit(1) from refused
    finally:
        store.close()
    console.print(f"[green]{user.login} ({user.role}) created as {user.user_id}[/]")
    if not typed:
        typer.echo(generated)


@users_app.command("list")
def users_list(data_dir: DataDir = None) -> None:
    """Every user: id, login, name, role, directory person, disabled. Never a password."""
    from leadflow.bootstrap import open_store

    store = open_store(_settings(data_dir))
    try:
        found = store.users.all()
    finally:
        store.close()
    table = Table("user_id", "login", "name", "role", "person", "status")
    for user in found:
        status = "disabled" if user.disabled else "active"
        table.add_row(user.user_id, user.login, user.name, user.role, user.person_id or "-", status)
    Console().print(table)
