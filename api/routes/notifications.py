"""GET /v1/notifications?lead_id=: every notification recorded for a lead (SPEC §6)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool

from api.deps import StoreDep, require

router = APIRouter(
    prefix="/v1/notifications", tags=["notifications"], dependencies=[Depends(require("read"))]
)


@router.get("")
async def list_notifications(
    store: StoreDep,
    lead_id: UUID = Query(description="The lead whose notifications to list."),
) -> dict[str, Any]:
    events = await run_in_threadpool(store.event_log.lead_events, lead_id)
    items = [
        {
            "lead_id": str(lead_id),
            "to": e.data.get("to"),
            "recipient": e.data.get("recipient"),
            "channel": e.data.get("channel"),
            "template": e.data.get("template"),
            "rule_id": e.rule_id,
            "status": e.data.get("status"),
            "reason": e.data.get("reason"),
            "sent_at": e.recorded_at,
        }
        for e in events
        if e.type == "notification.sent"
    ]
    return {"items": items}
