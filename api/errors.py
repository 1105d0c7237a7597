"""The one place where typed errors become HTTP answers: `{"error": {code, message, details}}`."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

import eventsourcing.persistence
import psycopg
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from delivery.temporal import TemporalUnavailable
from domain.acting import NotPermitted
from domain.errors import Conflict, DomainError, InvalidDocument, LeadNotFound
from domain.users import UserNotFound
from intake.form_book import FormNotFound, FormVersionNotFound
from intake.jobs import ImportNotFound
from replay.jobs import ReplayNotFound
from store.faults import DatabaseFault, database_fault
from store.ingest import ItemRejected
from store.keys import KeyNotFound
from store.quarantine import QuarantineItemNotFound
from store.rulebook import RulesetNotFound

log = logging.getLogger(__name__)

# The errors a database fault can arrive as (`store.faults` sees through their wrapping).
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    eventsourcing.persistence.PersistenceError,
    sqlalchemy.exc.SQLAlchemyError,
    sqlite3.Error,
    psycopg.Error,
    OSError,
)


class ApiError(Exception):
    """An error raised by the HTTP layer itself (auth, limits, malformed JSON)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Sequence[Mapping[str, object]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = list(details or [])
        self.headers = dict(headers or {})


def invalid_query(*problems: tuple[str, str]) -> ApiError:
    """The 422 of bad query parameters, as FastAPI's own validation words it: each
    (path, message) one detail `in` the query."""
    return ApiError(
        422,
        "invalid_request",
        "the request is not valid",
        [{"path": path, "message": message, "in": "query"} for path, message in problems],
    )


def error_body(
    code: str, message: str, details: Sequence[Mapping[str, object]] | None = None
) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": list(details or [])}}


def status_of(error: DomainError) -> int:
    if isinstance(error, InvalidDocument):
        return 422
    if isinstance(error, (RulesetNotFound, ReplayNotFound, QuarantineItemNotFound, KeyNotFound)):
        return 404
    if isinstance(
        error, (LeadNotFound, FormNotFound, FormVersionNotFound, ImportNotFound, UserNotFound)
    ):
        return 404
    if isinstance(error, Conflict):
        return 409
    if isinstance(error, NotPermitted):
        return 403
    return 400


def fault_response(fault: DatabaseFault) -> JSONResponse:
    """503 naming the fault, with the seconds to wait before retrying in `Retry-After`."""
    return JSONResponse(
        error_body(fault.code, fault.message),
        status_code=503,
        headers={"Retry-After": str(fault.retry_after)},
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.code, exc.message, exc.details),
            status_code=exc.status,
            headers=exc.headers,
        )

    @app.exception_handler(DomainError)
    async def _domain_error(_: Request, exc: DomainError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.code, exc.message, exc.details), status_code=status_of(exc)
        )

    @app.exception_handler(TemporalUnavailable)
    async def _temporal_unavailable(_: Request, exc: TemporalUnavailable) -> JSONResponse:
        return JSONResponse(
            error_body("temporal_unavailable", str(exc)),
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(ItemRejected)
    async def _item_rejected(_: Request, exc: ItemRejected) -> JSONResponse:
        # Raised for batches only; single posts unwrap the cause before it gets here.
        details: list[Mapping[str, object]] = [
            {"path": f"/events/{exc.index}", "message": exc.message},
            *exc.details,
        ]
        return JSONResponse(
            error_body(exc.code, f"event {exc.index}: {exc.message}", details),
            status_code=status_of(exc.cause),
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {
                "path": "".join(f"/{part}" for part in err["loc"][1:]) or "/",
                "message": err["msg"],
                "in": err["loc"][0],
            }
            for err in exc.errors()
        ]
        return JSONResponse(
            error_body("invalid_request", "the request is not valid", details), status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code)

    async def _database_error(request: Request, exc: Exception) -> JSONResponse:
        fault = database_fault(exc)
        if fault is None:
            raise exc  # a bug or bad data, not the database: the usual 500
        route = getattr(request.scope.get("route"), "path", request.url.path)
        # One line per answer: the fault is the news, not the stack that met it.
        log.warning("%s %s answered 503 %s: %s", request.method, route, fault.code, _summary(exc))
        return fault_response(fault)

    for error_type in DATABASE_ERRORS:
        app.add_exception_handler(error_type, _database_error)


def _summary(error: BaseException) -> str:
    """The innermost error's type and first line: what the driver said, without the SQL and
    parameters SQLAlchemy appends (they may hold lead data)."""
    seen = {id(error)}
    beneath = getattr(error, "orig", None) or error.__cause__
    while isinstance(beneath, BaseException) and id(beneath) not in seen:
        error = beneath
        seen.add(id(error))
        beneath = getattr(error, "orig", None) or error.__cause__
    first_line = str(error).partition("\n")[0]
    return f"{type(error).__module__}.{type(error).__qualname__}: {first_line}"
