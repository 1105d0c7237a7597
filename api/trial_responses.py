"""What the trial routes answer (`/v1/rulesets/trials`, `/v1/rulesets/{version}/shadow`,
`/canary`, `/stop`, `/trial-report`), as pydantic models for the OpenAPI description
(docs/trials.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from api.responses import Answer, LeadId, Timestamp


class Trial(Answer):
    """A version on trial (docs/trials.md)."""

    mode: Literal["shadow", "canary"]
    version: int
    share: float | None = Field(description="A canary's share of new leads (0 < share < 1).")
    started_at: Timestamp
    started_by: str | None = Field(description="The name of the key that started it.")


class RunningTrials(Answer):
    active_version: int | None
    trials: list[Trial]


class TriggerCount(Answer):
    trigger: str
    count: int


class RuleCount(Answer):
    rule_id: str = Field(description="A rule that decided under one version and not the other.")
    count: int


class AssignmentMove(Answer):
    from_owner: str | None = Field(description="The owner under the version compared with.")
    to_owner: str | None = Field(description="The owner under the trial version.")
    count: int
    example_lead_ids: list[LeadId]


class PoolReturnChange(Answer):
    reason: str
    before: int
    after: int
    change: int


class NotificationChange(Answer):
    notification: str = Field(description="`<to>: <template>`.")
    before: int
    after: int
    change: int


class CanaryLeads(Answer):
    captured_since_start: int = Field(description="Leads created since the canary started.")
    in_canary: int
    not_in_canary: int


class TrialReport(Answer):
    """What a version on trial decides differently: from its shadow decisions (shadow: against
    the version that decided; canary: against the active version)."""

    version: int
    mode: Literal["shadow", "canary"] | None = Field(description="Its trial now (null: none).")
    trial: Trial | None
    triggers_compared: int
    agreeing: int
    disagreeing: int
    failures: int = Field(description="Evaluations of the other version that failed.")
    leads: int
    by_trigger: list[TriggerCount]
    by_rule: list[RuleCount]
    assignment_moves: list[AssignmentMove]
    pool_returns: list[PoolReturnChange]
    notifications: list[NotificationChange]
    canary_leads: CanaryLeads | None = Field(description="For a canary: its leads and the others.")


TRIAL_MODELS: list[type[BaseModel]] = [Trial, RunningTrials, TrialReport]
