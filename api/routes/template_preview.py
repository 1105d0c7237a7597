"""`POST /v1/rulesets/preview-template` (read): a template rendered on a sample lead, as a
notification or nurture email would render it, for the rule builder's live preview."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool

from api.deps import ReadBody, SettingsDep, StoreDep, require
from api.locales import RequestedLocale
from api.openapi_bodies import PREVIEW_TEMPLATE_BODY
from api.responses import KEYED, READS_BODY, answer, refused
from api.template_preview_responses import TemplatePreview
from rules.template_preview import parse_preview_request, preview_template, sample_fields

router = APIRouter(prefix="/v1/rulesets", tags=["rulesets"])


@router.post(
    "/preview-template",
    dependencies=[Depends(require("read"))],
    openapi_extra=PREVIEW_TEMPLATE_BODY,
    response_model=answer(TemplatePreview),
    responses=refused(
        *KEYED,
        *READS_BODY,
        meanings={422: "The template or a lead field is not valid: every bad field, by path."},
    ),
)
async def preview(
    body: ReadBody, store: StoreDep, settings: SettingsDep, asked: RequestedLocale
) -> dict[str, Any]:
    """`template` (or the built-in `template_id` in `locale`) rendered on a sample lead
    (owner and team named from the directory), with `lead`'s fields in place of the
    sample's and `variant`'s subject if given; also the fields a template may use, with the
    sample's values. The language (the body's `locale`, else `?locale=`, else
    `Accept-Language`'s, else LEADFLOW_LOCALE, the language messages go out in) picks the
    built-in template's words and how times read; the answer names it. Writes nothing."""
    request = parse_preview_request(body)
    locale = request.locale or asked or settings.locale
    directory = await run_in_threadpool(store.rulebook.directory)
    template = request.template_in(locale)
    zone = settings.time_zone
    message = preview_template(template, directory, request.lead, request.variant, locale, zone)
    fields = sample_fields(directory, request.lead, locale, zone)
    return {
        "locale": locale,
        "subject": message.subject,
        "body": message.body,
        "links": list(message.links),
        "fields": {name: None if value is None else str(value) for name, value in fields.items()},
    }
