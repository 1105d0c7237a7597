"""People who sign in to the console (issue #19): what a user is and how a request to create
or change one, or to change one's own preferences, is validated. Pure: the caller passes the
current directory, which a user's `person_id` must name.

Logins are compared case-insensitively: they are stored trimmed and lower-cased (most are
email addresses).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.access import ROLES, Role
from domain.directory import Directory
from domain.errors import Conflict, DomainError, FieldError, InvalidDocument
from domain.limits import unsafe_values
from domain.permissions import password_faults

Locale = Literal["zh-CN", "en"]
LOCALES: tuple[Locale, ...] = get_args(Locale)
MAX_LOGIN_LENGTH = 200
MAX_NAME_LENGTH = 200


@dataclass
class InvalidUserRequest(InvalidDocument):
    code = "invalid_user"
    what = "user"


class UserNotFound(DomainError):
    code = "user_not_found"


class LoginTaken(Conflict):
    code = "login_taken"


@dataclass(frozen=True)
class User:
    """A person who signs in; never their password or its hash."""

    user_id: str
    login: str
    name: str
    role: Role
    person_id: str | None
    locale: Locale | None
    time_zone: str | None
    disabled: bool
    created_at: datetime

    def team(self, directory: Directory) -> str | None:
        """The team the user works in: a rep's own, else the first they manage or direct."""
        if self.person_id is None:
            return None
        rep = directory.rep(self.person_id)
        if rep is not None:
            return rep.team
        for team in directory.teams:
            if self.person_id in (team.manager, team.director):
                return team.id
        return None

    def as_json(self, directory: Directory) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "login": self.login,
            "name": self.name,
            "role": self.role,
            "person_id": self.person_id,
            "team": self.team(directory),
            "locale": self.locale,
            "time_zone": self.time_zone,
            "disabled": self.disabled,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class NewUser:
    """A validated request to create a user."""

    login: str
    name: str
    role: Role
    person_id: str | None
    password: str
    locale: Locale | None = None
    time_zone: str | None = None


def normal_login(login: str) -> str:
    """The stored form of a login: trimmed and lower-cased."""
    return login.strip().lower()


_CREATE_FIELDS = ("login", "name", "role", "person_id", "password", "locale", "time_zone")
_CHANGE_FIELDS = ("name", "role", "person_id", "password", "locale", "time_zone", "disabled")
PREFERENCE_FIELDS = ("locale", "time_zone")


def parse_new_user(body: object, directory: Directory, generated: str) -> NewUser:
    """A create request `{login, role, password?, person_id?, name?, locale?, time_zone?}`,
    or InvalidUserRequest naming each bad field; without a password, `generated` is it."""
    fields, errors = _fields(body, _CREATE_FIELDS, required=("login", "role"))
    login: str = fields.get("login") or ""
    if "login" in fields and not _text(login, MAX_LOGIN_LENGTH):
        errors.append(FieldError("/login", f"a text of 1 to {MAX_LOGIN_LENGTH} characters"))
    errors += _check_changes(fields, directory)
    role = fields.get("role")
    if role in ROLES and role != "admin" and fields.get("person_id") is None:
        errors.append(FieldError("/person_id", f"required for a {role}: their directory id"))
    if errors:
        raise InvalidUserRequest(errors)
    person_id = fields.get("person_id")
    name = fields.get("name") or _directory_name(person_id, directory) or normal_login(login)
    return NewUser(
        login=normal_login(login),
        name=name,
        role=fields["role"],
        person_id=person_id,
        password=fields.get("password") or generated,
        locale=fields.get("locale"),
        time_zone=fields.get("time_zone"),
    )


def parse_user_changes(body: object, directory: Directory, current: User) -> dict[str, Any]:
    """An admin's change request (any of name, role, person_id, password, locale, time_zone,
    disabled), or InvalidUserRequest naming each bad field. A rep, manager or director keeps
    a person_id."""
    fields, errors = _fields(body, _CHANGE_FIELDS)
    errors += _check_changes(fields, directory)
    disabled = fields.get("disabled")
    if "disabled" in fields and not isinstance(disabled, bool):
        errors.append(FieldError("/disabled", "true or false"))
    role = fields.get("role", current.role)
    person_id = fields.get("person_id", current.person_id)
    if role in ROLES and role != "admin" and person_id is None:
        errors.append(FieldError("/person_id", f"required for a {role}: their directory id"))
    if errors:
        raise InvalidUserRequest(errors)
    return fields


def parse_preferences(body: object) -> dict[str, Any]:
    """A user's own preferences `{locale?, time_zone?}` (null clears one)."""
    fields, errors = _fields(body, PREFERENCE_FIELDS)
    errors += _check_preferences(fields)
    if errors:
        raise InvalidUserRequest(errors)
    return fields


def _fields(
    body: object, allowed: tuple[str, ...], required: tuple[str, ...] = ()
) -> tuple[dict[str, Any], list[FieldError]]:
    if not isinstance(body, dict):
        raise InvalidUserRequest([FieldError("", "expected an object")])
    unsafe = unsafe_values(body)
    if unsafe:
        raise InvalidUserRequest(unsafe)
    errors = [
        FieldError(f"/{name}", f"unknown field: expected {', '.join(allowed)}")
        for name in body
        if name not in allowed
    ]
    errors += [FieldError(f"/{name}", "required") for name in required if body.get(name) is None]
    return {k: v for k, v in body.items() if k in allowed}, errors


def _check_changes(fields: dict[str, Any], directory: Directory) -> list[FieldError]:
    errors = _check_preferences(fields)
    if "name" in fields and not _text(fields["name"], MAX_NAME_LENGTH):
        errors.append(FieldError("/name", f"a text of 1 to {MAX_NAME_LENGTH} characters"))
    if "role" in fields and fields["role"] not in ROLES:
        errors.append(FieldError("/role", f"one of {', '.join(ROLES)}"))
    person_id = fields.get("person_id")
    if person_id is not None:
        if not isinstance(person_id, str):
            errors.append(FieldError("/person_id", "a rep's or person's id in the directory"))
        elif directory.person_or_rep(person_id) is None:
            errors.append(FieldError("/person_id", f"{person_id!r} is neither a rep nor a person"))
    if "password" in fields:
        errors += password_faults(fields["password"])
    return errors


def _check_preferences(fields: dict[str, Any]) -> list[FieldError]:
    errors = []
    locale = fields.get("locale")
    if locale is not None and locale not in LOCALES:
        errors.append(FieldError("/locale", f"one of {', '.join(LOCALES)}, or null"))
    zone = fields.get("time_zone")
    if zone is not None and not _time_zone(zone):
        errors.append(FieldError("/time_zone", "an IANA time zone (e.g. Asia/Shanghai), or null"))
    return errors


def _text(value: object, longest: int) -> bool:
    return isinstance(value, str) and len(value.strip()) > 0 and len(value) <= longest


def _time_zone(value: object) -> bool:
    if not isinstance(value, str) or not 0 < len(value) <= 100 or value.startswith("/"):
        return False
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _directory_name(person_id: str | None, directory: Directory) -> str | None:
    found = None if person_id is None else directory.person_or_rep(person_id)
    return None if found is None else found.name
