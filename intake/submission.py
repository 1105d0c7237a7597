"""A visitor's submission of a hosted form, turned into the `lead.captured` envelope that
`POST /v1/events` would take (validated by the same `domain.events.parse_event`).

Values arrive as text (a browser's urlencoded post) or JSON; each is checked against its
field (required, options, pattern, length), the consent against the form's, and what
`parse_event` refuses (a bad email, ...) is named by the form field that carried it.
Paths are JSON Pointers into the submitted body: `/email`, `/consent`. Pure: the clock and
the phone region come in as arguments.

What a capture from a form records (docs/forms.md): `source`, `channel`, `campaign_id`
(the form's, or `channel` / `campaign` sent with the page, e.g. from a QR code), `form_id`,
the mapped fields, and in `attributes`: `form_version`, `page_url`, `referrer`, each
`utm_*` parameter, and `consent` `{version, text, language}` when it was given.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.errors import FieldError, InvalidDocument, InvalidEvent, json_pointer
from domain.events import IncomingEvent, parse_event
from intake.form_book import ActiveForm
from intake.form_document import LANGUAGES, Form, FormField, in_language

UTM_PARAMETERS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
MAX_CONTEXT_CHARS = 1000  # page URL, referrer
MAX_TAG_CHARS = 100  # utm_*, campaign, channel (the capture's own bound for the latter)
CHECKED = frozenset({"on", "true", "1", "yes"})
_UNSAFE = re.compile("[\x00\ud800-\udfff]")


class InvalidSubmission(InvalidDocument):
    """A submission with bad fields (HTTP 422 `invalid_submission`), by field name."""

    code = "invalid_submission"
    what = "submission"


@dataclass(frozen=True)
class PageContext:
    """What the page sends beside the form's fields: where it was, how it was reached."""

    language: str = "en"
    page_url: str | None = None
    referrer: str | None = None
    campaign: str | None = None
    channel: str | None = None
    utm: Mapping[str, str] | None = None


Values = Mapping[str, object]


def _clean(value: object, limit: int) -> str | None:
    """Text the visitor cannot fix (the page's URL, its referrer, UTM tags), kept within
    bounds: unsafe characters dropped, cut to `limit`; None when empty or not text."""
    if not isinstance(value, str):
        return None
    text = _UNSAFE.sub("", value).strip()[:limit]
    return text or None


def page_context(values: Values) -> PageContext:
    """The page's context from the submitted values (hidden inputs, or the snippet's JSON)."""
    language = values.get("lang")
    utm = {name: text for name in UTM_PARAMETERS if (text := _clean(values.get(name), 200))}
    return PageContext(
        language=language if language in LANGUAGES else "en",
        page_url=_clean(values.get("page_url"), MAX_CONTEXT_CHARS),
        referrer=_clean(values.get("referrer"), MAX_CONTEXT_CHARS),
        campaign=_clean(values.get("campaign"), MAX_TAG_CHARS),
        channel=_clean(values.get("channel"), MAX_TAG_CHARS),
        utm=utm,
    )


def _checked(value: object) -> bool:
    if isinstance(value, bool):
        return value
    return isinstance(value, str) and value.strip().lower() in CHECKED


def _field_value(field: FormField, raw: object, errors: list[FieldError]) -> object:
    """The field's value (text, or a checkbox's bool), None when left empty."""
    path = json_pointer((field.name,))
    if field.type == "checkbox":
        if raw is not None and not isinstance(raw, bool | str):
            errors.append(FieldError(path, "must be true or false"))
            return None
        checked = _checked(raw)
        if field.required and not checked:
            errors.append(FieldError(path, "required"))
        return checked
    if raw is None and field.type == "hidden":
        raw = field.value
    if raw is not None and not isinstance(raw, str):
        errors.append(FieldError(path, "must be a string"))
        return None
    text = (raw or "").strip()
    if not text:
        if field.required:
            errors.append(FieldError(path, "required"))
        return None
    if _UNSAFE.search(text):
        errors.append(FieldError(path, "contains characters that cannot be stored"))
    elif len(text) > field.max_length:
        errors.append(FieldError(path, f"at most {field.max_length} characters"))
    elif field.options and text not in {o.value for o in field.options}:
        errors.append(FieldError(path, "not one of the options"))
    elif not field.matches(text):
        errors.append(FieldError(path, "is not in the expected format"))
    else:
        return text
    return None


