"""API keys: `Authorization: Bearer <key>` with scopes ingest, read, admin (SPEC §9).

Keys are 32 random bytes, so a single SHA-256 is a sound way to store them (no salt or
slow hash needed: there is nothing to brute-force); the plain key is shown once.

A known key's holder is remembered in-process for `CACHE_SECONDS`, so most requests
authenticate without a database round trip (or a thread hop to make one); a key changed or
deleted in the database keeps its old scopes in a running API for up to that long.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, MetaData, String, Table, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

SCOPES = ("ingest", "read", "admin")

# How long a running API trusts what it read about a key (see docs/decisions.md, Keys).
CACHE_SECONDS = 5.0

metadata = MetaData()

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_hash", String(64), primary_key=True),
    Column("scopes", String(100), nullable=False),
    Column("name", String(200), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class Caller:
    """The holder of an API key, as recorded on what they change (e.g. `published_by`)."""

    name: str
    scopes: frozenset[str]


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return "lf_" + secrets.token_urlsafe(32)


class KeyStore:
    def __init__(self, engine: Engine, cache_seconds: float = CACHE_SECONDS) -> None:
        self.engine = engine
        self.cache_seconds = cache_seconds
        # key hash -> (read at, holder). Only known keys: their number bounds its size.
        self._known: dict[str, tuple[float, Caller]] = {}

    def create(self, scopes: list[str], name: str | None = None, key: str | None = None) -> str:
        """Store a key (a new random one unless given) and return it in plain text."""
        unknown = set(scopes) - set(SCOPES)
        if unknown:
            raise ValueError(f"unknown scopes: {sorted(unknown)}")
        plain = key or new_key()
        row = {
            "key_hash": hash_key(plain),
            "scopes": ",".join(sorted(set(scopes))),
            "name": name,
            "created_at": datetime.now(UTC),
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(api_keys.insert().values(**row))
        except IntegrityError:
            # The key exists (e.g. the bootstrap key, stored by every process at start).
            with self.engine.begin() as conn:
                conn.execute(
                    api_keys.update()
                    .where(api_keys.c.key_hash == row["key_hash"])
                    .values(scopes=row["scopes"])
                )
        self._known.pop(hash_key(plain), None)
        return plain

    def remembered(self, key: str) -> Caller | None:
        """The holder of `key` if it was looked up less than `cache_seconds` ago; None means
        "ask `lookup`", not "unknown key". No I/O: safe to call on the event loop."""
        found = self._known.get(hash_key(key))
        if found is None or time.monotonic() - found[0] >= self.cache_seconds:
            return None
        return found[1]

    def lookup(self, key: str) -> Caller | None:
        """Who holds this key and its scopes, or None for an unknown key. Admin implies
        every scope."""
        hashed = hash_key(key)
        read_at = time.monotonic()
        with self.engine.connect() as conn:
            found = conn.execute(
                select(api_keys.c.scopes, api_keys.c.name).where(api_keys.c.key_hash == hashed)
            ).first()
        if found is None:
            self._known.pop(hashed, None)
            return None
        scopes = frozenset(found.scopes.split(","))
        caller = Caller(
            name=found.name or f"key:{hashed[:8]}",
            scopes=frozenset(SCOPES) if "admin" in scopes else scopes,
        )
        self._known[hashed] = (read_at, caller)
        return caller
