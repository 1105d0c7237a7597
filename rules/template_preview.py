"""A template rendered on a sample lead, for the console's live preview: the same
`rules.templates.render` and the same fields (`domain.recipients.message_fields`) a real
notification or nurture email gets, so what the author sees is what a lead would get."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, ValidationError

from domain.directory import Directory
from domain.errors import FieldError, InvalidDocument, json_pointer
from domain.recipients import message_fields
from domain.state import LeadState
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
)
SAMPLE_LINKS = {
    "lead_url": LeadflowUrl(f"https://leadflow.example/leads/{SAMPLE_LEAD_ID}"),
    "unsubscribe_url": LeadflowUrl("https://leadflow.example/t/u/sample-message"),
}

FieldValue = str | int | float | bool | None


def sample_fields(
    directory: Directory | None, lead: Mapping[str, FieldValue] | None = None
) -> dict[str, object]:
    """The placeholders of the sample lead (owner and team named from `directory` when
    they are in it), with `lead`'s values in place of the sample's."""
    fields = message_fields(SAMPLE_LEAD, SAMPLE_LINKS, directory=directory)
    fields.update(lead or {})
    return fields


def preview_template(
    template: Template,
    directory: Directory | None,
    lead: Mapping[str, FieldValue] | None = None,
    variant: str | None = None,
) -> Message:
    """`template` rendered for an email to the sample lead (with `lead`'s overrides)."""
    return render(template, sample_fields(directory, lead), variant)


def _scalar(value: object) -> object:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise ValueError("must be a string, a number, true, false or null")


LeadValue = Annotated[Any, AfterValidator(_scalar)]


class PreviewRequest(BaseModel):
    """`POST /v1/rulesets/preview-template`: a template, and optionally lead fields to use
    instead of the sample's and an experiment variant whose subject to show."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    template: Template
    lead: dict[Annotated[str, StringConstraints(min_length=1, max_length=200)], LeadValue] = {}
    variant: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None


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
            [FieldError(json_pointer(err["loc"]), _message(err)) for err in exc.errors()]
        ) from None


def _message(err: Any) -> str:
    if err["type"] == "missing":
        return "required"
    if err["type"] == "extra_forbidden":
        return "unknown field"
    return str(err["msg"]).removeprefix("Value error, ")
