"""Request ids and the access log: one light ASGI middleware around the whole API.

Each HTTP request gets an id (the client's `X-Request-ID` when it is a short, plain token,
else a new one), echoed in the response's `X-Request-ID` and bound to every line logged
while the request runs (`leadflow.logs.bound`). When it is answered, one `api.access` line
says what it was: method, route, status, duration, client address, and the API key's id
and the lead when known (never a key). The route is its template (`/t/c/{message_id}`),
never the raw URL: tracking links carry their tokens in the path and query; a path no route
matched is logged without its query string.

With traces on (`leadflow.tracing`), each request is also a server span named after its
route (`POST /v1/events`), continuing a client's W3C `traceparent`, and its lines carry
the `trace_id`.
"""

from __future__ import annotations

import logging
import random
import re
import time
from typing import Any

from opentelemetry import propagate
from opentelemetry.trace import Span, SpanKind, StatusCode, Tracer, format_trace_id
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.metrics import RequestMetrics
from leadflow.logs import bound

log = logging.getLogger("api.access")

REQUEST_ID_HEADER = b"x-request-id"
# What an incoming id may be: short, and nothing a log reader could be fooled by.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# A path no route matched is logged up to this length.
MAX_LOGGED_PATH = 200


def request_id_of(scope: Scope) -> str:
    """The client's X-Request-ID if it is sane, else a new id."""
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            offered = value.decode("latin-1")
            if SANE_REQUEST_ID.fullmatch(offered):
                return offered
            break
    # Unique, not secret: Python's generator (seeded from the OS, reseeded in a forked
    # child) costs a microsecond where os.urandom cost ~20 µs per request on this VM.
    return f"{random.getrandbits(128):032x}"


class RequestLog:
    """The middleware: request id in, request id out, one access line per request, and its
    count and time in the metrics (one layer around the app for both); with a tracer, a
    span around it all."""

    def __init__(self, app: ASGIApp, tracer: Tracer | None = None) -> None:
        self.app = app
        self.metrics = RequestMetrics()
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        if self.tracer is None:
            await self._serve(scope, receive, send, {"request_id": request_id})
            return
        with self.tracer.start_as_current_span(
            scope["method"],
            context=propagate.extract(_carrier(scope)),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": scope["method"], "leadflow.request_id": request_id},
        ) as span:
            trace_id = format_trace_id(span.get_span_context().trace_id)
            status = 500
            try:
                status = await self._serve(
                    scope, receive, send, {"request_id": request_id, "trace_id": trace_id}
                )
            finally:
                _describe(span, scope, status)

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, context: dict[str, Any]
    ) -> int:
        """Answer the request with the id echoed, observe and log it; returns the status."""
        echoed = (REQUEST_ID_HEADER, context["request_id"].encode())
        status = 500  # what the client gets if the app raises before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), echoed]
            await send(message)

        started = time.perf_counter()
        with bound(**context):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                seconds = time.perf_counter() - started
                self.metrics.observe(scope, status, seconds)
                self._log(scope, status, seconds)
        return status

    @staticmethod
    def _log(scope: Scope, status: int, seconds: float) -> None:
        path = _route_of(scope)
        client = scope.get("client")
        fields = {
            "method": scope["method"],
            "path": path,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "client": client[0] if client else None,
        }
        lead_id = scope.get("path_params", {}).get("lead_id")
        if lead_id is not None:
            fields["lead_id"] = lead_id
        log.info("%s %s %d", scope["method"], path, status, extra=fields)


def _carrier(scope: Scope) -> dict[str, str]:
    """The request's headers, for the trace context a client sent (`traceparent`)."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}


def _route_of(scope: Scope) -> str:
    """The matched route's template, or the path (cut short) when no route matched."""
    route = scope.get("route")
    return getattr(route, "path", None) or scope["path"][:MAX_LOGGED_PATH]


def _describe(span: Span, scope: Scope, status: int) -> None:
    """Name the request's span after its route (known once routed) and give its status."""
    route = _route_of(scope) if scope.get("route") is not None else "unmatched"
    span.update_name(f"{scope['method']} {route}")
    span.set_attribute("http.route", route)
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(StatusCode.ERROR)
