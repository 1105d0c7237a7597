"""Which parts of a lead's events and state are personal data (GDPR / PIPL), and the lead
as it may be shown once that data is gone or must not travel (docs/erasure.md).

The store seals exactly these fields with the lead's own data key; erasure deletes the key.
What reaches Temporal (signals, activity results, continue-as-new input) carries none of
them. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from domain.state import LeadState, LoggedEvent

# Per event type, the data fields that are personal. Capture: who the lead is and what the
# form asked them (attributes' values are free form); a follow-up's note is free text
# about the person; a delivery's recipient is an address (the lead's, for nurture email)
# and its failure reason quotes it (an SMTP refusal names the mailbox).
PERSONAL_FIELDS: dict[str, tuple[str, ...]] = {
    "lead.captured": ("email", "phone", "name", "company", "attributes"),
    "lead.followed_up": ("note",),
    "notification.sent": ("recipient", "reason"),
}

# LeadState's personal fields and what each reads once erased (or withheld).
PERSONAL_STATE: dict[str, Any] = {
    "email": None,
    "phone": None,
    "name": None,
    "company": None,
}

# The type of the fact that a lead's personal data was erased.
ERASED_TYPE = "lead.erased"


def personal_fields(event_type: str) -> tuple[str, ...]:
    """The personal data fields of an event of `event_type` (empty: none)."""
    return PERSONAL_FIELDS.get(event_type, ())


def without_personal_data(event: LoggedEvent) -> LoggedEvent:
    """The event with its personal fields removed: what may be sent where it would stay
    readable after an erasure (Temporal's history). Events without any are returned as
    they are."""
    fields = personal_fields(event.type)
    if not fields or not any(name in event.data for name in fields):
        return event
    data = {k: v for k, v in event.data.items() if k not in fields}
    return replace(event, data=data)


def state_without_personal_data(state: LeadState) -> LeadState:
    """The state with its personal fields blanked (attributes emptied): what the workflow
    may hold, and what a lead reads once erased."""
    if all(getattr(state, name) is None for name in PERSONAL_STATE) and not state.attributes:
        return state
    return replace(state, attributes={}, **PERSONAL_STATE)
