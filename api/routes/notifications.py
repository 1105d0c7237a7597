"""GET /v1/notifications?lead_id=: every notification decided for a lead and what became
of it (SPEC §6), from the `notifications` read model."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool

from api.deps import ReadCaller, StoreDep, require
from api.responses import KEYED, Notifications, answer, refused
from api.visibility import check_visible
from leadflow.bootstrap import Store
from projections.notifications import find_notifications

router = APIRouter(
    prefix="/v1/notifications", tags=["notifications"], dependencies=[Depends(require("read"))]
)


@router.get("", response_model=answer(Notifications), responses=refused(*KEYED))
async def list_notifications(
    store: StoreDep,
    caller: ReadCaller,
    lead_id: UUID = Query(description="The lead whose notifications to list."),
) -> dict[str, Any]:
    """The lead's notifications, oldest first: `status` is `queued` until a delivery ends
    (`sent`, `recorded` in the outbox, `failed` after the last retry, `skipped` for want of
    a recipient); read models trail the log by a moment (`GET /v1/projections`)."""
    await run_in_threadpool(check_visible, store, caller, lead_id)
    return {"items": await run_in_threadpool(_find, store, str(lead_id))}


def _find(store: Store, lead_id: str) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        return find_notifications(conn, lead_id)
