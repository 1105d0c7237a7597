"""Console sessions at the HTTP edge (issue #19, docs/access.md): the session cookie, the
CSRF check of unsafe requests it authenticates, and the `Caller` a session stands for.

A request is authenticated by `Authorization: Bearer <key>` (systems) or, without that
header, by the `leadflow_session` cookie (people). A cookie is sent by the browser on any
request to the site, including one a foreign page makes it send: so a request it
authenticates with an unsafe method must also carry `X-CSRF-Token`, the session's token,
which only leadflow's own pages can read (from `POST /v1/session` or `GET /v1/session`).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool

from api.errors import ApiError
from domain.access import lead_scope
from domain.directory import Directory
from domain.permissions import SESSION_LIFETIME, scopes_of_role
from domain.users import User
from leadflow.bootstrap import Store
from store.keys import Caller
from store.users import Session

COOKIE = "leadflow_session"
SIGNED_IN = "leadflow_signed_in"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def csrf_ok(method: str, sent: str | None, expected: str) -> bool:
    """Whether a request authenticated by a session cookie may go on: a safe method always;
    an unsafe one (POST, PUT, PATCH, DELETE, ...) only with the session's token, compared in
    constant time."""
    if method.upper() in SAFE_METHODS:
        return True
    return sent is not None and hmac.compare_digest(sent.encode(), expected.encode())


def caller_of(user: User, directory: Directory) -> Caller:
    """The caller a signed-in user is: their role's scopes and the leads they may see."""
    return Caller(
        key_id=f"user:{user.user_id}",
        name=user.name,
        scopes=scopes_of_role(user.role),
        role=user.role,
        person_id=user.person_id,
        user_id=user.user_id,
        lead_scope=lead_scope(user.role, user.person_id, directory),
    )


def actor_of(caller: Caller) -> dict[str, Any]:
    """Who did it, as recorded on what a caller appends (`LoggedEvent.actor`)."""
    if caller.user_id is not None:
        return {
            "kind": "user",
            "user_id": caller.user_id,
            "person_id": caller.person_id,
            "role": caller.role,
        }
    return {"kind": "key", "key_id": caller.key_id}


@dataclass(frozen=True)
class SignedIn:
    """The session a request came with, and the caller it stands for."""

    session_id: str
    session: Session
    caller: Caller


async def session_of(request: Request) -> SignedIn | None:
    """The live session of the request's cookie (None without a cookie); 401 for a cookie
    that is unknown, signed out, expired or of a disabled user; 403 `csrf_failed` for an
    unsafe request without the session's CSRF token."""
    session_id = request.cookies.get(COOKIE)
    if not session_id:
        return None
    store: Store = request.app.state.store
    session, directory = await run_in_threadpool(_read, store, session_id)
    if session is None:
        raise ApiError(
            401, "session_expired", "the session has ended: sign in again", headers=CLEAR_COOKIE
        )
    if not csrf_ok(request.method, request.headers.get(CSRF_HEADER), session.csrf_token):
        raise ApiError(
            403,
            "csrf_failed",
            f"a request signed in by cookie must send the session's {CSRF_HEADER} header",
        )
    return SignedIn(session_id, session, caller_of(session.user, directory))


def _read(store: Store, session_id: str) -> tuple[Session | None, Directory]:
    session = store.users.session(session_id, datetime.now(UTC))
    return session, store.rulebook.directory()


def session_cookies(session_id: str, secure: bool) -> list[str]:
    """The Set-Cookie values that keep a new session in the browser: the session itself
    (HttpOnly: no script reads it) and SIGNED_IN, which holds no secret and tells the
    console's script that there is a session to resume (asking without one is a 401 the
    browser logs as an error on every page)."""
    age = int(SESSION_LIFETIME.total_seconds())
    flags = f"; Max-Age={age}; SameSite=Lax; Path=/{'; Secure' if secure else ''}"
    return [f"{COOKIE}={session_id}{flags}; HttpOnly", f"{SIGNED_IN}=1{flags}"]


def with_cookies(response: Response, cookies: list[str]) -> Response:
    for cookie in cookies:
        response.headers.append("Set-Cookie", cookie)
    return response


CLEAR_COOKIE = {"Set-Cookie": f"{COOKIE}=; Max-Age=0; HttpOnly; SameSite=Lax; Path=/"}
CLEAR_COOKIES = [CLEAR_COOKIE["Set-Cookie"], f"{SIGNED_IN}=; Max-Age=0; SameSite=Lax; Path=/"]
