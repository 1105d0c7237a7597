"""API keys over HTTP (admin): list, create, revoke and rotate. No answer ever holds a
key's hash, and a plain key only in the answer that created it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.deps import AdminBody, AdminCaller, StoreDep, json_body, require
from api.openapi_bodies import ROTATION_BODY, new_key_body
from api.responses import KEYED, READS_BODY, ApiKeys, IssuedApiKey, answer, refused
from domain.errors import FieldError
from domain.limits import unsafe_values
from store.keys import (
    DEFAULT_ROTATION_GRACE,
    MAX_ROTATION_GRACE,
    InvalidKeyRequest,
    IssuedKey,
    KeySecret,
    check_scopes,
)

router = APIRouter(prefix="/v1/keys", tags=["keys"], dependencies=[Depends(require("admin"))])

KeyId = Annotated[str, Path(min_length=1, max_length=40)]
NO_KEY = {404: "No such key (`key_not_found`)."}
MAX_NAME_LENGTH = 200


async def rotation_body(_: AdminCaller, request: Request) -> Any:
    """The rotation's JSON body, or {} when the request has none (read after auth)."""
    empty = request.headers.get("content-length", "0") == "0"
    if empty and "transfer-encoding" not in request.headers:
        return {}
    return await json_body(request)


@router.get("", response_model=answer(ApiKeys), responses=refused(*KEYED))
async def list_keys(store: StoreDep) -> dict[str, Any]:
    """Every secret of every key, by key_id then age, with its status."""
    found = await run_in_threadpool(store.keys.secrets)
    return _secrets_body(found)


@router.post(
    "",
    status_code=201,
    openapi_extra=new_key_body(MAX_NAME_LENGTH),
    response_model=answer(IssuedApiKey),
    responses=refused(*KEYED, *READS_BODY),
)
async def create_key(body: AdminBody, store: StoreDep) -> JSONResponse:
    """A new key with `scopes` (and an optional `name`); the plain `key` is shown here only."""
    scopes, name = _new_key_request(body)
    issued = await run_in_threadpool(store.keys.issue, scopes, name)
    return _issued_body(issued)


@router.post(
    "/{key_id}/revoke",
    response_model=answer(ApiKeys),
    responses=refused(
        *KEYED,
        404,
        409,
        meanings={**NO_KEY, 409: "It is the last active admin key (`last_admin_key`)."},
    ),
)
async def revoke_key(key_id: KeyId, store: StoreDep) -> dict[str, Any]:
    """Refuse the key at once, in every API process; 409 `last_admin_key` if it is the last
    active admin key."""
    revoked = await run_in_threadpool(store.keys.revoke, key_id, datetime.now(UTC))
    return _secrets_body(revoked)


@router.post(
    "/{key_id}/rotate",
    status_code=201,
    openapi_extra=ROTATION_BODY,
    response_model=answer(IssuedApiKey),
    responses=refused(*KEYED, *READS_BODY, 404, meanings=NO_KEY),
)
async def rotate_key(
    key_id: KeyId, body: Annotated[Any, Depends(rotation_body)], store: StoreDep
) -> JSONResponse:
    """A new secret for the key; the old one keeps working for `grace_seconds` (default
    86400; 0 revokes it at once)."""
    grace = _grace(body)
    issued = await run_in_threadpool(store.keys.rotate, key_id, grace, datetime.now(UTC))
    return _issued_body(issued)


def _new_key_request(body: Any) -> tuple[list[str], str | None]:
    if not isinstance(body, dict):
        raise InvalidKeyRequest([FieldError("", "expected an object with `scopes`")])
    # A name is stored: text no store can hold (a NUL, a lone surrogate) is refused first.
    unsafe = unsafe_values(body)
    if unsafe:
        raise InvalidKeyRequest(unsafe)
    errors = [
        FieldError(f"/{field}", "unknown field: expected scopes, name")
        for field in body
        if field not in ("scopes", "name")
    ]
    scopes: list[str] = []
    if not isinstance(body.get("scopes"), list):
        errors.append(FieldError("/scopes", "required: a list of scopes (ingest, read, admin)"))
    else:
        try:
            scopes = check_scopes(body["scopes"])
        except InvalidKeyRequest as invalid:
            errors.extend(invalid.errors)
    name = body.get("name")
    if name is not None and (not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_LENGTH):
        errors.append(FieldError("/name", f"a text of 1 to {MAX_NAME_LENGTH} characters"))
    if errors:
        raise InvalidKeyRequest(errors)
    return scopes, name


def _grace(body: Any) -> timedelta:
    if not isinstance(body, dict):
        raise InvalidKeyRequest([FieldError("", "expected an object")])
    # Before the field names are echoed: an answer cannot carry a lone surrogate.
    unsafe = unsafe_values(body)
    if unsafe:
        raise InvalidKeyRequest(unsafe)
    errors = [
        FieldError(f"/{field}", "unknown field: expected grace_seconds")
        for field in body
        if field != "grace_seconds"
    ]
    seconds = body.get("grace_seconds")
    limit = int(MAX_ROTATION_GRACE.total_seconds())
    if seconds is not None and (
        isinstance(seconds, bool) or not isinstance(seconds, int) or not 0 <= seconds <= limit
    ):
        errors.append(FieldError("/grace_seconds", f"a whole number of seconds, 0 to {limit}"))
    if errors:
        raise InvalidKeyRequest(errors)
    return DEFAULT_ROTATION_GRACE if seconds is None else timedelta(seconds=seconds)


def _secrets_body(found: list[KeySecret]) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {"keys": [secret.as_json(now) for secret in found]}


def _issued_body(issued: IssuedKey) -> JSONResponse:
    body = {**issued.secret.as_json(datetime.now(UTC)), "key": issued.key}
    return JSONResponse(body, status_code=201)
