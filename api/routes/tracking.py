"""Tracking links in nurture emails (SPEC §6): open pixel, click redirect, unsubscribe.

No API key: the message id is unguessable. Each appends its event to the lead's stream
like any posted event (once per message, and per link for clicks), and a redirect only
goes to a URL the email itself contained.
"""

from __future__ import annotations

import base64
import dataclasses
from datetime import UTC, datetime
from typing import Any

from eventsourcing.application import AggregateNotFoundError
from fastapi import APIRouter, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import SettingsDep, StoreDep
from api.errors import ApiError
from api.responses import refused
from domain.events import parse_event
from domain.tracking import TrackedMessage, tracked_message_id
from leadflow.bootstrap import Store
from leadflow.logs import annotate
from leadflow.tracing import current_traceparent
from store.log import LOG_APPENDS

router = APIRouter(prefix="/t", tags=["tracking"])

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_STORE = {"Cache-Control": "no-store, max-age=0"}
# Whose idempotency keys the tracking links' events are (no API key sends them).
TRACKING_SCOPE = "tracking"
MessageId = Path(max_length=100, description="The message id from the email.")
UNKNOWN = refused(404, 422, 503, meanings={404: "No such message (`unknown_message`)."})


def _message(store: Store, message_id: str) -> TrackedMessage:
    try:
        message: Any = store.event_log.repository.get(tracked_message_id(message_id))
    except AggregateNotFoundError:
        raise ApiError(404, "unknown_message", "no such message") from None
    assert isinstance(message, TrackedMessage)
    annotate(lead_id=message.lead_id)
    return message


def _record(
    store: Store, region: str, message_id: str, event_type: str, data: dict[str, Any], key: str
) -> None:
    """Append the event to the message's lead, once per `key`."""
    message = _message(store, message_id)
    body = {"type": event_type, "lead_id": message.lead_id, "data": data}
    event = parse_event(body, now=datetime.now(UTC), phone_region=region)
    event = dataclasses.replace(event, traceparent=current_traceparent())
    [appended] = store.append([event], [key], scope=TRACKING_SCOPE)
    if not appended.duplicate:
        LOG_APPENDS.labels("tracking").inc()


@router.get(
    "/o/{message_id}",
    response_class=Response,
    responses={
        200: {
            "description": "A transparent GIF of one pixel.",
            "content": {"image/gif": {"schema": {"type": "string", "format": "binary"}}},
        },
        **UNKNOWN,
    },
)
async def opened(
    message_id: str = MessageId, *, store: StoreDep, settings: SettingsDep
) -> Response:
    data = {"message_id": message_id}
    key = f"opened:{message_id}"
    await run_in_threadpool(
        _record, store, settings.phone_region, message_id, "email.opened", data, key
    )
    return Response(PIXEL, media_type="image/gif", headers=NO_STORE)


@router.get(
    "/c/{message_id}",
    status_code=302,
    response_class=RedirectResponse,
    responses={
        302: {
            "description": "To `u`.",
            "headers": {"Location": {"schema": {"type": "string", "format": "uri"}}},
        },
        **refused(
            404,
            422,
            503,
            meanings={404: "No such message, or the message has no such link (`unknown_link`)."},
        ),
    },
)
async def clicked(
    message_id: str = MessageId,
    u: str = Query(max_length=2000, description="The link's target, as the email has it."),
    *,
    store: StoreDep,
    settings: SettingsDep,
) -> RedirectResponse:
    message = await run_in_threadpool(_message, store, message_id)
    if u not in message.links:
        raise ApiError(404, "unknown_link", "this message has no such link")
    data = {"message_id": message_id, "url": u}
    key = f"clicked:{message_id}:{u}"
    await run_in_threadpool(
        _record, store, settings.phone_region, message_id, "email.clicked", data, key
    )
    return RedirectResponse(u, status_code=302, headers=NO_STORE)


@router.get(
    "/u/{message_id}",
    response_class=HTMLResponse,
    responses={200: {"description": "A page saying so."}, **UNKNOWN},
)
async def unsubscribed(
    message_id: str = MessageId, *, store: StoreDep, settings: SettingsDep
) -> HTMLResponse:
    key = f"unsubscribed:{message_id}"
    await run_in_threadpool(
        _record, store, settings.phone_region, message_id, "lead.unsubscribed", {}, key
    )
    return HTMLResponse(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Unsubscribed</title>"
        "</head><body><h1>You are unsubscribed</h1>"
        "<p>You will not receive these emails any more.</p></body></html>",
        headers=NO_STORE,
    )
