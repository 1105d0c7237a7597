"""The record of user administration on the log (issue #19): one stream per user, each event
naming who did it (`by`, an actor such as {"kind": "user", "user_id", ...} or {"kind": "key",
"key_id"}). The `users` table (`store.users`) is what sign-in reads; these events are the
history of who created a user, changed their role or person, disabled them or set their
password (never the password or its hash)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.identity import LEADFLOW_NAMESPACE


def account_stream_id(user_id: str) -> UUID:
    """The id of `user_id`'s stream of administration events."""
    return uuid5(LEADFLOW_NAMESPACE, f"stream:user:{user_id}")


class UserAccount(Aggregate):
    """Who created a user and every change made to them since."""

    class Created(Aggregate.Created):
        TYPE: ClassVar[str] = "user.created"
        user_id: str
        details: dict[str, Any]
        by: dict[str, Any] | None
        at: datetime

    class Changed(Aggregate.Event):
        TYPE: ClassVar[str] = "user.changed"
        # The fields changed and their new values (role, person_id, name, disabled, ...).
        changes: dict[str, Any]
        by: dict[str, Any] | None
        at: datetime

    class PasswordSet(Aggregate.Event):
        TYPE: ClassVar[str] = "user.password_set"
        by: dict[str, Any] | None
        at: datetime

    def __init__(
        self, user_id: str, details: dict[str, Any], by: dict[str, Any] | None, at: datetime
    ) -> None:
        self.user_id = user_id

    @classmethod
    def open(
        cls, user_id: str, details: dict[str, Any], by: dict[str, Any] | None, at: datetime
    ) -> UserAccount:
        return cls._create(
            cls.Created,
            id=account_stream_id(user_id),
            user_id=user_id,
            details=details,
            by=by,
            at=at,
        )

    def change(self, changes: dict[str, Any], by: dict[str, Any] | None, at: datetime) -> None:
        self.trigger_event(self.Changed, changes=changes, by=by, at=at)

    def set_password(self, by: dict[str, Any] | None, at: datetime) -> None:
        self.trigger_event(self.PasswordSet, by=by, at=at)
