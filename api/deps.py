"""Request-scoped dependencies: the services built by the composition root, and auth."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool

from api.errors import ApiError
from api.group_commit import GroupCommitter
from api.keys import Caller
from domain.limits import MAX_JSON_DEPTH, nests_deeper_than
from leadflow.bootstrap import Store
from leadflow.settings import Settings
from leadflow.temporal import LeadWorkflows

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


def require(scope: str) -> Callable[..., Awaitable[Caller]]:
    """A dependency that lets the request through only with a key holding `scope`."""

    async def check(request: Request, store: StoreDep) -> Caller:
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise ApiError(401, "unauthenticated", "send an API key: Authorization: Bearer <key>")
        # A key seen in the last few seconds is checked without I/O, on the event loop.
        caller = store.keys.remembered(key) or await run_in_threadpool(store.keys.lookup, key)
        if caller is None:
            raise ApiError(401, "unauthenticated", "unknown API key")
        if scope not in caller.scopes:
            raise ApiError(403, "forbidden", f"this key lacks the {scope!r} scope")
        return caller

    return check


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
AdminCaller = Annotated[Caller, Depends(require("admin"))]
