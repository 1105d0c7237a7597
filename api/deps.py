"""Request-scoped dependencies: the services built by the composition root, and auth."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request

from api.errors import ApiError
from api.keys import Caller
from leadflow.bootstrap import Store
from leadflow.settings import Settings
from leadflow.temporal import LeadWorkflows

MAX_BODY_BYTES = 1024 * 1024


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_workflows(request: Request) -> LeadWorkflows | None:
    workflows: LeadWorkflows | None = request.app.state.workflows
    return workflows


StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
WorkflowsDep = Annotated[LeadWorkflows | None, Depends(get_workflows)]


def require(scope: str) -> Callable[..., Caller]:
    """A dependency that lets the request through only with a key holding `scope`."""

    def check(request: Request, store: StoreDep) -> Caller:
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise ApiError(401, "unauthenticated", "send an API key: Authorization: Bearer <key>")
        caller = store.keys.lookup(key.strip())
        if caller is None:
            raise ApiError(401, "unauthenticated", "unknown API key")
        if scope not in caller.scopes:
            raise ApiError(403, "forbidden", f"this key lacks the {scope!r} scope")
        return caller

    return check


async def json_body(request: Request) -> Any:
    """The request body as JSON, refusing bodies over 1 MiB before reading them whole."""
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
        return json.loads(b"".join(chunks))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(
            400,
            "malformed_json",
            f"the body is not JSON: {exc}",
            [{"path": "", "message": str(exc)}],
        ) from exc


JsonBody = Annotated[Any, Depends(json_body)]
AdminCaller = Annotated[Caller, Depends(require("admin"))]
