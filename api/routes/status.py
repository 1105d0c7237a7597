"""GET /v1/status (admin): every component of the flow, whether it is up, how far behind
the log it is and its last error — what an operator looks at before the logs.

Components: `database`, `temporal`, `worker` (some worker polls the task queue),
`dispatcher` and each `projection:<name>` (position, lag in events and seconds, open
quarantine items and the newest error among them), `decisions` (leads parked by the
worker). A follower is `behind` when its oldest waiting event has waited over
`api.flow_status.BEHIND_AFTER_SECONDS`; `degraded` when it holds leads in the quarantine.
The whole is `ok` or `degraded` (something is behind, down or holds leads, but events are
accepted); while the database does not answer, 503 `database_unavailable` whose details
name each component."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.deps import StoreDep, WorkflowsDep, require
from api.errors import ApiError
from api.flow_status import FlowStatus, read_flow_status
from api.responses import KEYED, answer, refused
from api.responses import FlowStatus as FlowStatusAnswer
from api.routes.health import database_problem, temporal_checks
from leadflow.bootstrap import projections
from store.leases import PROJECTOR_GROUP, Lease
from store.quarantine import DECISION, StageSummary

router = APIRouter(prefix="/v1/status", tags=["status"], dependencies=[Depends(require("admin"))])


@router.get("", response_model=answer(FlowStatusAnswer), responses=refused(*KEYED))
async def status(store: StoreDep, workflows: WorkflowsDep) -> JSONResponse:
    """Every component of the flow: its status, position and lag, and its last error."""
    now = datetime.now(UTC)
    database = await run_in_threadpool(database_problem, store)
    reachable = await temporal_checks(workflows)
    components = [
        _component("database", "down" if database else "up", last_error=_error(database)),
        *(
            _component(name, "up" if ok else "down", last_error=None if ok else _unreachable(name))
            for name, ok in reachable.items()
        ),
    ]
    if database is not None:
        # Like every refusal, the error envelope; its details still name each component.
        message = "the database does not answer: nothing can be appended"
        raise ApiError(
            503, "database_unavailable", message, components, headers={"Retry-After": "5"}
        )
    flow = await run_in_threadpool(read_flow_status, store, projections(), now)
    components.extend(_followers(flow))
    decisions = flow.quarantine.get(DECISION)
    components.append(
        _component("decisions", "degraded" if decisions else "up", **_held(decisions))
    )
    healthy = all(component["status"] == "up" for component in components)
    answered = _answer("ok" if healthy else "degraded", now, flow.log_position, components)
    answered["followers"] = [
        _lease(lease, flow.lag_by_partition.get(lease.partition), now) for lease in flow.leases
    ]
    return JSONResponse(answered)


def _answer(
    state: str, now: datetime, log_position: int, components: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "status": state,
        "checked_at": now.isoformat(),
        "log_position": log_position,
        "components": components,
    }


def _component(name: str, state: str, **figures: Any) -> dict[str, Any]:
    """A component with every figure present: those that do not apply to it are null."""
    return {
        "name": name,
        "status": state,
        "position": None,
        "lag_events": None,
        "lag_seconds": None,
        "quarantined": None,
        "last_error": None,
    } | figures


def _error(fault: dict[str, str] | None) -> dict[str, Any] | None:
    if fault is None:
        return None
    return {"message": fault["message"], "code": fault.get("code"), "at": None}


def _unreachable(name: str) -> dict[str, Any]:
    if name == "temporal":
        return {"message": "Temporal does not answer its health check", "code": None, "at": None}
    return {"message": "no worker has polled the task queue lately", "code": None, "at": None}


def _followers(flow: FlowStatus) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for follower in flow.followers:
        held = flow.quarantine.get(follower.stage)
        state = "behind" if follower.behind else "degraded" if held else "up"
        found.append(
            _component(
                follower.name,
                state,
                position=follower.position,
                lag_events=follower.lag_events,
                lag_seconds=round(follower.lag_seconds, 3),
                **_held(held),
            )
        )
    return found


def _lease(lease: Lease, lag: int | None, now: datetime) -> dict[str, Any]:
    """A partition of the log's followers: which projector process follows it now, and the
    most events one of its followers has still to read in it."""
    held = lease.held_at(now)
    return {
        "group": PROJECTOR_GROUP,
        "partition": lease.partition,
        "holder": lease.holder if held else None,
        "expires_at": lease.expires_at.isoformat() if held and lease.expires_at else None,
        "lag_events": lag,
    }


def _held(summary: StageSummary | None) -> dict[str, Any]:
    """A stage's open quarantine items and its newest error (nothing held: 0, null)."""
    if summary is None:
        return {"quarantined": 0, "last_error": None}
    at = summary.last_failed_at.isoformat() if summary.last_failed_at else None
    message = summary.last_error or ""
    return {
        "quarantined": summary.total,
        "last_error": {"message": message, "code": None, "at": at},
    }
