"""Crypto-shredding of leads' personal data (docs/erasure.md): each lead has its own data
key (AES-256-GCM) in `lead_data_keys`; the personal fields of its events
(`domain.personal.PERSONAL_FIELDS`) are stored sealed with it, and read back with it while
it exists. Erasing a lead deletes its key: every copy of those events (the log, its
backups, a replica) is then unreadable, without rewriting one event.

`SealingMapper` is the log's mapper: it seals as an event is stored and unseals as it is
read, so every reader above the store sees plain values (or None once the key is gone).
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import get_topic
from sqlalchemy import (
    Column,
    DateTime,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    event,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine

from domain.lead import LEAD_EVENT_CLASSES, LeadEvent
from domain.personal import personal_fields

# A sealed value is this prefix, then base64url(nonce ‖ AES-GCM ciphertext ‖ tag) of the
# value's JSON. The prefix is what readers look for in a stored event's bytes.
SEALED_PREFIX = "lf-sealed:1:"
SEALED_MARKER = SEALED_PREFIX.encode()
_NONCE_BYTES = 12

metadata = MetaData()

lead_data_keys = Table(
    "lead_data_keys",
    metadata,
    Column("lead_id", String(36), nullable=False),
    # NULL once the lead was erased: the row stays so that no new key is made for it.
    Column("data_key", LargeBinary(), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("erased_at", DateTime(timezone=True), nullable=True),
    PrimaryKeyConstraint("lead_id", name="pk_lead_data_keys"),
)

# The stored topics of events whose data may hold personal fields.
SEALED_TOPICS = {
    get_topic(cls): cls.TYPE for cls in LEAD_EVENT_CLASSES if personal_fields(cls.TYPE)
}

# Keys kept per process. An erased lead's key can outlive its erasure only here, and only
# in a process that read the lead just before (each reader evicts a lead whose
# `lead.erased` it decodes; see `LoggedEventDecoder`).
KEY_CACHE_SIZE = 10_000


class LeadKeyring:
    """Every lead's data key: made with the lead's first sealed event, read (and cached)
    to unseal, deleted by erasure. Runs its statements inside the log's transaction when
    there is one (an append creates its lead's key in the same commit)."""

    def __init__(self, connect: Any) -> None:
        # `connect(commit)`: a context manager giving the log's session (the recorder's
        # `transaction`), so a key is written in the same transaction as its events.
        self._connect = connect
        self._keys: OrderedDict[str, bytes | None] = OrderedDict()
        self._table_checked = False

    def _connection(self, session: Any) -> Connection:
        connection: Connection = session.connection()
        if not self._table_checked:
            # Migrations make the table (0005) before a process opens the log; a log opened
            # on its own (a test's, a tool's) makes it as the library makes its own tables.
            metadata.create_all(connection, checkfirst=True)
            self._table_checked = True
        return connection

    def load(self, lead_ids: Iterable[str]) -> None:
        """Read the keys of `lead_ids` not cached yet, in one query (a page of events)."""
        wanted = [lead_id for lead_id in dict.fromkeys(lead_ids) if lead_id not in self._keys]
        if not wanted:
            return
        with self._connect(False) as session:
            rows = self._connection(session).execute(
                select(lead_data_keys.c.lead_id, lead_data_keys.c.data_key).where(
                    lead_data_keys.c.lead_id.in_(wanted)
                )
            )
            for lead_id, data_key in rows:
                self._remember(lead_id, None if data_key is None else bytes(data_key))

    def key_for_reading(self, lead_id: str) -> bytes | None:
        """The lead's key; None if it was erased or never had one."""
        if lead_id not in self._keys:
            self.load([lead_id])
        return self._keys.get(lead_id)

    def key_for_writing(
        self, lead_id: str, now: datetime, *, new_lead: bool = False
    ) -> bytes | None:
        """The lead's key, made now if it has none; None if the lead was erased.
        `new_lead`: the lead's first event, whose key is written without a read first.

        A key made here is not cached: the transaction it was written in may still roll
        back (a retried append), and a key only this process knew would lose its data."""
        if lead_id in self._keys:
            return self._keys[lead_id]
        with self._connect(True) as session:
            connection = self._connection(session)
            if not new_lead:
                found = connection.execute(
                    select(lead_data_keys.c.data_key).where(lead_data_keys.c.lead_id == lead_id)
                ).first()
                if found is not None:
                    key = None if found[0] is None else bytes(found[0])
                    self._remember(lead_id, key)
                    return key
            key = AESGCM.generate_key(bit_length=256)
            row = {"lead_id": lead_id, "data_key": key, "created_at": now}
            made = connection.execute(
                _insert_if_absent(connection, row).returning(lead_data_keys.c.lead_id)
            ).first()
            if made is not None:
                return key
            stored = connection.execute(
                select(lead_data_keys.c.data_key).where(lead_data_keys.c.lead_id == lead_id)
            ).scalar_one()
            return None if stored is None else bytes(stored)

    def erase(self, lead_id: str, now: datetime) -> None:
        """Delete the lead's key (inside the caller's transaction, if any): what was sealed
        with it can no longer be read, and nothing new is sealed for it."""
        with self._connect(True) as session:
            connection = self._connection(session)
            tombstone = {"lead_id": lead_id, "data_key": None, "created_at": now, "erased_at": now}
            connection.execute(_insert_if_absent(connection, tombstone))
            connection.execute(
                update(lead_data_keys)
                .where(lead_data_keys.c.lead_id == lead_id)
                .values(data_key=None, erased_at=now)
            )
        self.forget(lead_id)
        self._remember(lead_id, None)

    def erased_at(self, lead_id: str) -> datetime | None:
        with self._connect(False) as session:
            found = (
                self._connection(session)
                .execute(
                    select(lead_data_keys.c.erased_at).where(lead_data_keys.c.lead_id == lead_id)
                )
                .scalar_one_or_none()
            )
        return found if isinstance(found, datetime) else None

    def forget(self, lead_id: str) -> None:
        """Drop the cached key (the lead was erased, maybe by another process)."""
        self._keys.pop(lead_id, None)

    def _remember(self, lead_id: str, key: bytes | None) -> None:
        self._keys[lead_id] = key
        self._keys.move_to_end(lead_id)
        while len(self._keys) > KEY_CACHE_SIZE:
            self._keys.popitem(last=False)


def _insert_if_absent(connection: Connection, row: dict[str, Any]) -> Any:
    if connection.dialect.name == "postgresql":
        return postgresql_insert(lead_data_keys).values(row).on_conflict_do_nothing()
    return sqlite_insert(lead_data_keys).values(row).on_conflict_do_nothing()


def seal_value(key: bytes, lead_id: str, context: str, value: Any) -> str:
    """`value` sealed with the lead's key, bound to the lead and `context` (the event type):
    a sealed value copied into another lead's event, or another kind of event, does not
    open."""
    nonce = os.urandom(_NONCE_BYTES)
    plain = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    sealed = AESGCM(key).encrypt(nonce, plain, f"{lead_id}/{context}".encode())
    return SEALED_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()


def open_value(key: bytes | None, lead_id: str, context: str, sealed: str) -> Any:
    """The value sealed in `sealed`; None without the key (erased), or if it does not
    open (it was not sealed for this lead and context)."""
    if key is None:
        return None
    raw = base64.urlsafe_b64decode(sealed[len(SEALED_PREFIX) :])
    try:
        plain = AESGCM(key).decrypt(
            raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], f"{lead_id}/{context}".encode()
        )
    except InvalidTag:
        return None
    return json.loads(plain)


