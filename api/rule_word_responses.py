"""What the routes that put rulesets into words answer (`POST /v1/rulesets/describe`),
as pydantic models for the OpenAPI description."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from api.responses import Answer

Subject = Literal["rule", "timer", "sequence", "template", "experiment", "pool"]


class PartSentence(Answer):
    subject: Subject
    id: str = Field(examples=["east-website"])
    sentence: str = Field(
        examples=[
            "When a lead arrives, if source is website: assign to Li Wei. Stops further rules."
        ]
    )


class PartChange(Answer):
    """One part of the ruleset the candidate adds, removes or changes."""

    kind: Literal["added", "removed", "changed"]
    subject: Subject
    id: str
    before: str | None = Field(description="The part in the base, in words; null when added.")
    after: str | None = Field(description="The part in the candidate; null when removed.")
    differences: list[str] = Field(
        examples=[["assigns to Zhang Min instead of Li Wei", "priority 100 → 120"]],
        description="What changed, one item per difference (empty when added or removed).",
    )


class RulesetDescription(Answer):
    """A candidate ruleset in words against a base version."""

    base_version: int | None = Field(description="The version compared with; null: none active.")
    changes: list[PartChange]
    base: list[PartSentence]
    candidate: list[PartSentence]


RULE_WORD_MODELS: list[type[BaseModel]] = [PartSentence, PartChange, RulesetDescription]
