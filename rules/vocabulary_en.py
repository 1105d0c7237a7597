"""Every word leadflow's server shows a person, in English (docs/languages.md).

One table per language, each a module of this shape (`rules.vocabulary_zh_cn` is the
Chinese one): the same names, the same keys, different words. `rules.vocabulary` reads
them; `tests/unit/test_vocabulary.py` fails when a key is in one language and not the
other. Pure data: nothing to import but the types.
"""

from __future__ import annotations

from typing import Literal

VariableType = Literal["string", "numeric", "boolean", "select"]

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

# An event by its name, as a timeline or a notification shows it ("Followed up"); every
# event type the log holds (`rules.catalog.WORDED_EVENT_TYPES`) has one.
EVENT_NAMES: dict[str, str] = {
    "lead.captured": "Captured",
    "lead.followed_up": "Followed up",
    "lead.claimed": "Claimed from the pool",
    "lead.reassigned": "Reassigned",
    "lead.released": "Released to the pool",
    "lead.qualified": "Qualified",
    "lead.opportunity_opened": "Opportunity opened",
    "lead.won": "Won",
    "lead.lost": "Lost",
    "email.opened": "Email opened",
    "email.clicked": "Email link clicked",
    "email.bounced": "Email bounced",
    "email.replied": "Email replied",
    "lead.unsubscribed": "Unsubscribed",
    "campaign.spend_recorded": "Campaign spend recorded",
    "lead.do_not_contact_set": "Put on do-not-contact",
    "lead.do_not_contact_lifted": "Do-not-contact lifted",
    "lead.erased": "Personal data erased",
    "lead.assigned": "Assigned",
    "lead.task_created": "Task created",
    "lead.timer_fired": "Timer ran out",
    "lead.reminder_sent": "Reminder sent",
    "lead.returned_to_pool": "Back to the public pool",
    "lead.stage_changed": "Stage changed",
    "lead.scored": "Score changed",
    "lead.tagged": "Tagged",
    "lead.intent_set": "Intent set",
    "nurture.enrolled": "Enrolled in a nurture sequence",
    "nurture.email_sent": "Nurture email sent",
    "nurture.exited": "Left a nurture sequence",
    "experiment.variant_assigned": "Experiment variant assigned",
    "notification.sent": "Notification sent",
    "notification.queued": "Notification queued",
    "ruleset.published": "Ruleset published",
    "ruleset.activated": "Ruleset activated",
    "directory.replaced": "Sales directory replaced",
}
# A follow-up's kind (`lead.followed_up` data `kind`).
FOLLOW_UP_KINDS: dict[str, str] = {
    "call": "Call",
    "email": "Email",
    "meeting": "Meeting",
    "visit": "Visit",
    "sms": "SMS",
    "wechat": "WeChat",
}
# A lead's stage, as a list or a badge shows it.
STAGES: dict[str, str] = {
    "new": "New",
    "MQL": "MQL",
    "SQL": "SQL",
    "opportunity": "Opportunity",
    "won": "Won",
    "lost": "Lost",
}
# Why a lead is in the public pool (`lead.returned_to_pool` / `lead.released`).
POOL_REASONS: dict[str, str] = {
    "unassigned": "No one could take it",
    "no_follow_up_48h": "No follow-up within 48 hours",
    "idle_7d": "No follow-up for 7 days",
    "released": "Released by its owner",
    "rep_unavailable": "The rep the rule named could not take it",
    "team_unavailable": "No one in the team the rule named could take it",
}

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
# The families of variables by their prefix (`rules.catalog`).
VARIABLE_FAMILY_WORDS: dict[str, str] = {
    "variant.": "variant in experiment {key}",
    "attributes.": "attribute {key}",
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
    "reason": {
        "unassigned": "unassigned",
        "no_follow_up_48h": "no follow up 48h",
        "idle_7d": "idle 7d",
        "released": "released",
    },
}

# Durations: a unit in the singular and the plural.
DURATION_UNITS: dict[str, tuple[str, str]] = {
    "weeks": ("week", "weeks"),
    "days": ("day", "days"),
    "hours": ("hour", "hours"),
    "minutes": ("minute", "minutes"),
    "seconds": ("second", "seconds"),
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
    "no_changes": "No changes.",
}

# How a list of three reads: "a, b and c" (the last pair's joiner is in the phrases).
LIST_SEPARATOR = ", "

# -- a replay's summary (`replay.summary`) ---------------------------------------------------

SUMMARY_PHRASES: dict[str, str] = {
    "last_days": "Last {days} days ({start} \u2013 {end})",
    "between": "{start} \u2013 {end} ({days} days)",
    "since": "Since {start}",
    "before": "Before {end}",
    "all_history": "Over all recorded history",
    "one_lead": "For lead {lead_id}",
    "nothing": "{window}: the candidate would change nothing for the {leads} replayed.",
    "leads": "{count} leads",
    "lead": "{count} lead",
    "first_move": "{window}: {move}.",
    "no_move": "{window}: every lead would keep its owner.",
    "move": "{leads} would go to {to} instead of {from_}",
    "another_move": "{move}.",
    "more_moves": "And {moves} more moves of {leads}.",
    "pool": "the pool",
    "team": "team {name}",
    "same_count": "As many {what} as before, but for other leads ({gained} more, {lost} fewer).",
    "no_change_to": "No change to {what}.",
    "rules_changed": "Rules the candidate changes: {rules}.",
    "list": "{rest} and {last}",
    "day": "{mon} {day}",
    "day_in_year": "{mon} {day}, {year}",
}
# Per outcome kind of a replay (`replay.diff._outcome`): the sentence for more and for
# fewer, and the words for "no change to …".
SUMMARY_OUTCOMES: dict[str, tuple[str, str, str]] = {
    "reclaim": (
        "{count} more leads would be reclaimed to the pool.",
        "{count} fewer leads would be reclaimed to the pool.",
        "reclaims",
    ),
    "reminder": (
        "{count} more reminders would be sent.",
        "{count} fewer reminders would be sent.",
        "reminders",
    ),
    "nurture enrolment": (
        "{count} more nurture enrolments.",
        "{count} fewer nurture enrolments.",
        "nurture enrolments",
    ),
    "email to lead": (
        "{count} more emails would go to leads.",
        "{count} fewer emails would go to leads.",
        "emails to leads",
    ),
    "notification": (
        "{count} more notifications would be sent.",
        "{count} fewer notifications would be sent.",
        "notifications",
    ),
}