def capture_envelope(active: ActiveForm, values: Values, context: PageContext) -> dict[str, Any]:
    """The `lead.captured` envelope for `values` submitted on `active`'s form; raises
    InvalidSubmission naming each bad field (consent included)."""
    body, errors = _envelope(active, values, context)
    if errors:
        raise InvalidSubmission(errors)
    return body


def _envelope(
    active: ActiveForm, values: Values, context: PageContext
) -> tuple[dict[str, Any], list[FieldError]]:
    """The envelope of the values that passed their fields' checks, and the faults of
    those that did not."""
    form = active.form
    errors: list[FieldError] = []
    data: dict[str, Any] = {"source": form.source, "form_id": form.id}
    channel = context.channel or form.channel
    campaign = context.campaign or form.campaign_id
    if channel:
        data["channel"] = channel
    if campaign:
        data["campaign_id"] = campaign
    attributes: dict[str, Any] = {"form_version": active.version}
    for field in form.fields:
        value = _field_value(field, values.get(field.name), errors)
        if value is None:
            continue
        if field.attribute is not None:
            attributes[field.attribute] = value
        elif isinstance(value, str):
            data[field.maps_to] = value
    if form.consent is not None:
        given = values.get("consent")
        if given is not None and not isinstance(given, bool | str):
            errors.append(FieldError("/consent", "must be true or false"))
        elif _checked(given):
            attributes["consent"] = {
                "version": form.consent.version,
                "text": in_language(form.consent.text, context.language),
                "language": context.language,
            }
        elif form.consent.required:
            errors.append(FieldError("/consent", "required: the form asks for consent"))
    for name, text in (("page_url", context.page_url), ("referrer", context.referrer)):
        if text:
            attributes[name] = text
    attributes.update(context.utm or {})
    data["attributes"] = attributes
    return {"type": "lead.captured", "data": data}, errors


def capture_event(
    active: ActiveForm, values: Values, context: PageContext, *, now: datetime, phone_region: str
) -> IncomingEvent:
    """The validated capture for a submission (as `POST /v1/events` validates it); raises
    InvalidSubmission naming the form's fields."""
    body, errors = _envelope(active, values, context)
    try:
        event = parse_event(body, now=now, phone_region=phone_region)
    except InvalidEvent as invalid:
        # Every fault at once: the capture's own (a bad email, ...) beside the fields',
        # one per field (a required field left empty is also "email or phone is required").
        named = {e.path for e in errors}
        for fault in invalid.errors:
            path = _field_path(active.form, fault.path)
            if path not in named:
                errors.append(FieldError(path, fault.message))
                named.add(path)
    if errors:
        raise InvalidSubmission(errors)
    return event


def _field_path(form: Form, path: str) -> str:
    """The submitted field behind a path into the capture (`/data/email` → `/email`)."""
    parts = path.split("/")[1:]
    target: str | None = None
    if parts[:1] == ["data"] and len(parts) >= 2:
        target = (
            f"attributes.{parts[2]}" if parts[1] == "attributes" and len(parts) > 2 else parts[1]
        )
        if parts[1] == "attributes" and len(parts) > 2 and parts[2] == "consent":
            return "/consent"
    elif parts == ["data"]:
        target = "email"  # "email or phone is required"
    for field in form.fields:
        if field.maps_to == target or (target == "email" and field.maps_to == "phone"):
            return json_pointer((field.name,))
    return ""
