"""GET /v1/leads/{id} (current state) and /v1/leads/{id}/events (the whole stream)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool

from api.deps import StoreDep, require

router = APIRouter(prefix="/v1/leads", tags=["leads"], dependencies=[Depends(require("read"))])


@router.get("/{lead_id}")
async def get_lead(lead_id: UUID, store: StoreDep) -> dict[str, Any]:
    state = await run_in_threadpool(store.event_log.lead_state, lead_id)
    body = asdict(state)
    body["tags"] = list(state.tags)
    body.pop("last_sequence")
    body["sequence"] = state.last_sequence
    return body


@router.get("/{lead_id}/events")
async def get_lead_events(lead_id: UUID, store: StoreDep) -> dict[str, Any]:
    events = await run_in_threadpool(store.event_log.lead_events, lead_id)
    return {"lead_id": str(lead_id), "events": [asdict(e) for e in events]}
