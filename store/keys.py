"""API keys: `Authorization: Bearer <key>` with scopes ingest, read, admin (SPEC §9).

Keys are 32 random bytes, so a single SHA-256 is a sound way to store them (no salt or
slow hash needed: there is nothing to brute-force); the plain key is shown once.

A key has a stable `key_id` and one or more secrets (rows of `api_keys`): rotating a key
adds a secret under the same id and lets the old one expire after a grace period, so what
is recorded against a key_id (e.g. the idempotency keys of its posts) survives rotation.

A known key's holder is remembered in-process, so most requests authenticate without a
database round trip. What is remembered is valid only for the *key generation* it was read
at: a counter bumped in the same transaction as every revocation or rotation. SQLite: a
request reads the counter (on a connection of its own, no thread hop) when a marker file
beside the database says a change was committed since the last read.
PostgreSQL: the revoking transaction sends `NOTIFY` and the API `LISTEN`s (`watch_changes`);
while it is not listening, every request asks the database. Either way a revoked key is
refused on the next request in every process.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import select as socket_select
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    func,
    or_,
    select,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from domain.access import EVERYTHING, LeadScope, Role
from domain.errors import Conflict, DomainError, FieldError, InvalidDocument
from domain.permissions import scopes_of_key
from store.times import utc

log = logging.getLogger(__name__)

SCOPES = ("ingest", "read", "admin")
BOOTSTRAP_KEY_ID = "bootstrap"
# How much of a plain key is kept and shown (lists, logs): enough to tell keys apart.
PREFIX_LENGTH = 8
# `last_used_at` is written at most this often per secret and process.
USE_RECORD_SECONDS = 60.0
DEFAULT_ROTATION_GRACE = timedelta(days=1)
MAX_ROTATION_GRACE = timedelta(days=30)
# The NOTIFY channel of key changes.
CHANGES_CHANNEL = "leadflow_api_keys"
RECONNECT_SECONDS = 1.0

metadata = MetaData()

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_hash", String(64), primary_key=True),
    Column("scopes", String(100), nullable=False),
    Column("name", String(200), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Added after the first release (store/migrations/versions/0002 fills key_id in for
    # the keys of that release).
    Column("key_id", String(40), nullable=False),
    Column("prefix", String(PREFIX_LENGTH), nullable=True),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Index("ix_api_keys_key_id", "key_id"),
)

# One row (id 1, inserted by the first migration): bumped with every change that can refuse
# a key that worked before.
key_generation = Table(
    "api_key_generation",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("generation", BigInteger, nullable=False),
)


class KeyNotFound(DomainError):
    code = "key_not_found"


class LastAdminKey(Conflict):
    """The change would leave no active admin key: nobody could manage keys any more."""

    code = "last_admin_key"


class KeyNotActive(Conflict):
    """Every secret of the key is revoked or expired: there is nothing to rotate."""

    code = "key_not_active"


@dataclass
class InvalidKeyRequest(InvalidDocument):
    code = "invalid_key_request"
    what = "key request"


@dataclass(frozen=True)
class Caller:
    """Who calls: the holder of an API key, or (issue #19) a person signed in to the console,
    as recorded on what they change (e.g. `published_by`). `lead_scope` is the leads they
    may see; a key sees every lead."""

    key_id: str
    name: str
    scopes: frozenset[str]
    role: Role | None = None  # a person's role; None for an API key
    person_id: str | None = None  # the directory rep or person a signed-in user is
    user_id: str | None = None
    lead_scope: LeadScope = EVERYTHING


@dataclass(frozen=True)
class KeySecret:
    """One secret of a key as an operator sees it: never the key or its hash."""

    key_id: str
    name: str | None
    scopes: tuple[str, ...]
    prefix: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    expires_at: datetime | None

    def status(self, now: datetime) -> str:
        """`active`, `expiring` (works until `expires_at`), `expired` or `revoked`."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is None:
            return "active"
        return "expiring" if now < self.expires_at else "expired"

    def is_active(self, now: datetime) -> bool:
        return self.status(now) in ("active", "expiring")

    def as_json(self, now: datetime) -> dict[str, Any]:
        def stamp(moment: datetime | None) -> str | None:
            return None if moment is None else moment.isoformat()

        return {
            "key_id": self.key_id,
            "name": self.name,
            "scopes": list(self.scopes),
            "prefix": self.prefix,
            "status": self.status(now),
            "created_at": stamp(self.created_at),
            "last_used_at": stamp(self.last_used_at),
            "revoked_at": stamp(self.revoked_at),
            "expires_at": stamp(self.expires_at),
        }


@dataclass(frozen=True)
class IssuedKey:
    """A new secret and its plain key: the only moment the key is known."""

    key: str
    secret: KeySecret


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return "lf_" + secrets.token_urlsafe(32)


def new_key_id() -> str:
    return "key_" + secrets.token_urlsafe(9)  # 12 characters


def check_scopes(scopes: Iterable[object]) -> list[str]:
    """The scopes, if each is one of SCOPES and there is at least one; else
    InvalidKeyRequest naming `/scopes/<i>` for each bad one."""
    scopes = list(scopes)
    errors = [
        FieldError(f"/scopes/{index}", f"unknown scope {scope!r}: one of {', '.join(SCOPES)}")
        for index, scope in enumerate(scopes)
        if scope not in SCOPES
    ]
    if not scopes:
        errors.append(FieldError("/scopes", "give at least one scope"))
    if errors:
        raise InvalidKeyRequest(errors)
    return [str(scope) for scope in scopes]


class KeyGeneration:
    """Which key generation the database is at, as far as this process can tell without a
    round trip: what a remembered key is valid for. None means "unknown: ask the database".

    This base is for a database no other process can open (in-memory SQLite): only this
    process's KeyStore changes keys, and it forgets what it remembered when it does.
    """

    def current(self) -> int | None:
        return 0

    async def watch(self) -> None:
        """Follow changes made by other processes until cancelled (if this source needs it)."""

    def changed(self) -> None:
        """Called once a change of keys has committed (the generation moved on)."""

    def close(self) -> None:
        """Release what the source holds open."""


class SQLiteKeyGeneration(KeyGeneration):
    """Reads the generation row on a dedicated connection, but only when a key may have
    changed: every change appends a byte to a marker file beside the database once it has
    committed (`changed`), and a `stat` of that file (a microsecond, no lock) tells whether
    the row could differ from the one read last. A SQLite read on every request cost
    ~60 µs under a steady write load (its read transaction against a growing WAL), 8% of a
    post (BENCHMARKS.md). The row is read again at least every `RECHECK_SECONDS` too, so a
    change whose writer died before marking it still reaches every process."""

    RECHECK_SECONDS = 1.0

    def __init__(self, path: str) -> None:
        self.path = path
        self.marker = f"{path}-keys-changed"
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._read: tuple[tuple[int, int] | None, float, int] | None = None

    def current(self) -> int | None:
        marker = self._marker()
        read = self._read
        if (
            read is not None
            and read[0] == marker
            and time.monotonic() - read[1] < self.RECHECK_SECONDS
        ):
            return read[2]
        generation = self._read_row()
        # The marker was looked at before the row: a change marked after the look is seen
        # next time, never a row older than the mark.
        self._read = None if generation is None else (marker, time.monotonic(), generation)
        return generation

    def changed(self) -> None:
        try:
            with open(self.marker, "ab") as marker:
                marker.write(b".")
        except OSError as exc:  # the row is read again within RECHECK_SECONDS anyway
            log.warning("could not mark an API key change (%s): %s", self.marker, exc)

    def _marker(self) -> tuple[int, int] | None:
        """The marker file's identity and size (a size that only grows: mtimes are coarse)."""
        try:
            found = os.stat(self.marker)
        except OSError:
            return None
        return found.st_ino, found.st_size

    def _read_row(self) -> int | None:
        with self._lock:
            try:
                if self._connection is None:
                    # timeout=0: this runs on the event loop, which must never wait on a
                    # lock; a busy database means "ask the database" (on a worker thread).
                    self._connection = sqlite3.connect(
                        self.path, isolation_level=None, timeout=0, check_same_thread=False
                    )
                row = self._connection.execute(
                    "SELECT generation FROM api_key_generation WHERE id = 1"
                ).fetchone()
            except sqlite3.Error:
                return None
        return None if row is None else int(row[0])

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


class NotifiedKeyGeneration(KeyGeneration):
    """PostgreSQL: counts the NOTIFYs on CHANGES_CHANNEL that `watch` receives on a
    connection of its own. Unknown (None) while that connection is down, and while a message
    waits unread on its socket (it may be a change not counted yet)."""

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self._changes = 0
        self._connection: psycopg.AsyncConnection[Any] | None = None

    def current(self) -> int | None:
        connection = self._connection
        if connection is None:
            return None
        try:
            waiting, _, _ = socket_select.select([connection.fileno()], [], [], 0)
        except (OSError, ValueError, psycopg.Error):
            return None
        return None if waiting else self._changes

    async def watch(self) -> None:
        while True:
            try:
                connection = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
                try:
                    await connection.execute(f'LISTEN "{CHANGES_CHANNEL}"')
                    # Keys may have changed while nobody listened: forget what was read then.
                    self._changes += 1
                    self._connection = connection
                    async for _ in connection.notifies():
                        self._changes += 1
                finally:
                    self._connection = None
                    with contextlib.suppress(psycopg.Error):
                        await connection.close()
            except psycopg.Error as exc:
                log.warning(
                    "listening for API key changes failed (%s); every request looks its key "
                    "up until it listens again, in %.0fs",
                    exc,
                    RECONNECT_SECONDS,
                )
                await asyncio.sleep(RECONNECT_SECONDS)


def key_generation_for(engine: Engine) -> KeyGeneration:
    """The generation source that fits the store's database."""
    url = engine.url
    backend = url.get_backend_name()
    if backend == "sqlite" and url.database not in (None, "", ":memory:"):
        assert url.database is not None
        return SQLiteKeyGeneration(url.database)
    if backend == "postgresql":
        conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        return NotifiedKeyGeneration(conninfo)
    return KeyGeneration()


@dataclass(frozen=True)
class _Remembered:
    generation: int
    caller: Caller
    expires_at: float | None  # epoch seconds


def _secret_of(row: Any) -> KeySecret:
    created_at = utc(row.created_at)
    assert created_at is not None
    return KeySecret(
        key_id=row.key_id,
        name=row.name,
        scopes=tuple(sorted(row.scopes.split(","))),
        prefix=row.prefix,
        created_at=created_at,
        last_used_at=utc(row.last_used_at),
        revoked_at=utc(row.revoked_at),
        expires_at=utc(row.expires_at),
    )


_SECRET_COLUMNS = (
    api_keys.c.key_id,
    api_keys.c.name,
    api_keys.c.scopes,
    api_keys.c.prefix,
    api_keys.c.created_at,
    api_keys.c.last_used_at,
    api_keys.c.revoked_at,
    api_keys.c.expires_at,
)


class KeyStore:
    """The `api_keys` table: issue, list, revoke and rotate keys, and tell who holds one."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.generation = key_generation_for(engine)
        # key hash -> what was read about it. Only known keys: their number bounds its size.
        self._known: dict[str, _Remembered] = {}
        # key hash -> when this process last wrote its last_used_at (monotonic seconds).
        self._uses: dict[str, float] = {}

    def issue(self, scopes: Iterable[object], name: str | None = None) -> IssuedKey:
        """Store a new random key under a new key_id and return it with its secret's record;
        InvalidKeyRequest for unknown scopes."""
        checked = check_scopes(scopes)
        with self.engine.begin() as conn:
            return self._insert(conn, new_key_id(), checked, name, new_key())

    def create(self, scopes: Iterable[object], name: str | None = None) -> str:
        """`issue` for callers that need the plain key alone (the CLI prints it)."""
        return self.issue(scopes, name).key

    def ensure_bootstrap(self, key: str) -> None:
        """Store `key` as the admin key `bootstrap` unless a secret with its hash exists:
        a bootstrap key that was revoked, rotated or expired stays so across restarts."""
        try:
            with self.engine.begin() as conn:
                present = conn.execute(
                    select(api_keys.c.key_hash).where(api_keys.c.key_hash == hash_key(key))
                ).first()
                if present is None:
                    self._insert(conn, BOOTSTRAP_KEY_ID, ["admin"], BOOTSTRAP_KEY_ID, key)
        except IntegrityError:
            pass  # another process stored it at the same moment

    def secrets(self, key_id: str | None = None) -> list[KeySecret]:
        """Every secret (of one key, if given), by key_id then age."""
        query = select(*_SECRET_COLUMNS).order_by(api_keys.c.key_id, api_keys.c.created_at)
        if key_id is not None:
            query = query.where(api_keys.c.key_id == key_id)
        with self.engine.connect() as conn:
            return [_secret_of(row) for row in conn.execute(query)]

    def revoke(self, key_id: str, now: datetime) -> list[KeySecret]:
        """Refuse every secret of `key_id` from now on, in every process; returns its
        secrets. KeyNotFound, or LastAdminKey if no other active admin key would remain.
        Revoking a revoked key changes nothing."""
        with self.engine.begin() as conn:
            self._next_generation(conn)
            losing = self._secrets_of(conn, key_id)
            if any("admin" in s.scopes and s.is_active(now) for s in losing):
                self._keep_an_admin(conn, now, losing=key_id)
            conn.execute(
                api_keys.update()
                .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
        self.generation.changed()
        self._known.clear()
        return self.secrets(key_id)

    def rotate(self, key_id: str, grace: timedelta, now: datetime) -> IssuedKey:
        """A new secret for `key_id` (same name and scopes); its other active secrets keep
        working for `grace` (revoked at once when it is zero). KeyNotFound, KeyNotActive when
        no secret of it is active."""
        with self.engine.begin() as conn:
            self._next_generation(conn)
            active = [s for s in self._secrets_of(conn, key_id) if s.is_active(now)]
            if not active:
                raise KeyNotActive(f"key {key_id} is revoked or expired: create a new key")
            newest = active[-1]
            ending = api_keys.update().where(
                api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None)
            )
            if grace:
                deadline = now + grace
                conn.execute(
                    ending.where(
                        or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > deadline)
                    ).values(expires_at=deadline)
                )
            else:
                conn.execute(ending.values(revoked_at=now))
            issued = self._insert(conn, key_id, list(newest.scopes), newest.name, new_key())
        self.generation.changed()
        self._known.clear()
        return issued

    def remembered(self, key: str) -> Caller | None:
        """The holder of `key` if it was looked up at the current key generation and has not
        expired since; None means "ask `lookup`", not "unknown key". No I/O beyond the
        generation check: safe to call on the event loop."""
        generation = self.generation.current()
        if generation is None:
            return None
        found = self._known.get(hash_key(key))
        if found is None or found.generation != generation:
            return None
        if found.expires_at is not None and time.time() >= found.expires_at:
            return None
        return found.caller

    def lookup(self, key: str) -> Caller | None:
        """Who holds this key and its scopes, or None for an unknown, revoked or expired key.
        Admin implies every scope, read implies `reports` (`domain.permissions`)."""
        hashed = hash_key(key)
        # Read before the key: a change committed after this read moves the generation on,
        # so what the query below saw is never remembered past it.
        generation = self.generation.current()
        with self.engine.connect() as conn:
            row = conn.execute(
                select(*_SECRET_COLUMNS).where(api_keys.c.key_hash == hashed)
            ).first()
        now = datetime.now(UTC)
        if row is None or not (secret := _secret_of(row)).is_active(now):
            self._known.pop(hashed, None)
            return None
        caller = Caller(
            key_id=secret.key_id,
            name=secret.name or secret.key_id,
            scopes=scopes_of_key(secret.scopes),
        )
        if generation is not None:
            expires_at = None if secret.expires_at is None else secret.expires_at.timestamp()
            self._known[hashed] = _Remembered(generation, caller, expires_at)
        return caller

    def use_due(self, key: str) -> bool:
        """Whether `key`'s last_used_at should be written now (at most once per
        USE_RECORD_SECONDS per key in this process); answering yes counts as writing it."""
        hashed = hash_key(key)
        now = time.monotonic()
        last = self._uses.get(hashed)
        if last is not None and now - last < USE_RECORD_SECONDS:
            return False
        self._uses[hashed] = now
        return True

    def record_use(self, key: str, at: datetime) -> None:
        """Write `key`'s last_used_at. A failure is logged, never raised: it is bookkeeping."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    api_keys.update()
                    .where(api_keys.c.key_hash == hash_key(key))
                    .values(last_used_at=at)
                )
        except SQLAlchemyError as exc:
            log.warning("could not record when an API key was last used (%s)", exc)

    async def watch_changes(self) -> None:
        """Follow key changes made by other processes until cancelled (PostgreSQL listens;
        other databases need nothing). Run by the API for its lifetime."""
        await self.generation.watch()

    def close(self) -> None:
        self.generation.close()

    def _insert(
        self, conn: Connection, key_id: str, scopes: list[str], name: str | None, plain: str
    ) -> IssuedKey:
        secret = KeySecret(
            key_id=key_id,
            name=name,
            scopes=tuple(sorted(set(scopes))),
            prefix=plain[:PREFIX_LENGTH],
            created_at=datetime.now(UTC),
            last_used_at=None,
            revoked_at=None,
            expires_at=None,
        )
        conn.execute(
            api_keys.insert().values(
                key_hash=hash_key(plain),
                key_id=key_id,
                name=name,
                scopes=",".join(secret.scopes),
                prefix=secret.prefix,
                created_at=secret.created_at,
            )
        )
        return IssuedKey(plain, secret)

    def _next_generation(self, conn: Connection) -> None:
        """Move the key generation on, first thing in a change: what any process remembers
        is stale once this commits, and the row lock serialises concurrent changes."""
        conn.execute(
            key_generation.update()
            .where(key_generation.c.id == 1)
            .values(generation=key_generation.c.generation + 1)
        )
        if conn.dialect.name == "postgresql":
            # Delivered to the listeners when (and only if) this transaction commits.
            conn.execute(select(func.pg_notify(CHANGES_CHANNEL, "")))

    def _secrets_of(self, conn: Connection, key_id: str) -> list[KeySecret]:
        rows = conn.execute(
            select(*_SECRET_COLUMNS)
            .where(api_keys.c.key_id == key_id)
            .order_by(api_keys.c.created_at)
        ).all()
        if not rows:
            raise KeyNotFound(f"no API key {key_id}")
        return [_secret_of(row) for row in rows]

    def _keep_an_admin(self, conn: Connection, now: datetime, losing: str) -> None:
        remaining = [
            secret
            for secret in map(_secret_of, conn.execute(select(*_SECRET_COLUMNS)))
            if secret.key_id != losing and "admin" in secret.scopes and secret.is_active(now)
        ]
        if not remaining:
            raise LastAdminKey(
                f"revoking {losing} would leave no active admin key: create another first"
            )
