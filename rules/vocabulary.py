"""The words a person reads for a ruleset's parts: triggers, variables, operators,
actions and their params, values, and durations ("72 hours", "1 day 12 hours").

Every English word the rules layer shows a person lives in this module, so that another
language is one more module of the same shape. Served as `labels` by
`GET /v1/rulesets/schema` (`labels()`) and used by `rules.describe` to write sentences.
Pure: no I/O.
"""

from __future__ import annotations

import functools
from typing import Any

from business_rules.operators import BooleanType, NumericType, SelectType, StringType

from rules.catalog import (
    ACTIONS,
    ATTRIBUTE_PREFIX,
    LEAD_EVENT_TYPES,
    TIMER_TRIGGER_PREFIX,
    VARIABLES,
    VARIANT_PREFIX,
    VariableType,
)
from rules.model import duration_parts

# An event as the clause of "when …": a trigger, a timer's start or a sequence's exit.
EVENTS: dict[str, str] = {
    "lead.captured": "a lead arrives",
    "lead.followed_up": "a follow-up is logged",
    "lead.claimed": "a rep claims the lead from the pool",
    "lead.reassigned": "the lead is reassigned by hand",
    "lead.released": "the owner releases the lead to the pool",
    "lead.qualified": "the lead is qualified",
    "lead.opportunity_opened": "an opportunity is opened",
    "lead.won": "the lead is won",
    "lead.lost": "the lead is lost",
    "email.opened": "an email is opened",
    "email.clicked": "a link in an email is clicked",
    "email.bounced": "an email bounces",
    "email.replied": "the lead replies to an email",
    "lead.unsubscribed": "the lead unsubscribes",
    "lead.do_not_contact_set": "the lead is put on do-not-contact",
    "lead.do_not_contact_lifted": "do-not-contact is lifted",
    "lead.assigned": "the lead is assigned",
    "lead.task_created": "a task is created",
    "lead.timer_fired": "a timer runs out",
    "lead.reminder_sent": "a reminder is sent",
    "lead.returned_to_pool": "the lead returns to the pool",
    "lead.stage_changed": "the lead's stage changes",
    "lead.scored": "the lead's score changes",
    "lead.tagged": "the lead is tagged",
    "lead.intent_set": "the lead's intent is set",
    "nurture.enrolled": "the lead is enrolled in a sequence",
    "nurture.email_sent": "a nurture email is sent",
    "nurture.exited": "the lead leaves a sequence",
    "experiment.variant_assigned": "the lead gets an experiment variant",
    "notification.sent": "a notification is sent",
    "notification.queued": "a notification is queued",
}
TIMER_EVENT = "the {id} timer runs out"

VARIABLE_WORDS: dict[str, str] = {
    "source": "source",
    "channel": "channel",
    "region": "region",
    "industry": "industry",
    "company_size": "company size",
    "intent": "intent",
    "score": "score",
    "stage": "stage",
    "campaign_id": "campaign",
    "form_id": "form",
    "email_domain": "email domain",
    "has_phone": "has a phone number",
    "do_not_contact": "on do-not-contact",
    "tags": "tags",
    "owner": "owner",
    "team": "team",
    "in_pool": "in the pool",
    "followups_count": "number of follow-ups",
    "touch_count": "number of captures",
    "hours_since_capture": "hours since capture",
}
VARIABLE_FAMILY_WORDS = {
    VARIANT_PREFIX: "variant in experiment {key}",
    ATTRIBUTE_PREFIX: "attribute {key}",
}
# Boolean variables read as a statement: (when true, when false).
BOOLEAN_FACTS: dict[str, tuple[str, str]] = {
    "has_phone": ("the lead has a phone number", "the lead has no phone number"),
    "do_not_contact": ("the lead is on do-not-contact", "the lead is not on do-not-contact"),
    "in_pool": ("the lead is in the pool", "the lead is not in the pool"),
}

