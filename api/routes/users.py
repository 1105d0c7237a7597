"""People who sign in, administered over HTTP (admin): list, create, read and change users
(role, directory person, name, preferences, disabled, password). Every change is recorded on
the user's stream with the admin who made it (`GET /v1/users/{user_id}/events`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.deps import AdminBody, AdminCaller, StoreDep, require
from api.openapi_bodies import NEW_USER_BODY, USER_CHANGES_BODY
from api.responses import KEYED, READS_BODY, answer, refused
from api.sessions import actor_of
from api.user_responses import CreatedUser, UserAnswer, UserHistory, UserList
from domain.users import parse_new_user, parse_user_changes
from leadflow.bootstrap import Store
from store.users import generated_password

router = APIRouter(prefix="/v1/users", tags=["users"], dependencies=[Depends(require("admin"))])

UserId = Annotated[str, Path(min_length=1, max_length=40)]
NO_USER = {404: "No such user (`user_not_found`)."}
BAD_USER = {422: "A field is not valid (`invalid_user`): `details` names each by JSON Pointer."}


@router.get("", response_model=answer(UserList), responses=refused(*KEYED))
async def list_users(store: StoreDep) -> dict[str, Any]:
    """Every user, by login."""
    return await run_in_threadpool(_list, store)


def _list(store: Store) -> dict[str, Any]:
    directory = store.rulebook.directory()
    return {"users": [user.as_json(directory) for user in store.users.all()]}


@router.post(
    "",
    status_code=201,
    openapi_extra=NEW_USER_BODY,
    response_model=answer(CreatedUser),
    responses=refused(
        *KEYED,
        *READS_BODY,
        409,
        meanings={**BAD_USER, 409: "The login is taken (`login_taken`)."},
    ),
)
async def create_user(body: AdminBody, caller: AdminCaller, store: StoreDep) -> JSONResponse:
    """A new user. `person_id` (required but for an admin) must name a rep or person of the
    stored directory; without `password` one is generated and answered here only."""
    answered = await run_in_threadpool(_create, store, body, actor_of(caller))
    return JSONResponse(answered, status_code=201)


def _create(store: Store, body: Any, by: dict[str, Any]) -> dict[str, Any]:
    directory = store.rulebook.directory()
    generated = generated_password()
    new = parse_new_user(body, directory, generated)
    user = store.users.create(new, by, datetime.now(UTC))
    shown = generated if new.password == generated else None
    return {**user.as_json(directory), "password": shown}


@router.get(
    "/{user_id}",
    response_model=answer(UserAnswer),
    responses=refused(*KEYED, 404, meanings=NO_USER),
)
async def get_user(user_id: UserId, store: StoreDep) -> dict[str, Any]:
    return await run_in_threadpool(_get, store, user_id)


def _get(store: Store, user_id: str) -> dict[str, Any]:
    return store.users.get(user_id).as_json(store.rulebook.directory())


@router.patch(
    "/{user_id}",
    openapi_extra=USER_CHANGES_BODY,
    response_model=answer(UserAnswer),
    responses=refused(*KEYED, *READS_BODY, 404, meanings={**NO_USER, **BAD_USER}),
)
async def change_user(
    user_id: UserId, body: AdminBody, caller: AdminCaller, store: StoreDep
) -> dict[str, Any]:
    """Change a user's role, person, name, preferences or password, or disable them
    (`disabled: true` ends their sessions at once)."""
    return await run_in_threadpool(_change, store, user_id, body, actor_of(caller))


def _change(store: Store, user_id: str, body: Any, by: dict[str, Any]) -> dict[str, Any]:
    directory = store.rulebook.directory()
    changes = parse_user_changes(body, directory, store.users.get(user_id))
    return store.users.change(user_id, changes, by, datetime.now(UTC)).as_json(directory)


@router.get(
    "/{user_id}/events",
    response_model=answer(UserHistory),
    responses=refused(*KEYED, 404, meanings=NO_USER),
)
async def user_events(user_id: UserId, store: StoreDep) -> dict[str, Any]:
    """Who created the user and every change since, oldest first (never a password)."""
    events = await run_in_threadpool(store.users.history, user_id)
    return {"user_id": user_id, "events": events}