# Where an event's sealed fields are kept in its data: `{"fields": [names], "box": sealed}`.
# One box per event, not one per field: opening it is a fifth of the cost (the decoder
# reads every event of the log). No posted event's data may have this key (extra="forbid").
SEALED_KEY = "sealed"


def seal_data(
    event_type: str, data: dict[str, Any], lead_id: str, key: bytes | None
) -> dict[str, Any]:
    """The event's data with its personal fields moved into one box sealed with `key`
    (their names stay readable); with no key (the lead was erased) they are left out."""
    fields = [name for name in personal_fields(event_type) if data.get(name) not in (None, {})]
    if not fields or SEALED_KEY in data:
        return data
    sealed = {name: value for name, value in data.items() if name not in fields}
    if key is None:
        return sealed
    if event_type == "lead.captured":
        # What rules need of the identities, kept readable through an erasure.
        _, at, domain = str(data.get("email") or "").rpartition("@")
        if at and domain:
            sealed["email_domain"] = domain
        if data.get("phone"):
            sealed["has_phone"] = True
    box = seal_value(key, lead_id, event_type, {name: data[name] for name in fields})
    sealed[SEALED_KEY] = {"fields": fields, "box": box}
    return sealed


def open_data(
    event_type: str, data: dict[str, Any], lead_id: str, key: bytes | None
) -> dict[str, Any]:
    """The event's data with its sealed fields back in place (None, or {} for attributes,
    once the key is gone)."""
    sealed = data.get(SEALED_KEY)
    if not isinstance(sealed, dict) or not isinstance(sealed.get("box"), str):
        return data
    opened = {name: value for name, value in data.items() if name != SEALED_KEY}
    plain = open_value(key, lead_id, event_type, sealed["box"])
    for name in sealed.get("fields") or ():
        if isinstance(plain, dict) and name in plain:
            opened[name] = plain[name]
        else:
            opened[name] = {} if name == "attributes" else None
    return opened


