"""Public hosted forms (docs/forms.md): `GET /f/{form_id}` renders the active version,
`POST /f/{form_id}` takes a visitor's submission (urlencoded from the page, JSON from the
embedded snippet or a script) and appends `lead.captured` through the same validation and
append path as `POST /v1/events`. No API key: the abuse controls (`intake.abuse`) stand
in for one, and a browser on an origin the form does not allow gets no CORS headers and
creates nothing.

Spam (honeypot, missing or forged token, too fast, a replayed token with other values, a
failed captcha) is dropped and answered exactly like a success, so a bot learns nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from api.deps import SettingsDep, StoreDep, WriterDep
from api.errors import ApiError, error_body
from api.form_page import (
    content_security_policy,
    form_page,
    language_of,
    plain_page,
    thank_you_page,
)
from api.form_snippet import snippet
from domain.errors import IdempotencyKeyReused
from domain.limits import MAX_JSON_DEPTH, nests_deeper_than
from intake.abuse import (
    CAPTCHA_FIELDS,
    HONEYPOT,
    SPAM_DROPPED,
    SUBMISSIONS,
    TOKEN_FIELD,
    CaptchaUnavailable,
    FormGuard,
    TokenVerdict,
)
from intake.form_book import ActiveForm, FormNotFound
from intake.form_document import Form, in_language
from intake.qr import form_url, qr_png, qr_svg
from intake.submission import (
    UTM_PARAMETERS,
    InvalidSubmission,
    PageContext,
    capture_event,
    page_context,
)
from leadflow.bootstrap import Store
from leadflow.settings import Settings
from store.ingest import ItemRejected

router = APIRouter(prefix="/f", include_in_schema=False)

# A form's fields are short; the largest honest submission is far below this.
MAX_SUBMISSION_BYTES = 64 * 1024
MAX_SUBMITTED_FIELDS = 200
# Whose idempotency keys the forms' captures are (no API key sends them).
FORMS_SCOPE = "forms"
QR_HEADERS = {"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}
PAGE_HEADERS = {
    "Cache-Control": "no-store, max-age=0",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


def guard_of(request: Request) -> FormGuard:
    guard: FormGuard = request.app.state.form_guard
    return guard


def address_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def active_form(store: Store, form_id: str) -> ActiveForm:
    return await run_in_threadpool(store.forms.active, form_id)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def cors_origin(request: Request, form: Form, settings: Settings) -> tuple[bool, str | None]:
    """Whether a browser on the request's Origin may submit `form`, and the origin to
    echo in CORS headers (None for a same-origin post or a client that sends no Origin)."""
    origin = request.headers.get("origin")
    if origin is None:
        return True, None
    own = {_origin(str(request.base_url)), _origin(settings.public_url)}
    if origin.lower() in own:
        return True, None
    if origin.lower() in form.allowed_origins:
        return True, origin
    return False, None


def cors_headers(origin: str | None) -> dict[str, str]:
    if origin is None:
        return {}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def page_headers(form: Form, guard: FormGuard) -> dict[str, str]:
    return {**PAGE_HEADERS, "Content-Security-Policy": content_security_policy(form, guard.captcha)}


def _not_found_page(language: str) -> HTMLResponse:
    if language == "zh-CN":
        page = plain_page("未找到表单", "此表单不存在或已停用。", language)
    else:
        page = plain_page("Form not found", "This form does not exist or is closed.", language)
    return HTMLResponse(page, status_code=404, headers=PAGE_HEADERS)


@router.get("/{form_id}.js")
async def embed(form_id: str, request: Request, store: StoreDep) -> Response:
    """The embeddable snippet: renders the active version into the host page."""
    headers = {**PAGE_HEADERS, "Content-Type": "application/javascript; charset=utf-8"}
    try:
        active = await active_form(store, form_id)
    except FormNotFound:
        return Response("/* leadflow: no such form */\n", status_code=404, headers=headers)
    script = snippet(
        active.form,
        action=f"{str(request.base_url).rstrip('/')}/f/{form_id}",
        token=guard_of(request).issue(form_id),
    )
    return Response(script, headers=headers)


TAG_PATTERN = r"^[A-Za-z0-9._~-]+$"
QrLanguage = Query(None, pattern=r"^(en|zh-CN)$")


# A QR code's image format → how it is drawn, and its media type.
QR_FORMATS = {"png": (qr_png, "image/png"), "svg": (qr_svg, "image/svg+xml")}


@router.get("/{form_id}/qr.{image_format}")
async def qr_code(
    form_id: str,
    store: StoreDep,
    settings: SettingsDep,
    image_format: str = Path(pattern=r"^(png|svg)$"),
    campaign: str | None = Query(None, max_length=100, pattern=TAG_PATTERN),
    channel: str | None = Query(None, max_length=100, pattern=TAG_PATTERN),
    lang: str | None = QrLanguage,
) -> Response:
    """A QR code (PNG or SVG) opening the hosted form with `campaign` and `channel`
    filled in."""
    await active_form(store, form_id)  # 404 for a form nobody can open
    url = form_url(settings.public_url, form_id, campaign=campaign, channel=channel, lang=lang)
    draw, media_type = QR_FORMATS[image_format]
    image = await run_in_threadpool(draw, url)
    return Response(image, media_type=media_type, headers=QR_HEADERS)


@router.get("/{form_id}")
async def show(form_id: str, request: Request, store: StoreDep) -> HTMLResponse:
    query = request.query_params
    language = language_of(query.get("lang"), request.headers.get("accept-language"))
    try:
        active = await active_form(store, form_id)
    except FormNotFound:
        return _not_found_page(language)
    guard = guard_of(request)
    context = page_context(
        {
            **{name: query.get(name) for name in ("campaign", "channel", *UTM_PARAMETERS)},
            "lang": language,
            "page_url": str(request.url),
            "referrer": request.headers.get("referer"),
        }
    )
    # A hidden field takes its value from the page's query when it names it.
    values = {
        f.name: query[f.name] for f in active.form.fields if f.type == "hidden" and f.name in query
    }
    page = form_page(
        active.form,
        action=f"/f/{form_id}",
        token=guard.issue(form_id),
        context=context,
        values=values,
        captcha=guard.captcha,
    )
    return HTMLResponse(page, headers=page_headers(active.form, guard))


@router.options("/{form_id}")
async def preflight(
    form_id: str, request: Request, store: StoreDep, settings: SettingsDep
) -> Response:
    """CORS preflight: answered with CORS headers for the form's allowed origins only."""
    active = await active_form(store, form_id)
    allowed, origin = cors_origin(request, active.form, settings)
    if not allowed or origin is None:
        return Response(status_code=403)
    return Response(
        status_code=204,
        headers={
            **cors_headers(origin),
            "Access-Control-Allow-Methods": "POST",
            "Access-Control-Allow-Headers": "Content-Type",
            "Access-Control-Max-Age": "600",
        },
    )


