"""What the form routes (`api.routes.forms`) answer, as pydantic models for the OpenAPI
description (see `api.responses`), and the form document's request body."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from api.responses import Answer, FieldProblem, Timestamp


class FormPublished(Answer):
    form_id: str = Field(examples=["contact-us"])
    version: int


class FormSummary(Answer):
    form_id: str
    name: str
    active_version: int | None
    latest_version: int


class FormList(Answer):
    forms: list[FormSummary]


class FormVersionSummary(Answer):
    form_id: str
    version: int
    name: str
    published_by: str | None = Field(description="The name of the key that published it.")
    published_at: Timestamp
    active: bool


class FormVersions(Answer):
    form_id: str
    active_version: int | None
    versions: list[FormVersionSummary]


class PublishedForm(FormVersionSummary):
    form: dict[str, Any] = Field(description="The form document as published.")


class FormActivated(Answer):
    form_id: str
    active_version: int


class FormValidation(Answer):
    valid: bool
    errors: list[FieldProblem]


FORM_MODELS: list[type[BaseModel]] = [
    FormPublished,
    FormSummary,
    FormList,
    FormVersionSummary,
    FormVersions,
    PublishedForm,
    FormActivated,
    FormValidation,
]

FORM_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "A form document (docs/forms.md): id, title, source, "
                    "fields, consent, thank_you, allowed_origins, min_fill_seconds.",
                    "required": ["title", "source", "fields"],
                }
            }
        },
    }
}
