"""What `POST /v1/rulesets/preview-template` answers, as a pydantic model for the OpenAPI
description (see `api.responses`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from api.responses import Answer


class TemplatePreview(Answer):
    locale: Literal["zh-CN", "en"] = Field(
        description="The language the preview is in: the request's `locale` (body, then "
        "query, then `Accept-Language`), else LEADFLOW_LOCALE (the language messages go "
        "out in)."
    )
    subject: str = Field(examples=["Welcome, Ann Lee"])
    body: str
    links: list[str] = Field(description="The http(s) links the template's body makes.")
    fields: dict[str, str | None] = Field(
        description="The placeholders a template may use, with the sample lead's values."
    )


TEMPLATE_PREVIEW_MODELS: list[type[BaseModel]] = [TemplatePreview]
