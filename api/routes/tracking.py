"""Tracking links in nurture emails (SPEC §6): open pixel, click redirect, unsubscribe
(a GET shows a confirmation page, a POST unsubscribes: docs/consent.md).

No API key: the message id is unguessable. Each appends its event to the lead's stream
like any posted event (once per message, and per link for clicks), and a redirect only
goes to a URL the email itself contained.
"""

from __future__ import annotations

import base64
import dataclasses
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.consent_pages import (
    MAX_ONE_CLICK_BYTES,
    PAGE_HEADERS,
    Language,
    check_one_click,
    language,
    page,
)
from api.deps import SettingsDep, StoreDep
from api.errors import ApiError
from api.responses import refused
from domain.events import parse_event
from domain.tracking import ONE_CLICK, TrackedMessage, tracked_message_id
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


UNSUBSCRIBE_PAGES: dict[int | str, Any] = {
    200: {"description": "The page, in zh-CN or English by `Accept-Language`."},
    404: {
        "description": "No such message: a page saying so.",
        "content": {"text/html": {"schema": {"type": "string"}}},
    },
}


ONE_CLICK_FORM = {
    "type": "object",
    "properties": {"List-Unsubscribe": {"type": "string", "enum": ["One-Click"]}},
}


def _unknown_page(lang: Language) -> HTMLResponse:
    return HTMLResponse(page("unknown", lang), status_code=404, headers=PAGE_HEADERS)


@router.get(
    "/u/{message_id}",
    response_class=HTMLResponse,
    responses={**UNSUBSCRIBE_PAGES, **refused(422, 503)},
)
async def unsubscribe_page(
    message_id: str = MessageId,
    accept_language: str | None = Header(default=None, max_length=500),
    *,
    store: StoreDep,
) -> HTMLResponse:
    """The unsubscribe link of a nurture email: a page asking to confirm, whose button
    POSTs here. Changes nothing (mail scanners fetch every link); a lead already on
    do-not-contact is told so."""
    lang = language(accept_language)
    try:
        flagged = await run_in_threadpool(_do_not_contact, store, message_id)
    except ApiError as unknown:
        if unknown.status == 404:
            return _unknown_page(lang)
        raise
    return HTMLResponse(page("unsubscribed" if flagged else "confirm", lang), headers=PAGE_HEADERS)


def _do_not_contact(store: Store, message_id: str) -> bool:
    message = _message(store, message_id)
    return store.event_log.lead_state(UUID(message.lead_id)).do_not_contact


@router.post(
    "/u/{message_id}",
    response_class=HTMLResponse,
    openapi_extra={
        "requestBody": {
            "required": False,
            "description": "Empty (the confirmation page's button), or the RFC 8058 one-click "
            f"form `{ONE_CLICK}`.",
            "content": {
                "application/x-www-form-urlencoded": {"schema": ONE_CLICK_FORM},
                "multipart/form-data": {"schema": ONE_CLICK_FORM},
            },
        }
    },
    responses={
        **UNSUBSCRIBE_PAGES,
        **refused(
            413,
            422,
            503,
            meanings={
                413: f"The body is over {MAX_ONE_CLICK_BYTES} bytes (`body_too_large`).",
                422: f"The body is neither empty nor `{ONE_CLICK}` (`invalid_request`).",
            },
        ),
    },
)
async def unsubscribe(
    request: Request,
    message_id: str = MessageId,
    accept_language: str | None = Header(default=None, max_length=500),
    *,
    store: StoreDep,
    settings: SettingsDep,
) -> HTMLResponse:
    """Unsubscribe the lead the message went to (RFC 8058 one-click, or the page's
    button): `lead.unsubscribed` is appended once per message; a repeat changes nothing."""
    lang = language(accept_language)
    body = await _small_body(request)
    try:
        await run_in_threadpool(_message, store, message_id)
    except ApiError as unknown:
        if unknown.status == 404:
            return _unknown_page(lang)
        raise
    check_one_click(request.headers.get("content-type"), body)
    await run_in_threadpool(_unsubscribe, store, settings.phone_region, message_id)
    return HTMLResponse(page("unsubscribed", lang), headers=PAGE_HEADERS)


async def _small_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    too_large = ApiError(
        413, "body_too_large", f"an unsubscribe body is at most {MAX_ONE_CLICK_BYTES} bytes"
    )
    if declared is not None and declared.isdigit() and int(declared) > MAX_ONE_CLICK_BYTES:
        raise too_large
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_ONE_CLICK_BYTES:
            raise too_large
    return body


def _unsubscribe(store: Store, region: str, message_id: str) -> None:
    message = _message(store, message_id)
    # Once per message; after an admin lifted the flag, the same link unsubscribes anew.
    lifts = sum(
        e.type == "lead.do_not_contact_lifted"
        for e in store.event_log.lead_events(UUID(message.lead_id))
    )
    key = f"unsubscribed:{message_id}" + (f":{lifts}" if lifts else "")
    _record(store, region, message_id, "lead.unsubscribed", {}, key)
