"""Saved views of the lead list: `GET /v1/views`, `POST /v1/views` {name, query},
`DELETE /v1/views/{view_id}` (docs/leads-search.md). A view belongs to whoever saved it —
the signed-in person, or the API key — and is a 404 to anyone else."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.deps import ReadBody, ReadCaller, StoreDep, require
from api.errors import ApiError
from api.lead_query import InvalidLeadQuery, canonical_query, parse_lead_query, view_query_values
from api.openapi_bodies import VIEW_BODY
from api.responses import KEYED, READS_BODY, answer, refused
from api.view_responses import SavedView, SavedViews, ViewDeleted
from domain.errors import FieldError
from domain.limits import unsafe_values
from store.keys import Caller
from store.saved_views import MAX_NAME_LENGTH, TooManyViews
from store.saved_views import SavedViews as ViewTable

router = APIRouter(prefix="/v1/views", tags=["views"], dependencies=[Depends(require("read"))])

ViewId = Annotated[str, Path(min_length=1, max_length=36)]
NO_VIEW = {404: "The caller has no view of that id (`view_not_found`)."}


def owner_of(caller: Caller) -> str:
    """Whose views these are: the signed-in person, else the API key."""
    return f"user:{caller.user_id}" if caller.user_id else f"key:{caller.key_id}"


@router.get("", response_model=answer(SavedViews), responses=refused(*KEYED))
async def list_views(caller: ReadCaller, store: StoreDep) -> dict[str, Any]:
    """The caller's saved views, by name."""
    found = await run_in_threadpool(ViewTable(store.engine).list, owner_of(caller))
    return {"views": [view.as_json() for view in found]}


@router.post(
    "",
    status_code=201,
    openapi_extra=VIEW_BODY,
    response_model=answer(SavedView),
    responses=refused(
        *KEYED,
        *READS_BODY,
        409,
        meanings={409: "The caller keeps the most views allowed (`too_many_views`)."},
    ),
)
async def save_view(caller: ReadCaller, body: ReadBody, store: StoreDep) -> JSONResponse:
    """Save the list's parameters under a name; saving under a name the caller already uses
    replaces that view's query (same `view_id`)."""
    name, query = _view_request(body)
    table = ViewTable(store.engine)
    try:
        view, _ = await run_in_threadpool(
            table.save, owner_of(caller), name, query, datetime.now(UTC)
        )
    except TooManyViews as full:
        raise ApiError(409, "too_many_views", str(full)) from None
    return JSONResponse(view.as_json(), status_code=201)


@router.delete(
    "/{view_id}",
    response_model=answer(ViewDeleted),
    responses=refused(*KEYED, 404, meanings=NO_VIEW),
)
async def delete_view(view_id: ViewId, caller: ReadCaller, store: StoreDep) -> dict[str, Any]:
    """Delete one of the caller's views."""
    table = ViewTable(store.engine)
    if not await run_in_threadpool(table.delete, owner_of(caller), view_id):
        raise ApiError(404, "view_not_found", "you have no view of that id")
    return {"view_id": view_id, "deleted": True}


def _view_request(body: Any) -> tuple[str, dict[str, Any]]:
    """The view's name and its query as kept; 422 naming every bad field."""
    if not isinstance(body, dict):
        raise _invalid([FieldError("", "expected an object with `name` and `query`")])
    # Stored and echoed: text no store can hold (a NUL, a lone surrogate) is refused first.
    unsafe = unsafe_values(body)
    if unsafe:
        raise _invalid(unsafe)
    errors = [
        FieldError(f"/{field}", "unknown field: expected name, query")
        for field in body
        if field not in ("name", "query")
    ]
    name = body.get("name")
    if not isinstance(name, str) or not 0 < len(name.strip()) <= MAX_NAME_LENGTH:
        errors.append(FieldError("/name", f"a text of 1 to {MAX_NAME_LENGTH} characters"))
    query: dict[str, Any] = {}
    if "query" not in body:
        errors.append(FieldError("/query", "required: an object of list parameters"))
    try:
        values = view_query_values(body.get("query", {}))
        parse_lead_query(values)
        query = canonical_query(values)
    except InvalidLeadQuery as invalid:
        errors += [
            FieldError("/query" + (f"/{field}" if field else ""), message)
            for field, message in invalid.problems
        ]
    if errors:
        raise _invalid(errors)
    assert isinstance(name, str)
    return name.strip(), query


def _invalid(errors: list[FieldError]) -> ApiError:
    return ApiError(
        422,
        "invalid_view",
        "the view is not valid",
        [error.as_dict() for error in errors],
    )
