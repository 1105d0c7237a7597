"""What the erasure and export routes answer (`api.routes.erasure`), for the OpenAPI
description."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from api.responses import Answer, LeadEvent, LeadId, Timestamp


class LeadErasure(Answer):
    """A lead's personal data made unreadable (docs/erasure.md); `already_erased` when an
    earlier request did it (the answer is that erasure's)."""

    lead_id: LeadId
    erased: bool
    already_erased: bool
    erased_at: Timestamp
    erased_by: str | None = Field(description="The key id of the admin key that asked.")
    sequence: int = Field(description="The `lead.erased` event's number in the stream.")
    identities_removed: int = Field(description="Identity index entries deleted.")
    legacy_events_blanked: int = Field(
        description="Events stored before sealing existed whose personal fields were blanked."
    )
    quarantine_errors_blanked: int


class DataKeyStatus(Answer):
    exists: bool = Field(description="The lead's data key is there (its data is readable).")
    erased_at: Timestamp | None


class LeadExport(Answer):
    """Everything leadflow holds about a lead (GDPR art. 15 / PIPL art. 45): its events
    (decoded: personal fields read with its key, null once erased), its current state, its
    rows in every read model, its notifications and quarantine items."""

    lead_id: LeadId
    exported_at: Timestamp
    erased: bool
    data_key: DataKeyStatus
    state: dict[str, Any] = Field(description="The lead folded from its whole stream.")
    events: list[LeadEvent]
    read_models: dict[str, list[dict[str, Any]]] = Field(
        description="Table → the lead's rows (the `leads` row without its `state` column)."
    )
    quarantine: list[dict[str, Any]]


ERASURE_MODELS: list[type[BaseModel]] = [LeadErasure, DataKeyStatus, LeadExport]
