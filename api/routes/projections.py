"""GET /v1/projections: how far each read model has followed the log (SPEC §7)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool

from api.deps import StoreDep, require
from api.responses import KEYED, Projections, answer, refused
from leadflow.bootstrap import projections
from projections.base import projection_status
from store.leases import PROJECTOR_GROUP, LeaseStore

router = APIRouter(
    prefix="/v1/projections", tags=["projections"], dependencies=[Depends(require("read"))]
)


@router.get("", response_model=answer(Projections), responses=refused(*KEYED))
async def list_projections(store: StoreDep) -> dict[str, Any]:
    """The log's last position and, per projection, its position and its lag: the lead
    events it has yet to apply."""
    partitions = await run_in_threadpool(LeaseStore(store.engine).partition_count, PROJECTOR_GROUP)
    log_position, statuses = await run_in_threadpool(
        projection_status, store.event_log, store.engine, projections(), partitions
    )
    return {
        "log_position": log_position,
        "projections": [status.as_dict() for status in statuses],
    }