async def read_values(request: Request, as_json: bool) -> dict[str, Any]:
    """The submitted values: a JSON object, or urlencoded text (the first of a repeated
    name). 413 over MAX_SUBMISSION_BYTES, 400 when it is not what it says it is."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_SUBMISSION_BYTES:
        raise ApiError(413, "body_too_large", "a submission is at most 64 KiB")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_SUBMISSION_BYTES:
            raise ApiError(413, "body_too_large", "a submission is at most 64 KiB")
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "malformed_body", "the body is not UTF-8") from None
    if as_json:
        try:
            body = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise ApiError(400, "malformed_json", "the body is not JSON") from exc
        if not isinstance(body, dict):
            raise ApiError(
                422,
                "invalid_submission",
                "a submission is a JSON object of field names and values",
                [{"path": "", "message": "must be a JSON object"}],
            )
        if nests_deeper_than(body, MAX_JSON_DEPTH):
            raise ApiError(400, "json_too_deep", "the body nests too deep")
        values: dict[str, Any] = body
    else:
        try:
            pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_SUBMITTED_FIELDS)
        except ValueError:
            raise ApiError(413, "too_many_fields", "a submission has too many fields") from None
        values = {}
        for name, value in pairs:
            values.setdefault(name, value)
    if len(values) > MAX_SUBMITTED_FIELDS:
        raise ApiError(413, "too_many_fields", "a submission has too many fields")
    return values


def _received(form: Form, language: str, as_json: bool, headers: dict[str, str]) -> Response:
    """What every accepted submission, and every dropped one, is answered."""
    redirect = form.thank_you.redirect_url
    if as_json:
        message = None if redirect else in_language(form.thank_you.message or {}, language)
        body = {"received": True, "message": message, "redirect_url": redirect}
        return JSONResponse(body, headers={**headers, "Cache-Control": "no-store"})
    if redirect:
        return RedirectResponse(redirect, status_code=303, headers=headers)
    return HTMLResponse(thank_you_page(form, language), headers={**PAGE_HEADERS, **headers})


@router.post("/{form_id}")
async def submit(
    form_id: str,
    request: Request,
    store: StoreDep,
    writer: WriterDep,
    settings: SettingsDep,
) -> Response:
    active = await active_form(store, form_id)
    form = active.form
    guard = guard_of(request)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    as_json = content_type == "application/json"
    if not as_json and content_type != "application/x-www-form-urlencoded":
        raise ApiError(
            415,
            "unsupported_media_type",
            "send application/x-www-form-urlencoded (a form post) or application/json",
        )
    allowed, origin = cors_origin(request, form, settings)
    if not allowed:
        SUBMISSIONS.labels(form_id, "origin_refused").inc()
        raise ApiError(
            403, "origin_not_allowed", "this form does not accept posts from that origin"
        )
    headers = cors_headers(origin)
    address = address_of(request)
    retry_after = guard.rate_limit.admit(address)
    if retry_after is not None:
        SUBMISSIONS.labels(form_id, "rate_limited").inc()
        raise ApiError(
            429,
            "too_many_submissions",
            f"too many submissions from {address}: try again in {retry_after} s",
            headers={**headers, "Retry-After": str(retry_after)},
        )
    try:
        values = await read_values(request, as_json)
    except ApiError as refused:
        refused.headers.update(headers)
        raise
    context = page_context(values)
    language = context.language
    token = values.get(TOKEN_FIELD)
    verdict = guard.check(form_id, token, form.min_fill_seconds)
    reason = "honeypot" if values.get(HONEYPOT) else verdict.spam_reason
    if reason is None and verdict is TokenVerdict.EXPIRED:
        SUBMISSIONS.labels(form_id, "expired").inc()
        return _refused_page(active, values, context, guard, as_json, headers, expired=True)
    if reason is None and guard.captcha is not None:
        answer = next((values[f] for f in CAPTCHA_FIELDS if values.get(f)), None)
        try:
            verified = await guard.captcha.verify(answer, address)
        except CaptchaUnavailable as unavailable:
            retry = {**headers, "Retry-After": "5"}
            raise ApiError(503, unavailable.code, unavailable.message, headers=retry) from None
        if not verified:
            reason = "captcha"
    if reason is None:
        try:
            event = capture_event(
                active, values, context, now=datetime.now(UTC), phone_region=settings.phone_region
            )
        except InvalidSubmission as invalid:
            SUBMISSIONS.labels(form_id, "invalid").inc()
            return _refused_page(active, values, context, guard, as_json, headers, invalid=invalid)
        assert isinstance(token, str)
        # The token's nonce names this page's submission: a double post appends once.
        key = f"{form_id}:{token.split('.')[1]}"
        try:
            await writer.append([event], [key], scope=FORMS_SCOPE)
        except ItemRejected as rejected:
            if not isinstance(rejected.cause, IdempotencyKeyReused):
                raise rejected.cause from None
            reason = "token_reused"
    if reason is not None:
        SPAM_DROPPED.labels(form_id, reason).inc()
        SUBMISSIONS.labels(form_id, "spam").inc()
    else:
        SUBMISSIONS.labels(form_id, "accepted").inc()
    return _received(form, language, as_json, headers)


def _refused_page(
    active: ActiveForm,
    values: dict[str, Any],
    context: PageContext,
    guard: FormGuard,
    as_json: bool,
    headers: dict[str, str],
    *,
    invalid: InvalidSubmission | None = None,
    expired: bool = False,
) -> Response:
    """A submission sent back: 422 JSON naming each field, or the page again with the
    visitor's values and the errors on their fields (the same token, unless expired)."""
    if as_json:
        if expired:
            body = error_body("form_expired", "the form was loaded too long ago; load it again")
        else:
            assert invalid is not None
            body = error_body(invalid.code, invalid.message, invalid.details)
        return JSONResponse(body, status_code=422, headers=headers)
    token = values.get(TOKEN_FIELD)
    page = form_page(
        active.form,
        action=f"/f/{active.form.id}",
        token=guard.issue(active.form.id) if expired or not isinstance(token, str) else token,
        context=context,
        values=values,
        errors=invalid.errors if invalid is not None else (),
        expired=expired,
        captcha=guard.captcha,
    )
    return HTMLResponse(
        page, status_code=422, headers={**page_headers(active.form, guard), **headers}
    )
