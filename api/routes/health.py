"""Probes for orchestrators: `/livez` (the process is up; `/healthz` is the same, the name
SPEC §4 gives it) and `/readyz` (this process can do its job: append to the log).

Temporal or its workers being away does not make the API unready: posts are still
accepted and delivered once they are back. `/readyz` then says `"status": "degraded"`
(200) and names what is down, as it does while leads wait in the quarantine; only a
database that does not answer makes it 503. `GET /v1/status` (`api.routes.status`) is the
operator's full picture."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import StoreDep, WorkflowsDep
from api.errors import error_body
from api.responses import Alive, NotReady, Ready, answer, component, refused
from delivery.temporal import LeadWorkflows
from leadflow.bootstrap import Store
from store.faults import database_fault

router = APIRouter(tags=["health"])


@router.get("/livez", response_model=answer(Alive), responses=refused(422))
@router.get("/healthz", response_model=answer(Alive), responses=refused(422))
async def livez() -> dict[str, str]:
    """The process is up and its event loop answers."""
    return {"status": "ok"}


def database_problem(store: Store) -> dict[str, str] | None:
    """None when the database answers; else what is wrong, by its fault code when the error
    is one (`store.faults`)."""
    try:
        with store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return None
    except Exception as failed:
        fault = database_fault(failed)
        if fault is None:
            return {"message": f"the database check failed: {type(failed).__name__}"}
        return {"code": fault.code, "message": fault.message}


async def temporal_checks(workflows: LeadWorkflows | None) -> dict[str, bool]:
    """Whether Temporal answers and a worker polls the task queue."""
    reachable = workflows is not None and await workflows.server_reachable()
    polling = reachable and workflows is not None and await workflows.worker_polling()
    return {"temporal": reachable, "worker": polling}


@router.get(
    "/readyz",
    response_model=answer(Ready),
    responses={
        **refused(422),
        503: {
            "description": "Not ready: the database does not answer (`not_ready`).",
            "content": {"application/json": {"schema": component(NotReady.__name__)}},
        },
    },
)
async def readyz(store: StoreDep, workflows: WorkflowsDep) -> JSONResponse:
    database = await run_in_threadpool(database_problem, store)
    if database is not None:
        body = error_body(
            "not_ready",
            "not ready: the database does not answer",
            [{"component": "database", "status": "down", **database}],
        )
        body["checks"] = {"database": "down"}
        return JSONResponse(body, status_code=503)
    checks = {"database": True, **await temporal_checks(workflows)}
    # Parked and retrying leads do not make this process unready (it can do its job), but
    # an operator must see them: the answer says "degraded" with the counts.
    quarantined = await run_in_threadpool(store.quarantine.counts)
    degraded = not all(checks.values()) or any(quarantined.values())
    return JSONResponse(
        {
            "status": "degraded" if degraded else "ready",
            "checks": {name: "up" if ok else "down" for name, ok in checks.items()},
            "quarantine": quarantined,
        }
    )
