"""What the user and session routes answer (`api.routes.users`, `api.routes.session`), for
the OpenAPI description."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from api.responses import Answer, Timestamp


class SessionUser(Answer):
    """The signed-in person as the console shows them."""

    user_id: str
    login: str
    name: str
    role: str = Field(examples=["rep"], description="rep, manager, director or admin")
    person_id: str | None = Field(description="Their id in the sales directory.")
    team: str | None = Field(description="A rep's team, else the first team they manage.")
    locale: str | None = Field(examples=["zh-CN"])
    time_zone: str | None = Field(examples=["Asia/Shanghai"])


class SessionAnswer(Answer):
    """Who is signed in, and the token every unsafe request of the session must send as
    `X-CSRF-Token`."""

    user: SessionUser
    csrf_token: str


class SignedOut(Answer):
    signed_out: bool = Field(description="Always true: the session has ended.")


class SignInProviders(Answer):
    """The ways to sign in this server offers besides login and password."""

    providers: list[str] = Field(examples=[["dingtalk", "wecom"]])


class UserAnswer(SessionUser):
    """A user as an admin sees them (never a password or its hash)."""

    disabled: bool
    created_at: Timestamp


class UserList(Answer):
    users: list[UserAnswer]


class CreatedUser(UserAnswer):
    """A new user; `password` only when the server generated it (shown this once)."""

    password: str | None


class UserHistoryEntry(Answer):
    type: str = Field(examples=["user.changed"])
    changes: dict[str, Any] = Field(description="What changed (never a password).")
    by: dict[str, Any] | None = Field(description="The admin (user or key) who did it.")
    at: Timestamp


class UserHistory(Answer):
    user_id: str
    events: list[UserHistoryEntry]


USER_MODELS: list[type[BaseModel]] = [
    SessionUser,
    SessionAnswer,
    SignedOut,
    SignInProviders,
    UserAnswer,
    UserList,
    CreatedUser,
    UserHistoryEntry,
    UserHistory,
]
