"""Users and their console sessions (issue #19, docs/access.md): the `users` and
`user_sessions` tables, passwords hashed with argon2id, and the administration events each
change appends to the user's stream on the log (`domain.accounts`).

A session id is 32 random bytes shown once, in the cookie; the table keeps its SHA-256 (as
API keys: nothing to brute-force). A session ends after 12 h without a request or 7 days
after sign-in (`domain.permissions`), when its user signs out, or when they are disabled.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
    select,
)
from sqlalchemy.engine import Engine, Row
from sqlalchemy.exc import IntegrityError

from domain.accounts import UserAccount, account_stream_id
from domain.permissions import SessionTimes
from domain.users import LoginTaken, NewUser, User, UserNotFound
from store.log import EventLog
from store.times import utc

log = logging.getLogger(__name__)

BOOTSTRAP_LOGIN = "admin"
# `last_seen_at` is written at most this often per session: a request is not a write.
SEEN_RECORD_SECONDS = 60.0

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("user_id", String(40), primary_key=True),
    Column("login", String(200), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    Column("person_id", String(100), nullable=True),
    Column("password_hash", String(200), nullable=True),
    Column("locale", String(10), nullable=True),
    Column("time_zone", String(100), nullable=True),
    Column("disabled", Boolean(), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_users_person_id", "person_id"),
)

user_sessions = Table(
    "user_sessions",
    metadata,
    Column("session_hash", String(64), primary_key=True),
    Column("user_id", String(40), ForeignKey("users.user_id"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Index("ix_user_sessions_user_id", "user_id"),
)

_USER_COLUMNS = (
    users.c.user_id,
    users.c.login,
    users.c.name,
    users.c.role,
    users.c.person_id,
    users.c.locale,
    users.c.time_zone,
    users.c.disabled,
    users.c.created_at,
)


@dataclass(frozen=True)
class Session:
    """A live session: its user and the CSRF token its unsafe requests must send."""

    user: User
    csrf_token: str


@dataclass(frozen=True)
class OpenedSession:
    """A new session: the id for the cookie (shown only now) and its CSRF token."""

    session_id: str
    csrf_token: str
    user: User


def hash_session(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def new_user_id() -> str:
    return "usr_" + secrets.token_urlsafe(9)


def generated_password() -> str:
    """A random password for a user created without one (printed once)."""
    return secrets.token_urlsafe(15)


class UserStore:
    """Create, change and authenticate users; open, find and end their sessions. Each
    change to a user also appends who made it to the user's stream on `event_log`."""

    def __init__(
        self, engine: Engine, event_log: EventLog, hasher: PasswordHasher | None = None
    ) -> None:
        self.engine = engine
        self.event_log = event_log
        self.hasher = hasher or PasswordHasher()
        # Verified when a login is unknown, so it costs as long as a wrong password (made
        # at the first sign-in: every process opens a store, few authenticate).
        self._decoy: str | None = None
        # session hash -> when this process last wrote its last_seen_at.
        self._seen: dict[str, datetime] = {}

    # -- users -----------------------------------------------------------------------

    def create(self, new: NewUser, by: dict[str, Any] | None, now: datetime) -> User:
        """Store a new user; LoginTaken if the login is in use."""
        user = User(
            user_id=new_user_id(),
            login=new.login,
            name=new.name,
            role=new.role,
            person_id=new.person_id,
            locale=new.locale,
            time_zone=new.time_zone,
            disabled=False,
            created_at=now,
        )
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    users.insert().values(
                        **_row_of(user), password_hash=self.hasher.hash(new.password)
                    )
                )
        except IntegrityError as exc:
            raise LoginTaken(f"the login {new.login!r} is taken") from exc
        details = {
            "login": user.login,
            "name": user.name,
            "role": user.role,
            "person_id": user.person_id,
        }
        self.event_log.save(UserAccount.open(user.user_id, details, by, now))
        return user

    def ensure_bootstrap_admin(self, password: str, now: datetime) -> None:
        """Create the admin user `admin` with `password` unless a user with that login
        exists (a password changed since, or a disabled admin, stays so)."""
        if self.by_login(BOOTSTRAP_LOGIN) is not None:
            return
        new = NewUser(BOOTSTRAP_LOGIN, "Admin", "admin", None, password)
        with contextlib.suppress(LoginTaken):  # another process created it at that moment
            self.create(new, {"kind": "bootstrap"}, now)

    def all(self) -> list[User]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(*_USER_COLUMNS).order_by(users.c.login)).all()
        return [_user_of(row) for row in rows]

    def get(self, user_id: str) -> User:
        with self.engine.connect() as conn:
            row = conn.execute(select(*_USER_COLUMNS).where(users.c.user_id == user_id)).first()
        if row is None:
            raise UserNotFound(f"no user {user_id}")
        return _user_of(row)

    def by_login(self, login: str) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(*_USER_COLUMNS).where(users.c.login == login.strip().lower())
            ).first()
        return None if row is None else _user_of(row)

    def by_person(self, person_id: str) -> User | None:
        """The user linked to a directory person (the oldest if several are)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(*_USER_COLUMNS)
                .where(users.c.person_id == person_id)
                .order_by(users.c.created_at)
            ).first()
        return None if row is None else _user_of(row)

    def change(
        self, user_id: str, changes: dict[str, Any], by: dict[str, Any] | None, now: datetime
    ) -> User:
        """Apply validated `changes` (`domain.users.parse_user_changes`); a password is
        hashed, a disabled user's sessions end at once. UserNotFound."""
        current = self.get(user_id)
        values = {k: v for k, v in changes.items() if k != "password"}
        if "password" in changes:
            values["password_hash"] = self.hasher.hash(changes["password"])
        with self.engine.begin() as conn:
            if values:
                conn.execute(users.update().where(users.c.user_id == user_id).values(**values))
            if changes.get("disabled") is True:
                conn.execute(
                    user_sessions.update()
                    .where(user_sessions.c.user_id == user_id, user_sessions.c.revoked_at.is_(None))
                    .values(revoked_at=now)
                )
        account: UserAccount = self.event_log.repository.get(account_stream_id(user_id))
        recorded = {k: v for k, v in changes.items() if k != "password"}
        if recorded:
            account.change(recorded, by, now)
        if "password" in changes:
            account.set_password(by, now)
        self.event_log.save(account)
        shown = {k: v for k, v in changes.items() if k in User.__dataclass_fields__}
        return replace(current, **shown)

    def history(self, user_id: str) -> list[dict[str, Any]]:
        """The user's administration events, oldest first: type, changes, by, at."""
        self.get(user_id)
        found = []
        for event in self.event_log.events.get(account_stream_id(user_id)):
            assert isinstance(
                event, UserAccount.Created | UserAccount.Changed | UserAccount.PasswordSet
            )
            entry: dict[str, Any] = {
                "type": event.TYPE,
                "changes": {},
                "by": event.by,
                "at": event.at.isoformat(),
            }
            if isinstance(event, UserAccount.Created):
                entry["changes"] = event.details
            elif isinstance(event, UserAccount.Changed):
                entry["changes"] = event.changes
            found.append(entry)
        return found

    def authenticate(self, login: str, password: str) -> User | None:
        """The enabled user with this login and password, else None (the same for an
        unknown login, a wrong password and a disabled user). Rehashes a password hashed
        with other argon2 parameters than today's."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(*_USER_COLUMNS, users.c.password_hash).where(
                    users.c.login == login.strip().lower()
                )
            ).first()
        stored = None if row is None else row.password_hash
        if stored is None and self._decoy is None:
            self._decoy = self.hasher.hash(secrets.token_urlsafe(16))
        try:
            self.hasher.verify(stored or self._decoy or "", password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None or stored is None:
            return None
        user = _user_of(row)
        if user.disabled:
            return None
        if self.hasher.check_needs_rehash(stored):
            with self.engine.begin() as conn:
                conn.execute(
                    users.update()
                    .where(users.c.user_id == user.user_id)
                    .values(password_hash=self.hasher.hash(password))
                )
        return user

    # -- sessions --------------------------------------------------------------------

    def open_session(self, user: User, now: datetime) -> OpenedSession:
        session_id = secrets.token_urlsafe(32)
        csrf_token = secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            conn.execute(
                user_sessions.insert().values(
                    session_hash=hash_session(session_id),
                    user_id=user.user_id,
                    csrf_token=csrf_token,
                    created_at=now,
                    last_seen_at=now,
                )
            )
        return OpenedSession(session_id, csrf_token, user)

    def session(self, session_id: str, now: datetime) -> Session | None:
        """The live session with this id and its enabled user, else None (unknown,
        signed out, expired, or its user disabled). Records the use (at most once a
        minute per session and process), which keeps the session from idling out."""
        hashed = hash_session(session_id)
        with self.engine.connect() as conn:
            row = conn.execute(
                select(
                    *_USER_COLUMNS,
                    user_sessions.c.csrf_token,
                    user_sessions.c.created_at.label("session_created_at"),
                    user_sessions.c.last_seen_at,
                    user_sessions.c.revoked_at,
                )
                .join(users, users.c.user_id == user_sessions.c.user_id)
                .where(user_sessions.c.session_hash == hashed)
            ).first()
        if row is None or row.revoked_at is not None or row.disabled:
            return None
        times = SessionTimes(utc(row.session_created_at), utc(row.last_seen_at))
        if not times.is_live(now):
            return None
        last = self._seen.get(hashed, times.last_seen_at)
        if now - last >= timedelta(seconds=SEEN_RECORD_SECONDS):
            with self.engine.begin() as conn:
                conn.execute(
                    user_sessions.update()
                    .where(user_sessions.c.session_hash == hashed)
                    .values(last_seen_at=now)
                )
            self._seen[hashed] = now
        return Session(_user_of(row), row.csrf_token)

    def end_session(self, session_id: str, now: datetime) -> None:
        """Sign out: the session is refused from now on."""
        with self.engine.begin() as conn:
            conn.execute(
                user_sessions.update()
                .where(
                    user_sessions.c.session_hash == hash_session(session_id),
                    user_sessions.c.revoked_at.is_(None),
                )
                .values(revoked_at=now)
            )
        self._seen.pop(hash_session(session_id), None)

    def set_preferences(self, user_id: str, preferences: dict[str, Any]) -> User:
        """The user's own locale and time zone (validated `domain.users.parse_preferences`)."""
        if preferences:
            with self.engine.begin() as conn:
                conn.execute(users.update().where(users.c.user_id == user_id).values(**preferences))
        return self.get(user_id)


def _row_of(user: User) -> dict[str, Any]:
    return {
        "user_id": user.user_id,
        "login": user.login,
        "name": user.name,
        "role": user.role,
        "person_id": user.person_id,
        "locale": user.locale,
        "time_zone": user.time_zone,
        "disabled": user.disabled,
        "created_at": user.created_at,
    }


def _user_of(row: Row[Any]) -> User:
    return User(
        user_id=row.user_id,
        login=row.login,
        name=row.name,
        role=row.role,
        person_id=row.person_id,
        locale=row.locale,
        time_zone=row.time_zone,
        disabled=row.disabled,
        created_at=utc(row.created_at),
    )
