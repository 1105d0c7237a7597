"""What each caller may do (issue #19, docs/access.md): the scopes a signed-in person's role
grants, the scopes an API key's stored scopes grant, the password rules, and how long a
console session lasts. Pure: no clock, no I/O; the caller passes the time.

Scopes are what `api.deps.require(scope)` checks on each route:

- `read`, `ingest`, `admin`: the API keys' scopes (SPEC §9), unchanged;
- `reports`: the reports and the dashboard's data. A `read` key holds it; of the people,
  managers, directors and admins (a rep's work is their leads, not the floor's numbers);
- `rules`: edit, publish, activate and try rulesets ("sales managers change them without a
  deploy"). An `admin` key holds it; of the people, managers, directors and admins.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.access import Role
from domain.errors import FieldError

SCOPES_OF_ROLE: dict[Role, frozenset[str]] = {
    "rep": frozenset({"read", "ingest"}),
    "manager": frozenset({"read", "ingest", "reports", "rules"}),
    "director": frozenset({"read", "ingest", "reports", "rules"}),
    "admin": frozenset({"read", "ingest", "reports", "rules", "admin"}),
}
# What a key's stored scope grants besides itself.
_IMPLIED_BY_KEY_SCOPE = {
    "read": frozenset({"read", "reports"}),
    "ingest": frozenset({"ingest"}),
    "admin": SCOPES_OF_ROLE["admin"],
}

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 256

# A session ends after this long without a request, and this long after sign-in whatever.
SESSION_IDLE = timedelta(hours=12)
SESSION_LIFETIME = timedelta(days=7)


def scopes_of_role(role: Role) -> frozenset[str]:
    """The scopes a signed-in person with `role` holds."""
    return SCOPES_OF_ROLE[role]


def scopes_of_key(stored: Iterable[str]) -> frozenset[str]:
    """The scopes an API key holding `stored` (ingest, read, admin) is granted."""
    granted: frozenset[str] = frozenset()
    for scope in stored:
        granted |= _IMPLIED_BY_KEY_SCOPE.get(scope, frozenset({scope}))
    return granted


def password_faults(password: object, path: str = "/password") -> list[FieldError]:
    """Why `password` cannot be a password (empty when it can): a text of
    MIN_PASSWORD_LENGTH to MAX_PASSWORD_LENGTH characters."""
    if not isinstance(password, str):
        return [FieldError(path, "a text of 8 to 256 characters")]
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        return [
            FieldError(
                path,
                f"a password has {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters "
                f"(this one has {len(password)})",
            )
        ]
    return []


@dataclass(frozen=True)
class SessionTimes:
    """When a session was opened and last used."""

    created_at: datetime
    last_seen_at: datetime

    def expires_at(self) -> datetime:
        """The moment the session stops working unless it is used again before."""
        return min(self.last_seen_at + SESSION_IDLE, self.created_at + SESSION_LIFETIME)

    def is_live(self, now: datetime) -> bool:
        return now < self.expires_at()