class SealingMapper(Mapper[UUID]):
    """The library's mapper, sealing lead events' personal fields as they are stored and
    opening them as they are read (with `keyring`)."""

    keyring: LeadKeyring

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        if isinstance(domain_event, LeadEvent) and personal_fields(domain_event.TYPE):
            data = domain_event.data
            names = personal_fields(domain_event.TYPE)
            if any(data.get(name) not in (None, {}) for name in names):
                lead_id = str(domain_event.originator_id)
                key = self.keyring.key_for_writing(
                    lead_id, domain_event.timestamp, new_lead=domain_event.originator_version == 1
                )
                sealed = object.__new__(type(domain_event))
                object.__setattr__(
                    sealed,
                    "__dict__",
                    {
                        **domain_event.__dict__,
                        "data": seal_data(domain_event.TYPE, data, lead_id, key),
                    },
                )
                domain_event = sealed
        return super().to_stored_event(domain_event)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        domain_event = super().to_domain_event(stored_event)
        if SEALED_MARKER in stored_event.state and isinstance(domain_event, LeadEvent):
            lead_id = str(stored_event.originator_id)
            key = self.keyring.key_for_reading(lead_id)
            object.__setattr__(
                domain_event, "data", open_data(domain_event.TYPE, domain_event.data, lead_id, key)
            )
        return domain_event


def forget_overwritten_pages(engine: Engine | Connection) -> None:
    """On SQLite, copy the write-ahead log into the database and empty it: the log keeps
    the pages as they were before an erasure (a deleted key, a read-model row in clear)
    until then. Nothing to do on PostgreSQL (docs/erasure.md says what remains there)."""
    if engine.dialect.name != "sqlite":
        return
    if isinstance(engine, Connection):
        engine.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


@event.listens_for(Engine, "connect")
def _zero_deleted_content(dbapi_connection: Any, _record: Any) -> None:
    """SQLite keeps a deleted or overwritten row's bytes in the file's free space unless
    told to zero them: an erased lead's old read-model rows would stay greppable. FAST
    zeroes them within their page, where an erasure's updates leave them, without the
    extra writes ON costs every rebuild (it zeroes every page a dropped table frees)."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA secure_delete = FAST")
        cursor.close()
