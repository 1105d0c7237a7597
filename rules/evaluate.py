"""Evaluate a compiled ruleset for one trigger, and compute a lead's facts.

Pure: the time comes in as an argument, and a caller that bounds how long a decision may
take does so through a checkpoint it passes in. All rules of one trigger see the facts as
they were when the trigger arrived; actions of earlier rules do not change what later
rules of the same evaluation test.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import NamedTuple

from domain.state import LeadState
from rules.catalog import ATTRIBUTE_PREFIX, VARIANT_PREFIX, ActionParams
from rules.compile import CompiledRuleset, Facts

# Called before each rule is tested; it raises (an exception of the caller's own) to stop
# the evaluation, e.g. when the caller's time budget for the decision is spent.
Checkpoint = Callable[[], None]


class FiredRule(NamedTuple):
    """A rule whose conditions held, with the actions to apply in order."""

    rule_id: str
    actions: tuple[ActionParams, ...]


def evaluate(
    compiled: CompiledRuleset,
    trigger: str,
    facts: Facts,
    checkpoint: Checkpoint | None = None,
) -> list[FiredRule]:
    """The rules for `trigger` whose conditions hold, by priority (higher first, ties in
    document order); a fired rule with `stop: true` is the last one considered.

    `checkpoint`, when given, is called before each rule is tested; whatever it raises
    ends the evaluation and propagates to the caller. It changes nothing otherwise.
    """
    fired: list[FiredRule] = []
    for rule in compiled.rules_for(trigger):
        if checkpoint is not None:
            checkpoint()
        if rule.matches(facts):
            fired.append(FiredRule(rule.rule_id, rule.actions))
            if rule.stop:
                break
    return fired


def _as_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _attribute_text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def facts_for(state: LeadState, now: datetime, variants: Mapping[str, str]) -> dict[str, object]:
    """Every variable of `rules.catalog` for this lead at `now`.

    Unknown strings are None (business-rules reads them as ""), numbers default to 0 and
    `hours_since_capture` is 0 before the first capture. `variant.<experiment>` is set for
    each assigned variant and `attributes.<key>` for each capture attribute, non-string
    attributes as compact JSON text (5000 → "5000", true → "true").
    """
    hours = 0.0
    if state.created_at is not None:
        captured = _as_utc(datetime.fromisoformat(state.created_at))
        hours = max(0.0, (_as_utc(now) - captured).total_seconds() / 3600)
    _, at, domain = (state.email or "").rpartition("@")
    facts: dict[str, object] = {
        "source": state.source,
        "channel": state.channel,
        "region": state.region,
        "industry": state.industry,
        "company_size": state.company_size,
        "intent": state.intent,
        "score": state.score,
        "stage": state.stage,
        "campaign_id": state.campaign_id,
        "form_id": state.form_id,
        # Kept through an erasure (derived at capture), else read from the email.
        "email_domain": state.email_domain or (domain if at and domain else None),
        "has_phone": state.has_phone or bool(state.phone),
        "do_not_contact": state.do_not_contact,
        "tags": state.tags,
        "owner": state.owner,
        "team": state.team,
        "in_pool": state.in_pool,
        "followups_count": state.followups_count,
        "touch_count": state.touch_count,
        "hours_since_capture": hours,
    }
    for experiment, variant in variants.items():
        facts[VARIANT_PREFIX + experiment] = variant
    for key, value in state.attributes.items():
        facts[ATTRIBUTE_PREFIX + key] = _attribute_text(value)
    return facts
