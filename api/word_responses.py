"""What `GET /v1/words/events` answers, as a pydantic model for the OpenAPI description
(see `api.responses`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from api.responses import Answer


class EventWords(Answer):
    """Every event type, follow-up kind, stage and pool reason as a person reads it."""

    locale: Literal["zh-CN", "en"]
    events: dict[str, str] = Field(
        description="Each event type's name, by type.",
        examples=[{"lead.followed_up": "已跟进", "lead.returned_to_pool": "退回公海"}],
    )
    kinds: dict[str, str] = Field(description="Follow-up kinds (`lead.followed_up` `kind`).")
    stages: dict[str, str] = Field(description="Lead stages.")
    pool_reasons: dict[str, str] = Field(description="Why a lead is in the public pool.")


WORD_MODELS: list[type[BaseModel]] = [EventWords]
