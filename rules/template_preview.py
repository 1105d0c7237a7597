"""A template rendered on a sample lead, for the console's live preview: the same
`rules.templates.render` and the same fields (`domain.recipients.message_fields`) a real
notification or nurture email gets, so what the author sees is what a lead would get.
A built-in template (`template_id`) is shown in the language asked for (`locale`), the
one its message would go out in; times read in that language and the sales floor's time
zone."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    StringConstraints,
    ValidationError,
    model_validator,
)

from domain.directory import Directory
from domain.errors import FieldError, InvalidDocument, json_pointer
from domain.locales import Locale
from domain.recipients import message_fields
from domain.state import LeadState
from rules.builtin_templates import BUILTIN_TEMPLATES, BUILTIN_TRANSLATIONS
from rules.model import Template
from rules.templates import LeadflowUrl, Message, render

SAMPLE_LEAD_ID = "00000000-0000-4000-8000-000000000000"
SAMPLE_LEAD = LeadState(
    lead_id=SAMPLE_LEAD_ID,
    stage="MQL",
    owner="rep-east-1",
    team="east",
    email="ann.lee@example.com",
    phone="+86 138 0000 0000",
    name="Ann Lee",
    company="Acme Trading Co",
    source="website",
    channel="web-form",
    region="east",
    industry="manufacturing",
    company_size="50-200",
    campaign_id="spring",
    form_id="contact-us",
    intent="high",
    score=40,
    tags=("vip",),
    created_at="2026-12-07T06:30:00+00:00",
)
SAMPLE_LINKS = {
    "lead_url": LeadflowUrl(f"https://leadflow.example/leads/{SAMPLE_LEAD_ID}"),
    "unsubscribe_url": LeadflowUrl("https://leadflow.example/t/u/sample-message"),
}

FieldValue = str | int | float | bool | None


def sample_fields(
    directory: Directory | None,
    lead: Mapping[str, FieldValue] | None = None,
    locale: Locale = "en",
    time_zone: str = "Asia/Shanghai",
) -> dict[str, object]:
    """The placeholders of the sample lead (owner and team named from `directory` when
    they are in it, times in `locale` and `time_zone`), with `lead`'s values in place of
    the sample's."""
    fields = message_fields(
        SAMPLE_LEAD, SAMPLE_LINKS, directory=directory, locale=locale, time_zone=time_zone
    )
    fields.update(lead or {})
    return fields


def preview_template(
    template: Template,
    directory: Directory | None,
    lead: Mapping[str, FieldValue] | None = None,
    variant: str | None = None,
    locale: Locale = "en",
    time_zone: str = "Asia/Shanghai",
) -> Message:
    """`template` rendered for an email to the sample lead (with `lead`'s overrides)."""
    return render(template, sample_fields(directory, lead, locale, time_zone), variant)


def _scalar(value: object) -> object:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise ValueError("must be a string, a number, true, false or null")


LeadValue = Annotated[Any, AfterValidator(_scalar)]


def _builtin(template_id: str) -> str:
    if template_id not in BUILTIN_TEMPLATES:
        raise ValueError(
            f"no built-in template {template_id!r}: one of {sorted(BUILTIN_TEMPLATES)}"
        )
    return template_id


class PreviewRequest(BaseModel):
    """`POST /v1/rulesets/preview-template`: a template (or the id of a built-in one), and
    optionally lead fields to use instead of the sample's, an experiment variant whose
    subject to show, and the language (None: LEADFLOW_LOCALE, as a message would go)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    template: Template | None = None
    template_id: Annotated[str, AfterValidator(_builtin)] | None = None
    lead: dict[Annotated[str, StringConstraints(min_length=1, max_length=200)], LeadValue] = {}
    variant: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    locale: Locale | None = None

    @model_validator(mode="after")
    def _one_template(self) -> PreviewRequest:
        if (self.template is None) == (self.template_id is None):
            raise ValueError("give either template or template_id (a built-in template)")
        return self

    def template_in(self, locale: Locale) -> Template:
        """The template to render: the one given, else the built-in one in `locale`."""
        if self.template is not None:
            return self.template
        return BUILTIN_TRANSLATIONS[locale][str(self.template_id)]


@dataclass
class InvalidPreviewRequest(InvalidDocument):
    """The preview request has bad fields (HTTP 422): every one, by JSON Pointer."""

    code = "invalid_preview_request"
    what = "preview request"


def parse_preview_request(doc: object) -> PreviewRequest:
    """The request `doc` describes; raises InvalidPreviewRequest naming each bad field."""
    try:
        return PreviewRequest.model_validate(doc)
    except ValidationError as exc:
        raise InvalidPreviewRequest(
            [FieldError(_path(err), _message(err)) for err in exc.errors()]
        ) from None


def _path(err: Any) -> str:
    # Neither a template nor a built-in's id: said of the template, which is what is missing.
    if not err["loc"] and err["type"] == "value_error":
        return "/template"
    return json_pointer(err["loc"])


def _message(err: Any) -> str:
    if err["type"] == "missing":
        return "required"
    if err["type"] == "extra_forbidden":
        return "unknown field"
    return str(err["msg"]).removeprefix("Value error, ")