# Operators as they read between a variable and a value ("source is website"). An operator
# business-rules adds later reads as its own label until it gets words here.
OPERATOR_WORDS: dict[VariableType, dict[str, str]] = {
    "string": {
        "equal_to": "is",
        "equal_to_case_insensitive": "is, in any case,",
        "starts_with": "starts with",
        "ends_with": "ends with",
        "contains": "contains",
        "matches_regex": "matches the pattern",
        "non_empty": "is not empty",
    },
    "numeric": {
        "equal_to": "is",
        "greater_than": "is more than",
        "greater_than_or_equal_to": "is at least",
        "less_than": "is less than",
        "less_than_or_equal_to": "is at most",
    },
    "boolean": {"is_true": "is yes", "is_false": "is no"},
    "select": {"contains": "include", "does_not_contain": "do not include"},
}
_BUSINESS_RULES_TYPES: dict[VariableType, Any] = {
    "string": StringType,
    "numeric": NumericType,
    "boolean": BooleanType,
    "select": SelectType,
}

ACTION_WORDS: dict[str, str] = {
    "assign_to_rep": "assign to a rep",
    "assign_to_team": "assign to a team",
    "return_to_pool": "return to the pool",
    "create_task": "create a task",
    "notify": "notify",
    "enroll_in_sequence": "enrol in a sequence",
    "exit_sequence": "end a sequence",
    "set_intent": "set the intent",
    "add_score": "add to the score",
    "set_stage": "move to a stage",
    "assign_variant": "pick an experiment variant",
    "add_tag": "add a tag",
}
PARAM_WORDS: dict[str, dict[str, str]] = {
    "assign_to_rep": {"rep": "rep", "reassign": "even if the lead already has an owner"},
    "assign_to_team": {
        "team": "team",
        "strategy": "how to pick the rep",
        "reassign": "even if the lead already has an owner",
    },
    "return_to_pool": {"reason": "reason"},
    "create_task": {"task": "task", "due_in": "due in"},
    "notify": {"to": "who", "template": "message", "channel": "sent by"},
    "enroll_in_sequence": {"sequence": "sequence"},
    "exit_sequence": {"sequence": "sequence (every sequence when empty)"},
    "set_intent": {"intent": "intent"},
    "add_score": {"points": "points"},
    "set_stage": {"stage": "stage"},
    "assign_variant": {"experiment": "experiment"},
    "add_tag": {"tag": "tag"},
}
VALUE_WORDS: dict[str, dict[str, str]] = {
    "strategy": {"round_robin": "in turn", "least_loaded": "to whoever has the fewest open leads"},
    "to": {
        "owner": "the lead's owner",
        "manager": "the lead's manager",
        "director": "the lead's director",
        "team": "the team's channel",
        "rep:": "{name}",
    },
    "stage": {
        "new": "new",
        "MQL": "marketing-qualified (MQL)",
        "SQL": "sales-qualified (SQL)",
        "opportunity": "opportunity",
        "won": "won",
        "lost": "lost",
    },
    "intent": {"low": "low", "medium": "medium", "high": "high"},
    "channel": {"email": "email"},
    "boolean": {"true": "yes", "false": "no"},
}

# Durations: a unit in the singular and the plural.
DURATION_UNITS: dict[str, tuple[str, str]] = {
    "weeks": ("week", "weeks"),
    "days": ("day", "days"),
    "hours": ("hour", "hours"),
    "minutes": ("minute", "minutes"),
    "seconds": ("second", "seconds"),
}


@functools.lru_cache(maxsize=1024)  # a ruleset has a handful, read once per part
def duration_in_words(text: str) -> str:
    """An ISO 8601 duration in the units its author wrote: `PT72H` → "72 hours", `P7D` →
    "7 days", `P1DT12H` → "1 day 12 hours", `PT1.5S` → "1.5 seconds". Units written as 0
    are left out unless all are 0 (`PT0S` → "0 seconds"). A text that is not a valid
    duration is returned as it is (a sentence about a broken ruleset still reads)."""
    try:
        parts = duration_parts(text)
    except ValueError:
        return text
    # "01" reads "1"; a fraction of a second keeps the digits its author wrote.
    parts = [(unit, number if "." in number else str(int(number))) for unit, number in parts]
    shown = [(unit, number) for unit, number in parts if float(number) != 0] or parts[-1:]
    return " ".join(
        f"{number} {DURATION_UNITS[unit][0 if float(number) == 1 else 1]}" for unit, number in shown
    )


