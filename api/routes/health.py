"""/healthz (the process is up) and /readyz (log DB, Temporal and a worker are reachable;
"degraded", still 200, while leads wait in the quarantine)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import StoreDep, WorkflowsDep
from api.errors import error_body
from api.responses import Alive, NotReady, Ready, answer, component, refused
from store.faults import database_fault

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=answer(Alive), responses=refused(422))
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=answer(Ready),
    responses={
        **refused(422),
        503: {
            "description": "Not ready: the components down are named (`not_ready`).",
            "content": {"application/json": {"schema": component(NotReady.__name__)}},
        },
    },
)
async def readyz(store: StoreDep, workflows: WorkflowsDep) -> JSONResponse:
    def database_down() -> dict[str, str] | None:
        """None when the database answers; else what is wrong, by its fault code when the
        error is one (`store.faults`)."""
        try:
            with store.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return None
        except Exception as failed:
            fault = database_fault(failed)
            if fault is None:
                return {"message": f"the database check failed: {type(failed).__name__}"}
            return {"code": fault.code, "message": fault.message}

    database = await run_in_threadpool(database_down)
    checks = {"database": database is None}
    # Parked and retrying leads do not make this process unready (it can do its job), but
    # an operator must see them: the answer says "degraded" with the counts.
    quarantined = await run_in_threadpool(store.quarantine.counts) if checks["database"] else {}
    checks["temporal"] = workflows is not None and await workflows.server_reachable()
    checks["worker"] = (
        checks["temporal"] and workflows is not None and await workflows.worker_polling()
    )
    down = [name for name, ok in checks.items() if not ok]
    if down:
        about = {"database": database or {}}
        body = error_body(
            "not_ready",
            f"not ready: {', '.join(down)} down",
            [{"component": name, "status": "down", **about.get(name, {})} for name in down],
        )
        body["checks"] = {name: "up" if ok else "down" for name, ok in checks.items()}
        return JSONResponse(body, status_code=503)
    return JSONResponse(
        {
            "status": "degraded" if any(quarantined.values()) else "ready",
            "checks": {name: "up" for name in checks},
            "quarantine": quarantined,
        }
    )
