"""GET /v1/status (admin): every component of the flow, whether it is up, how far behind
the log it is and its last error — what an operator looks at before the logs.

Components: `database`, `temporal`, `worker` (some worker polls the task queue),
`dispatcher` and each `projection:<name>` (position, lag in events and seconds, open
quarantine items and the newest error among them), `decisions` (leads parked by the
worker). A follower is `behind` when its oldest waiting event has waited over
`api.flow_status.BEHIND_AFTER_SECONDS`; `degraded` when it holds leads in the quarantine.
The whole is `ok`, `degraded` (something is behind, down or holds leads, but events are
accepted) or `down` (the database does not answer: nothing is accepted)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.deps import StoreDep, WorkflowsDep, require
from api.flow_status import FlowStatus, read_flow_status
from api.routes.health import database_problem, temporal_checks
from leadflow.bootstrap import projections
from store.quarantine import DECISION, StageSummary

router = APIRouter(prefix="/v1/status", tags=["status"], dependencies=[Depends(require("admin"))])


@router.get("")
async def status(store: StoreDep, workflows: WorkflowsDep) -> JSONResponse:
    now = datetime.now(UTC)
    database = await run_in_threadpool(database_problem, store)
    reachable = await temporal_checks(workflows)
    components: list[dict[str, Any]] = [
        {"name": "database", "status": "down" if database else "up", "last_error": database},
        *(
            {
                "name": name,
                "status": "up" if ok else "down",
                "last_error": _temporal_error(name, ok),
            }
            for name, ok in reachable.items()
        ),
    ]
    if database is not None:
        body = {"status": "down", "checked_at": now.isoformat(), "components": components}
        return JSONResponse(body, status_code=503)
    flow = await run_in_threadpool(read_flow_status, store, projections(), now)
    components.extend(_followers(flow))
    decisions = flow.quarantine.get(DECISION)
    components.append(
        {"name": "decisions", "status": "degraded" if decisions else "up", **_held(decisions)}
    )
    healthy = all(component["status"] == "up" for component in components)
    return JSONResponse(
        {
            "status": "ok" if healthy else "degraded",
            "checked_at": now.isoformat(),
            "log_position": flow.log_position,
            "components": components,
        }
    )


def _temporal_error(name: str, ok: bool) -> dict[str, str] | None:
    if ok:
        return None
    if name == "temporal":
        return {"message": "Temporal does not answer its health check"}
    return {"message": "no worker has polled the task queue lately"}


def _followers(flow: FlowStatus) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for follower in flow.followers:
        held = flow.quarantine.get(follower.stage)
        state = "behind" if follower.behind else "degraded" if held else "up"
        found.append(
            {
                "name": follower.name,
                "status": state,
                "position": follower.position,
                "lag_events": follower.lag_events,
                "lag_seconds": round(follower.lag_seconds, 3),
                **_held(held),
            }
        )
    return found


def _held(summary: StageSummary | None) -> dict[str, Any]:
    """A stage's open quarantine items and its newest error (None: nothing held)."""
    if summary is None:
        return {"quarantined": 0, "last_error": None}
    assert summary.last_failed_at is not None
    return {
        "quarantined": summary.total,
        "last_error": {"message": summary.last_error, "at": summary.last_failed_at.isoformat()},
    }
