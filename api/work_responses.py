"""Answers of working a lead (issue #19): a lead's deadlines, bulk reassignment, the
worklist. Beside `api.responses`, which is near its size limit."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from api.responses import Answer, Lead, LeadId

_CONSEQUENCE_EXAMPLE: dict[str, Any] = {
    "action": "notify",
    "rule_id": "remind",
    "to": "owner",
    "recipient": "rep-east-1",
    "recipient_name": "Wang Fang",
    "reason": None,
    "template": "follow-up-overdue",
    "conditional": False,
}


class Consequence(Answer):
    """One thing a timer's rules will do when it fires, as the version that planned it says."""

    model_config = ConfigDict(json_schema_extra={"examples": [_CONSEQUENCE_EXAMPLE]})

    action: str = Field(
        description="A rules action (`notify`, `return_to_pool`, ...), or `send_email` for a "
        "nurture step."
    )
    rule_id: str | None
    to: str | None = Field(description="`notify`'s `to`: owner, manager, director, team, rep:<id>.")
    recipient: str | None = Field(description="The directory id `to` reaches for this lead now.")
    recipient_name: str | None = Field(description="That person's (or team's) directory name.")
    reason: str | None = Field(description="`return_to_pool`'s reason.")
    template: str | None
    conditional: bool = Field(
        description="The rule has conditions: whether they hold is known when it fires."
    )


_DEADLINE_EXAMPLE: dict[str, Any] = {
    "timer": "first_follow_up",
    "due_at": "2026-03-02T09:00:00+00:00",
    "kind": "ruleset",
    "sequence": None,
    "step": None,
    "ruleset_version": 1,
    "consequences": [_CONSEQUENCE_EXAMPLE],
}


class Deadline(Answer):
    """A running timer of the lead: when it is due and what it will do."""

    model_config = ConfigDict(json_schema_extra={"examples": [_DEADLINE_EXAMPLE]})

    timer: str = Field(description="The timer's id (`nurture:<sequence>` for a nurture step).")
    due_at: str = Field(description="RFC 3339, UTC.")
    kind: Literal["ruleset", "nurture"]
    sequence: str | None = Field(description="The nurture sequence, for a nurture step.")
    step: int | None = Field(description="The nurture step it sends (0-based).")
    ruleset_version: int | None
    consequences: list[Consequence]


class LeadDetail(Lead):
    """A lead's current state with its running deadlines, earliest first."""

    deadlines: list[Deadline]


class ListedLead(Lead):
    """A lead in a list: its state and its earliest running deadline (null: none)."""

    next_deadline: Deadline | None


class LeadPage(Answer):
    items: list[ListedLead]
    next_cursor: str | None = Field(description="Pass back as `cursor`; null: no more.")


class ReassignError(Answer):
    code: str
    message: str


class ReassignResult(Answer):
    lead_id: LeadId
    status: Literal["reassigned", "refused"]
    event_id: str | None
    error: ReassignError | None


class Reassigned(Answer):
    """One result per lead, in the order of `lead_ids`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "results": [
                        {
                            "lead_id": "0b7e4a52-2c4e-5d8a-9f3e-6a1d2c3b4e5f",
                            "status": "reassigned",
                            "event_id": "5f0c3f5e-8d1b-4c1e-9a55-2f7d1c0e9b21",
                            "error": None,
                        },
                        {
                            "lead_id": "1c8f5b63-3d5f-4e9b-8a4f-7b2e3d4c5f60",
                            "status": "refused",
                            "event_id": None,
                            "error": {"code": "lead_closed", "message": "the lead is won"},
                        },
                    ]
                }
            ]
        }
    )

    results: list[ReassignResult]


class WorklistItem(Answer):
    lead_id: LeadId
    name: str | None
    company: str | None
    stage: Literal["new", "MQL", "SQL", "opportunity"]
    owner: str
    last_activity_at: str | None
    next_deadline: Deadline | None


class Worklist(Answer):
    """The owner's open leads, overdue first: by next deadline, then those without one by
    last activity (oldest first). Pass `next_cursor` back as `cursor` (null: no more)."""

    owner: str
    items: list[WorklistItem]
    next_cursor: str | None


WORK_MODELS: list[type[Answer]] = [
    LeadDetail,
    LeadPage,
    Deadline,
    Consequence,
    Reassigned,
    Worklist,
]