def event_in_words(event_type: str) -> str:
    """An event type or trigger as the clause of "when …" ("a lead arrives"); a timer
    trigger `timer.<id>` reads "the <id> timer runs out"; an unknown type reads as itself."""
    if event_type.startswith(TIMER_TRIGGER_PREFIX):
        return TIMER_EVENT.format(
            id=event_type.removeprefix(TIMER_TRIGGER_PREFIX).replace("_", " ")
        )
    return EVENTS.get(event_type, event_type)


def variable_in_words(name: str) -> str:
    """A condition variable as a noun ("hours since capture", "attribute budget")."""
    if name in VARIABLE_WORDS:
        return VARIABLE_WORDS[name]
    for prefix, words in VARIABLE_FAMILY_WORDS.items():
        if name.startswith(prefix) and len(name) > len(prefix):
            return words.format(key=name.removeprefix(prefix))
    return name


def operator_in_words(type_name: VariableType, operator: str) -> str:
    """An operator of a variable type as it reads in a sentence; business-rules' own label
    (lower-cased) for one this module has no words for; the name for an unknown one."""
    words = OPERATOR_WORDS.get(type_name, {})
    if operator in words:
        return words[operator]
    for exported in _BUSINESS_RULES_TYPES[type_name].get_all_operators():
        if exported["name"] == operator:
            return str(exported["label"]).lower()
    return operator


def labels() -> dict[str, Any]:
    """Every label a rule-builder UI shows, as JSON: `events` (each lead event type, and
    `timer.<id>` with `{id}` to fill), `variables` (and the `variant.`/`attributes.`
    families with `{key}`), `operators` per variable type, `actions`, `params` per action,
    `values` per param kind (recipients: `rep:` with `{name}`), and `durations` units."""
    return {
        "events": {
            **{name: EVENTS.get(name, name) for name in sorted(LEAD_EVENT_TYPES)},
            TIMER_TRIGGER_PREFIX + "<id>": TIMER_EVENT,
        },
        "variables": {
            **{name: variable_in_words(name) for name in VARIABLES},
            **{prefix + "<key>": words for prefix, words in VARIABLE_FAMILY_WORDS.items()},
        },
        "operators": {
            type_name: {name: operator_in_words(type_name, name) for name in words}
            for type_name, words in OPERATOR_WORDS.items()
        },
        "actions": {name: ACTION_WORDS.get(name, name) for name in ACTIONS},
        "params": {
            name: {
                param: PARAM_WORDS.get(name, {}).get(param, param) for param in model.model_fields
            }
            for name, model in ACTIONS.items()
        },
        "values": VALUE_WORDS,
        "durations": {unit: list(words) for unit, words in DURATION_UNITS.items()},
    }


