"""The quarantine (admin): what failed for one lead and waits for an operator, and their
word on it — `retry` or `skip` (docs/decisions.md, "Quarantine")."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.deps import StoreDep, WorkflowsDep, require
from api.responses import KEYED, Quarantine, QuarantineItem, answer, refused
from delivery.temporal import act_on_quarantine_item
from store.quarantine import OPEN, STATUSES

router = APIRouter(
    prefix="/v1/quarantine", tags=["quarantine"], dependencies=[Depends(require("admin"))]
)

NO_ITEM = {404: "No such item (`quarantine_item_not_found`)."}
# An operator's word goes to the lead's workflow: 503 while Temporal cannot take it.
ACTED_ON = refused(
    *KEYED,
    404,
    409,
    meanings={
        **NO_ITEM,
        409: "The item is already resolved or skipped.",
        503: "The database or Temporal is unavailable (`temporal_unavailable`): retry after "
        "`Retry-After` seconds.",
    },
)

Status = Literal[
    "open", "all", "retrying", "parked", "retry_requested", "skip_requested", "resolved", "skipped"
]


@router.get("", response_model=answer(Quarantine), responses=refused(*KEYED))
async def list_items(
    store: StoreDep,
    status: Status = "open",
    stage: Annotated[str | None, Query(min_length=1, max_length=120)] = None,
    lead_id: Annotated[str | None, Query(min_length=1, max_length=36)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Items by status (`open`: every one not yet resolved or skipped, the default), oldest
    first, with the count of open items by status."""
    statuses = OPEN if status == "open" else STATUSES if status == "all" else (status,)

    def read() -> dict[str, Any]:
        items = store.quarantine.find(statuses=statuses, stage=stage, lead_id=lead_id, limit=limit)
        return {
            "items": [item.as_json() for item in items],
            "counts": store.quarantine.counts(),
        }

    return await run_in_threadpool(read)


@router.get(
    "/{item_id}",
    response_model=answer(QuarantineItem),
    responses=refused(*KEYED, 404, meanings=NO_ITEM),
)
async def get_item(item_id: str, store: StoreDep) -> dict[str, Any]:
    item = await run_in_threadpool(store.quarantine.get, item_id)
    return item.as_json()


@router.post(
    "/{item_id}/retry",
    status_code=202,
    response_model=answer(QuarantineItem),
    responses=ACTED_ON,
)
async def retry(item_id: str, store: StoreDep, workflows: WorkflowsDep) -> JSONResponse:
    """Try the item's stream again now, from the event that failed (409 if the item is
    already resolved or skipped)."""
    return await _act(item_id, "retry", store, workflows)


@router.post(
    "/{item_id}/skip", status_code=202, response_model=answer(QuarantineItem), responses=ACTED_ON
)
async def skip(item_id: str, store: StoreDep, workflows: WorkflowsDep) -> JSONResponse:
    """Drop the event that failed for this stage and go on with the stream's later events
    (409 if the item is already resolved or skipped)."""
    return await _act(item_id, "skip", store, workflows)


async def _act(item_id: str, action: str, store: StoreDep, workflows: WorkflowsDep) -> JSONResponse:
    item = await act_on_quarantine_item(store.quarantine, workflows, item_id, action)
    return JSONResponse(item.as_json(), status_code=202)
