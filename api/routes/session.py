"""The console's sign-in (issue #19, docs/access.md): `POST /v1/session` with login and
password opens a server-side session kept in an HttpOnly cookie; `GET` says who is signed
in, `PATCH` changes their own locale and time zone, `DELETE` signs out.

A wrong login, a wrong password and a disabled user all answer the same 401
`invalid_credentials`, and each counts as a failed authentication of the client's address
(`api.auth_failures`: 429 after too many, as for API keys).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.auth_failures import FailedAuthentications
from api.deps import JsonBody, StoreDep, unthrottled_address
from api.errors import ApiError
from api.openapi_bodies import PREFERENCES_BODY, SESSION_ONLY, SIGN_IN_BODY
from api.responses import KEYED, READS_BODY, answer, refused
from api.sessions import CLEAR_COOKIES, SignedIn, session_cookies, session_of, with_cookies
from api.user_responses import SessionAnswer, SignedOut
from domain.errors import FieldError
from domain.limits import unsafe_values
from domain.users import InvalidUserRequest, User, parse_preferences
from leadflow.bootstrap import Store

router = APIRouter(prefix="/v1/session", tags=["session"])

SIGNED_OUT = {401: "No live session (`unauthenticated`, `session_expired`)."}


async def signed_in(request: Request) -> SignedIn:
    """The request's live session; 401 without one (an API key is not a session)."""
    found = await session_of(request)
    if found is None:
        raise ApiError(401, "unauthenticated", "not signed in: POST /v1/session first")
    return found


SignedInDep = Annotated[SignedIn, Depends(signed_in)]


@router.post(
    "",
    openapi_extra=SIGN_IN_BODY,
    response_model=answer(SessionAnswer),
    responses=refused(
        401,
        422,
        429,
        503,
        *READS_BODY,
        meanings={401: "Unknown login, wrong password or disabled user (`invalid_credentials`)."},
    ),
)
async def sign_in(request: Request, body: JsonBody, store: StoreDep) -> JSONResponse:
    """Sign in with `login` and `password`: answers who you are and the session's CSRF
    token, and sets the `leadflow_session` cookie (HttpOnly, SameSite=Lax, Secure over
    https). The session ends after 12 h unused or 7 days after sign-in."""
    failures: FailedAuthentications = request.app.state.failed_authentications
    address = unthrottled_address(request)
    login, password = _credentials(body)
    opened = await run_in_threadpool(_sign_in, store, login, password)
    if opened is None:
        failures.record(address)
        raise ApiError(401, "invalid_credentials", "wrong login or password")
    session_id, csrf_token, answered = opened
    secure = request.url.scheme == "https"
    response = JSONResponse({**answered, "csrf_token": csrf_token})
    with_cookies(response, session_cookies(session_id, secure))
    return response


def _credentials(body: Any) -> tuple[str, str]:
    if not isinstance(body, dict):
        raise InvalidUserRequest([FieldError("", "expected an object with login and password")])
    # Text no store can hold (a NUL, a lone surrogate) is refused before any lookup.
    unsafe = unsafe_values(body)
    if unsafe:
        raise InvalidUserRequest(unsafe)
    errors = [
        FieldError(f"/{name}", "required: a text of at most 256 characters")
        for name in ("login", "password")
        if not isinstance(body.get(name), str) or not 0 < len(body[name]) <= 256
    ]
    errors += [
        FieldError(f"/{name}", "unknown field: expected login, password")
        for name in body
        if name not in ("login", "password")
    ]
    if errors:
        raise InvalidUserRequest(errors)
    return body["login"], body["password"]


def _sign_in(store: Store, login: str, password: str) -> tuple[str, str, dict[str, Any]] | None:
    user = store.users.authenticate(login, password)
    if user is None:
        return None
    opened = store.users.open_session(user, datetime.now(UTC))
    return opened.session_id, opened.csrf_token, {"user": _user_body(store, user)}


def _user_body(store: Store, user: User) -> dict[str, Any]:
    shown = user.as_json(store.rulebook.directory())
    return {k: shown[k] for k in SESSION_FIELDS}


SESSION_FIELDS = ("user_id", "login", "name", "role", "person_id", "team", "locale", "time_zone")


@router.get(
    "",
    openapi_extra=SESSION_ONLY,
    response_model=answer(SessionAnswer),
    responses=refused(*KEYED, meanings=SIGNED_OUT),
)
async def who_am_i(current: SignedInDep, store: StoreDep) -> dict[str, Any]:
    """Who is signed in, and the session's CSRF token (a reloaded page reads it here)."""
    user = current.session.user
    body = await run_in_threadpool(_user_body, store, user)
    return {"user": body, "csrf_token": current.session.csrf_token}


@router.patch(
    "",
    openapi_extra={**PREFERENCES_BODY, **SESSION_ONLY},
    response_model=answer(SessionAnswer),
    responses=refused(*KEYED, *READS_BODY, meanings=SIGNED_OUT),
)
async def change_preferences(
    current: SignedInDep, body: JsonBody, store: StoreDep
) -> dict[str, Any]:
    """Change your own `locale` (zh-CN, en) and `time_zone` (IANA); null clears one."""
    preferences = parse_preferences(body)
    user = current.session.user
    changed = await run_in_threadpool(store.users.set_preferences, user.user_id, preferences)
    body = await run_in_threadpool(_user_body, store, changed)
    return {"user": body, "csrf_token": current.session.csrf_token}


@router.delete(
    "",
    openapi_extra=SESSION_ONLY,
    response_model=answer(SignedOut),
    responses=refused(*KEYED, meanings=SIGNED_OUT),
)
async def sign_out(current: SignedInDep, store: StoreDep) -> JSONResponse:
    """Sign out: the session ends in every process and the cookie is cleared."""
    await run_in_threadpool(store.users.end_session, current.session_id, datetime.now(UTC))
    response = JSONResponse({"signed_out": True})
    with_cookies(response, CLEAR_COOKIES)
    return response
