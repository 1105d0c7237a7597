"""Request-scoped dependencies: the services built by the composition root, and auth."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool

from api.auth_failures import FailedAuthentications
from api.errors import ApiError
from api.ingest_writer import GroupCommitter
from api.sessions import session_of
from delivery.temporal import LeadWorkflows
from domain.limits import MAX_JSON_DEPTH, nests_deeper_than, unsafe_values
from leadflow.bootstrap import Store
from leadflow.logs import annotate
from leadflow.settings import Settings
from store.keys import PREFIX_LENGTH, Caller

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024


# The dependencies below are `async` because FastAPI runs plain `def` dependencies in a
# worker thread: ~0.2 ms per hop here, for what is an attribute read.


async def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_workflows(request: Request) -> LeadWorkflows | None:
    workflows: LeadWorkflows | None = request.app.state.workflows
    return workflows


async def get_writer(request: Request) -> GroupCommitter:
    writer: GroupCommitter = request.app.state.writer
    return writer


StoreDep = Annotated[Store, Depends(get_store)]
WriterDep = Annotated[GroupCommitter, Depends(get_writer)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
WorkflowsDep = Annotated[LeadWorkflows | None, Depends(get_workflows)]


# The scope each `require(scope)` checks, by the dependency: how the OpenAPI description
# learns which key each operation needs (`api.openapi_bodies.describe_api`) without a
# dependency that runs on every request only to be documented.
SCOPE_OF: dict[Callable[..., Awaitable[Caller]], str] = {}


def unthrottled_address(request: Request) -> str:
    """The client's address; 429 while it is refused for failing to authenticate too often
    (with a key, a session or a password)."""
    failures: FailedAuthentications = request.app.state.failed_authentications
    address = request.client.host if request.client else "unknown"
    retry_after = failures.retry_after(address)
    if retry_after is not None:
        raise ApiError(
            429,
            "too_many_failed_authentications",
            f"too many failed authentications from {address}: try again in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )
    return address


@functools.cache
def require(scope: str) -> Callable[..., Awaitable[Caller]]:
    """A dependency that lets the request through only with a key, or (without an
    `Authorization` header) a console session (`api.sessions`), holding `scope`: 401 without
    a valid key or session, 403 without the scope or (session) without its CSRF token, 429
    while the client's address is refused for failing too often. The same callable for the
    same scope, so FastAPI runs it once per request however many parameters depend on it.
    Its only parameter is the request: each dependency FastAPI solves costs every request
    (this is on the ingest path)."""

    async def check(request: Request) -> Caller:
        store: Store = request.app.state.store
        failures: FailedAuthentications = request.app.state.failed_authentications
        address = unthrottled_address(request)
        header = request.headers.get("authorization", "")
        if not header:
            signed_in = await session_of(request)
            if signed_in is None:
                raise ApiError(
                    401,
                    "unauthenticated",
                    "send an API key (Authorization: Bearer <key>) or sign in",
                )
            annotate(api_key_id=signed_in.caller.key_id)
            if scope not in signed_in.caller.scopes:
                raise ApiError(403, "forbidden", f"a {signed_in.caller.role} may not do this")
            return signed_in.caller
        scheme, _, key = header.partition(" ")
        key = key.strip()
        # A key remembered at the current key generation is checked without a thread hop.
        caller = None
        if scheme.lower() == "bearer" and key:
            caller = store.keys.remembered(key) or await run_in_threadpool(store.keys.lookup, key)
        if caller is None:
            failures.record(address)
            log.warning(
                "authentication failed from %s with key %r… (unknown, revoked or expired)",
                address,
                key[:PREFIX_LENGTH],
            )
            raise ApiError(401, "unauthenticated", "unknown, revoked or expired API key")
        annotate(api_key_id=caller.key_id)
        if store.keys.use_due(key):
            # Written on a worker thread; the request does not wait for it.
            asyncio.get_running_loop().run_in_executor(
                None, store.keys.record_use, key, datetime.now(UTC)
            )
        if scope not in caller.scopes:
            raise ApiError(403, "forbidden", f"this key lacks the {scope!r} scope")
        return caller

    SCOPE_OF[check] = scope
    return check


async def safe_parameters(request: Request) -> None:
    """Refuse, with 422 naming each, path and query parameters holding text no store can
    keep (a NUL: PostgreSQL refuses it): no id, filter or time has one, and the routes
    hand these values to SQL as they are."""
    # A NUL reaches a parameter only as `%00` (the server refuses a raw one, and decoding
    # makes no lone surrogate): a request without one has nothing to look at.
    scope = request.scope
    raw_path = scope.get("raw_path")
    if raw_path is not None and b"%00" not in raw_path and b"%00" not in scope["query_string"]:
        return
    details = [
        {**fault.as_dict(), "in": where}
        for where, parameters in (
            ("path", request.path_params.items()),
            ("query", request.query_params.multi_items()),
        )
        for name, value in parameters
        for fault in unsafe_values({name: value})
    ]
    if details:
        raise ApiError(422, "invalid_request", "the request is not valid", details)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number: numbers must be finite")


def _too_deep() -> ApiError:
    return ApiError(
        400,
        "json_too_deep",
        f"the body nests objects and arrays more than {MAX_JSON_DEPTH} deep",
        [{"path": "", "message": f"at most {MAX_JSON_DEPTH} levels of objects and arrays"}],
    )


async def json_body(request: Request) -> Any:
    """The request body as JSON, refusing bodies over 1 MiB before reading them whole
    (413), and bodies that are not strict JSON (`NaN`, `Infinity`: 400 `malformed_json`) or
    nest more than MAX_JSON_DEPTH deep (400 `json_too_deep`)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ApiError(413, "body_too_large", "the body is over 1 MiB")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, "body_too_large", "the body is over 1 MiB")
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks), parse_constant=_refuse_constant)
    except RecursionError:
        # The parser recurses per level: a body thousands deep exhausts the stack.
        raise _too_deep() from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(
            400,
            "malformed_json",
            f"the body is not JSON: {exc}",
            [{"path": "", "message": str(exc)}],
        ) from exc
    if nests_deeper_than(body, MAX_JSON_DEPTH):
        raise _too_deep()
    return body


JsonBody = Annotated[Any, Depends(json_body)]


@functools.cache
def body_for(scope: str) -> Callable[..., Awaitable[Any]]:
    """The JSON body as `json_body` reads it, read only once the caller holds `scope`: a
    request without the right key is answered 401/403 (or 429) whatever its body holds."""

    # A default, not an annotation: with postponed annotations FastAPI could not see `scope`.
    async def authorized_body(request: Request, _: Caller = Depends(require(scope))) -> Any:
        return await json_body(request)

    return authorized_body


AdminCaller = Annotated[Caller, Depends(require("admin"))]
IngestCaller = Annotated[Caller, Depends(require("ingest"))]
ReadCaller = Annotated[Caller, Depends(require("read"))]
AdminBody = Annotated[Any, Depends(body_for("admin"))]
# Rulesets' changes: admins, and the managers and directors who sign in (domain.permissions).
RulesCaller = Annotated[Caller, Depends(require("rules"))]
RulesBody = Annotated[Any, Depends(body_for("rules"))]
IngestBody = Annotated[Any, Depends(body_for("ingest"))]
ReadBody = Annotated[Any, Depends(body_for("read"))]