# Sentences `rules.describe` writes, with `{placeholders}` it fills. Actions read as
# commands ("assign to Li Wei"); differences as what the candidate does now.
PHRASES: dict[str, str] = {
    # lists
    "and": "{rest} and {last}",
    "or": "{rest} or {last}",
    "all_of": " and ",
    "any_of": " or ",
    "group": "({inner})",
    "never": "never",
    "always": "always",
    # conditions
    "leaf": "{variable} {operator} {value}",
    "leaf_no_value": "{variable} {operator}",
    # rules
    "rule": "When {trigger}{condition}: {actions}.",
    "rule_if": ", if {condition}",
    "rule_stops": " Stops further rules.",
    "no_actions": "do nothing",
    "actions": "; ",
    # actions
    "assign_to_rep": "assign to {rep}",
    "assign_to_team": "assign to team {team}, {strategy}",
    "reassign": "{action}, even if the lead already has an owner",
    "return_to_pool": "return the lead to the pool (reason: {reason})",
    "create_task": "create the task {task} due in {due_in}",
    "notify": "notify {to} with the message {template}",
    "notify_by": "notify {to} with the message {template} by {channel}",
    "enroll_in_sequence": "enrol in the sequence {sequence}",
    "exit_sequence": "end the sequence {sequence}",
    "exit_every_sequence": "end every sequence",
    "set_intent": "set the intent to {intent}",
    "add_score": "add {points} points to the score",
    "subtract_score": "take {points} points off the score",
    "set_stage": "move the lead to {stage}",
    "assign_variant": "pick the lead's variant of the experiment {experiment}",
    "add_tag": "tag the lead {tag}",
    "unknown_action": "{name} {params}",
    # timers, sequences, templates, experiments, the pool
    "timer": "The {id} timer runs out {after} after it starts.",
    "timer_starts": " It starts when {events}.",
    "timer_restarts": " It starts again when {events}.",
    "timer_stops": " It stops when {events}.",
    "sequence": "The sequence {id} sends {steps}.",
    "sequence_ends": " It ends when {events}.",
    "step_first": "{template} at once",
    "step": "{template} after {wait}",
    "steps": ", then ",
    "template": "The message {id} has the subject “{subject}”.",
    "template_variants": " Experiment variants {variants} get their own subject.",
    "experiment": "The experiment {id} splits leads into {variants}.",
    "variant": "{name} ({share}%)",
    "pool": "In the pool, {cooldown}; {limit}.",
    "pool_cooldown": "a former owner waits {duration} before claiming a lead again",
    "pool_no_cooldown": "a former owner may claim a lead again at once",
    "pool_limit": "a rep may claim at most {count} leads a day",
    "pool_no_limit": "a rep may claim any number of leads a day",
    # differences
    "assigns_instead": "assigns to {after} instead of {before}",
    "assigns_team_instead": "assigns to team {after} instead of team {before}",
    "strategy_instead": "picks the rep {after} instead of {before}",
    "now_reassigns": "now also takes a lead that already has an owner",
    "no_longer_reassigns": "no longer takes a lead that already has an owner",
    "task_due_instead": "the task {task} is due in {after} instead of {before}",
    "notifies_instead": "notifies {after} instead of {before}",
    "message_instead": "sends the message {after} instead of {before}",
    "points_instead": "adds {after} points instead of {before}",
    "action_instead": "does “{after}” instead of “{before}”",
    "action_added": "now also does “{action}”",
    "action_removed": "no longer does “{action}”",
    "actions_reordered": "does its actions in another order",
    "runs_when_instead": "now runs when {after} instead of when {before}",
    "applies_if_instead": "now applies if {after} instead of if {before}",
    "priority": "priority {before} → {after}",
    "now_stops": "now stops further rules",
    "no_longer_stops": "no longer stops further rules",
    "description_changed": "the description changed",
    "runs_out_instead": "runs out after {after} instead of {before}",
    "now_also": "now also {verb} when {events}",
    "no_longer": "no longer {verb} when {events}",
    "verb_starts": "starts",
    "verb_restarts": "starts again",
    "verb_stops": "stops",
    "verb_ends": "ends",
    "step_waits_instead": "step {step} waits {after} instead of {before}",
    "step_sends_instead": "step {step} sends {after} instead of {before}",
    "step_added": "adds step {step}: {words}",
    "step_removed": "drops step {step}: {words}",
    "subject_instead": "the subject is “{after}” instead of “{before}”",
    "body_changed": "the body changed",
    "variant_subjects_changed": "the variants' subjects changed",
    "variant_added": "adds the variant {words}",
    "variant_removed": "drops the variant {name}",
    "variant_share_instead": "variant {name} gets {after}% instead of {before}%",
    "cooldown_instead": "a former owner waits {after} instead of {before}",
    "cooldown_added": "a former owner now waits {after} before claiming a lead again",
    "cooldown_removed": "a former owner may claim a lead again at once instead of after {before}",
    "limit_instead": "a rep may claim {after} leads a day instead of {before}",
    "any_number": "any number of",
    "other_change": "other details changed",
}
