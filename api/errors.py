"""The one place where typed errors become HTTP answers: `{"error": {code, message, details}}`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.keys import KeyNotFound
from domain.errors import Conflict, DomainError, InvalidDocument, LeadNotFound
from leadflow.eventlog import ItemRejected
from leadflow.rulebook import RulesetNotFound
from replay.runs import ReplayNotFound


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


def error_body(
    code: str, message: str, details: Sequence[Mapping[str, object]] | None = None
) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": list(details or [])}}


def status_of(error: DomainError) -> int:
    if isinstance(error, InvalidDocument):
        return 422
    if isinstance(error, (RulesetNotFound, ReplayNotFound, KeyNotFound)):
        return 404
    if isinstance(error, LeadNotFound):
        return 404
    if isinstance(error, Conflict):
        return 409
    return 400


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
