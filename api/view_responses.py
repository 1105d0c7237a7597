"""What the saved views routes answer (`api.routes.views`), for the OpenAPI description."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from api.responses import Answer, Timestamp


class SavedView(Answer):
    """A saved view of the lead list: its name and the list parameters it applies."""

    view_id: str = Field(examples=["5d0f6c1e-8a2b-4c3d-9e4f-a1b2c3d4e5f6"])
    name: str = Field(examples=["East, new, this week"])
    query: dict[str, Any] = Field(
        description="`GET /v1/leads` parameters: q, owner, team, stage, source, region, "
        "channel (lists), in_pool (boolean), created_from, created_to, sort.",
        examples=[{"q": "科技", "stage": ["new", "MQL"], "sort": "-created_at"}],
    )
    created_at: Timestamp
    updated_at: Timestamp


class SavedViews(Answer):
    views: list[SavedView] = Field(description="The caller's views, by name.")


class ViewDeleted(Answer):
    view_id: str
    deleted: bool


VIEW_MODELS: list[type[BaseModel]] = [SavedView, SavedViews, ViewDeleted]
