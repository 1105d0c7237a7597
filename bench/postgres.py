"""Fresh PostgreSQL databases for one benchmark run, created through an admin connection
and dropped however the run ends, so no run measures or leaves behind another's data."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

# An admin connection that may CREATE and DROP DATABASE (this machine's: trust auth).
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def default_admin_url() -> str:
    """The admin URL the benches use unless told otherwise: LEADFLOW_BENCH_POSTGRES_URL,
    else `DEFAULT_ADMIN_URL`."""
    return os.environ.get("LEADFLOW_BENCH_POSTGRES_URL", DEFAULT_ADMIN_URL)


def with_driver(url: URL, driver: str) -> str:
    """`url` as a string for a client: "postgresql" (psycopg, leadflow's settings) or
    "postgresql+psycopg" (SQLAlchemy), password included."""
    return url.set(drivername=driver).render_as_string(hide_password=False)


@contextlib.contextmanager
def fresh_databases(admin_url: str, *roles: str) -> Iterator[dict[str, URL]]:
    """One new database per role, named `bench_<pid>_<random>_<role>`, yielded as URLs with
    the admin URL's host, port and credentials. Each is dropped WITH (FORCE) on the way out,
    also on an error or Ctrl-C: connections still open to it are ended first.

    Raises psycopg.OperationalError when the server cannot be reached."""
    admin = make_url(admin_url)
    tag = f"bench_{os.getpid()}_{secrets.token_hex(3)}"
    names = {role: f"{tag}_{role}" for role in roles}
    admin_conninfo = with_driver(admin.set(database=admin.database or "postgres"), "postgresql")
    created: list[str] = []
    try:
        with psycopg.connect(admin_conninfo, autocommit=True) as conn:
            for name in names.values():
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                created.append(name)
        yield {role: admin.set(database=name) for role, name in names.items()}
    finally:
        if created:
            with psycopg.connect(admin_conninfo, autocommit=True) as conn:
                for name in created:
                    conn.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                            sql.Identifier(name)
                        )
                    )
