"""A ruleset in sentences, and what a candidate changes against a base, in words.

`describe_ruleset` writes one sentence per rule, timer, sequence, template, experiment and
the pool policy, with reps and teams by their directory names ("When a lead arrives, if
source is website: assign to Li Wei; create the task first follow up due in 24 hours.
Stops further rules."). `describe_changes` lists what was added, removed or changed, each
change with specific differences ("assigns to Zhang Min instead of Li Wei", "runs out
after 72 hours instead of 48 hours", "priority 100 → 120"). The words come from
`rules.vocabulary`. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, JsonValue

from domain.directory import Directory
from domain.locales import API_DEFAULT_LOCALE, Locale
from rules.catalog import OPERATORS, lookup_variable
from rules.model import (
    Action,
    AllOf,
    Condition,
    Experiment,
    Leaf,
    PoolPolicy,
    Rule,
    Ruleset,
    Sequence,
    Template,
    Timer,
    parse_duration,
)
from rules.vocabulary import (
    VOCABULARIES,
    Vocabulary,
    duration_in_words,
    event_in_words,
    operator_in_words,
    variable_in_words,
    vocabulary,
)

Subject = Literal["rule", "timer", "sequence", "template", "experiment", "pool"]
POOL_ID = "pool"


def _humane(identifier: str) -> str:
    """An id as words: `first_follow_up` → "first follow up"."""
    return identifier.replace("_", " ")


@dataclass(frozen=True)
class _Names:
    """The words of one language, and directory names for the ids a ruleset mentions (an
    unknown id reads as itself)."""

    directory: Directory | None
    words: Vocabulary = VOCABULARIES[API_DEFAULT_LOCALE]

    @property
    def locale(self) -> Locale:
        return self.words.locale

    def say(self, key: str, **values: object) -> str:
        return self.words.say(key, **values)

    def listing(self, items: Iterable[str], joiner: Literal["and", "or"]) -> str:
        """ "a, b and c" (or "a, b or c")."""
        return self.words.listing(list(items), joiner)

    def duration(self, text: str) -> str:
        return duration_in_words(text, self.locale)

    def event(self, event_type: str) -> str:
        return event_in_words(event_type, self.locale)

    def rep(self, rep_id: str) -> str:
        rep = self.directory.rep(rep_id) if self.directory else None
        return rep.name if rep else rep_id

    def team(self, team_id: str) -> str:
        team = self.directory.team(team_id) if self.directory else None
        return team.name if team else team_id

    def recipient(self, to: str) -> str:
        words = self.words.values["to"]
        if to.startswith("rep:"):
            return words["rep:"].format(name=self.rep(to.removeprefix("rep:")))
        return words.get(to, to)


# -- conditions ----------------------------------------------------------------------------


def _value(name: str, value: JsonValue, names: _Names) -> str:
    if isinstance(value, bool):
        return names.words.values["boolean"][str(value).lower()]
    if isinstance(value, list):
        return names.listing((_value(name, v, names) for v in value), "or")
    text = "" if value is None else str(value)
    if name == "owner":
        return names.rep(text)
    if name == "team":
        return names.team(text)
    if name in names.words.values:
        return names.words.values[name].get(text, text)
    return text


def _leaf(leaf: Leaf, names: _Names) -> str:
    variable = lookup_variable(leaf.name)
    type_name = variable.type if variable else "string"
    if leaf.name in names.words.boolean_facts and leaf.operator in ("is_true", "is_false"):
        return names.words.boolean_facts[leaf.name][0 if leaf.operator == "is_true" else 1]
    words = {
        "variable": variable_in_words(leaf.name, names.locale),
        "operator": operator_in_words(type_name, leaf.operator, names.locale),
    }
    if OPERATORS[type_name].get(leaf.operator) == "none":
        return names.say("leaf_no_value", **words)
    return names.say("leaf", **words, value=_value(leaf.name, leaf.value, names))


def condition_in_words(condition: Condition, names: _Names, *, nested: bool = False) -> str:
    """A condition tree as words: "always" for `{"all": []}`, "never" for `{"any": []}`;
    a nested group of two or more in parentheses."""
    if isinstance(condition, Leaf):
        return _leaf(condition, names)
    if isinstance(condition, AllOf):
        parts, joiner, empty = (
            condition.all_,
            names.words.phrases["all_of"],
            names.words.phrases["always"],
        )
    else:
        parts, joiner, empty = (
            condition.any_,
            names.words.phrases["any_of"],
            names.words.phrases["never"],
        )
    if not parts:
        return empty
    if len(parts) == 1:
        return condition_in_words(parts[0], names, nested=nested)
    inner = joiner.join(condition_in_words(p, names, nested=True) for p in parts)
    return names.say("group", inner=inner) if nested else inner


def _always(condition: Condition) -> bool:
    return isinstance(condition, AllOf) and not condition.all_


# -- actions -------------------------------------------------------------------------------


def _text(params: dict[str, JsonValue], key: str) -> str:
    value = params.get(key)
    return "" if value is None else str(value)


def action_in_words(action: Action, names: _Names) -> str:
    """One action as a command: "assign to Li Wei"."""
    p = action.params
    match action.name:
        case "assign_to_rep":
            words = names.say("assign_to_rep", rep=names.rep(_text(p, "rep")))
        case "assign_to_team":
            strategy = names.words.values["strategy"].get(
                _text(p, "strategy"), _text(p, "strategy")
            )
            words = names.say(
                "assign_to_team", team=names.team(_text(p, "team")), strategy=strategy
            )
        case "return_to_pool":
            reason = _text(p, "reason")
            reason_words = names.words.values["reason"].get(reason, _humane(reason))
            return names.say("return_to_pool", reason=reason_words)
        case "create_task":
            due = names.duration(_text(p, "due_in"))
            return names.say("create_task", task=_humane(_text(p, "task")), due_in=due)
        case "notify":
            to, template = names.recipient(_text(p, "to")), _text(p, "template")
            channel = p.get("channel")
            if channel is None:
                return names.say("notify", to=to, template=template)
            channel_words = names.words.values["channel"].get(str(channel), str(channel))
            return names.say("notify_by", to=to, template=template, channel=channel_words)
        case "enroll_in_sequence":
            return names.say("enroll_in_sequence", sequence=_text(p, "sequence"))
        case "exit_sequence":
            if p.get("sequence") is None:
                return names.say("exit_every_sequence")
            return names.say("exit_sequence", sequence=_text(p, "sequence"))
        case "set_intent":
            intent = names.words.values["intent"].get(_text(p, "intent"), _text(p, "intent"))
            return names.say("set_intent", intent=intent)
        case "add_score":
            points = p.get("points")
            if isinstance(points, int) and points < 0:
                return names.say("subtract_score", points=-points)
            return names.say("add_score", points=points)
        case "set_stage":
            stage = names.words.values["stage"].get(_text(p, "stage"), _text(p, "stage"))
            return names.say("set_stage", stage=stage)
        case "assign_variant":
            return names.say("assign_variant", experiment=_text(p, "experiment"))
        case "add_tag":
            return names.say("add_tag", tag=_text(p, "tag"))
        case _:
            shown = ", ".join(f"{k}: {v}" for k, v in p.items())
            return names.say("unknown_action", name=action.name, params=shown).strip()
    return names.say("reassign", action=words) if p.get("reassign") is True else words


# -- one sentence per part -----------------------------------------------------------------


def rule_in_words(rule: Rule, names: _Names) -> str:
    condition = (
        ""
        if _always(rule.conditions)
        else names.say("rule_if", condition=condition_in_words(rule.conditions, names))
    )
    actions = names.words.phrases["actions"].join(action_in_words(a, names) for a in rule.actions)
    sentence = names.say(
        "rule",
        trigger=names.listing((names.event(t) for t in rule.when), "or"),
        condition=condition,
        actions=actions or names.words.phrases["no_actions"],
    )
    return sentence + (names.words.phrases["rule_stops"] if rule.stop else "")


def _events(events: list[str], names: _Names) -> str:
    return names.listing((names.event(e) for e in events), "or")


def timer_in_words(timer: Timer, names: _Names) -> str:
    sentence = names.say("timer", id=_humane(timer.id), after=names.duration(timer.after))
    for key, events in (
        ("timer_starts", timer.start_on),
        ("timer_restarts", timer.restart_on),
        ("timer_stops", timer.cancel_on),
    ):
        if events:
            sentence += names.say(key, events=_events(events, names))
    return sentence


def _is_zero(duration: str) -> bool:
    try:
        return parse_duration(duration) == timedelta(0)
    except ValueError:
        return False


def _step(index: int, wait: str, template: str, names: _Names) -> str:
    if index == 0 and _is_zero(wait):
        return names.say("step_first", template=template)
    return names.say("step", template=template, wait=names.duration(wait))


def sequence_in_words(sequence_id: str, sequence: Sequence, names: _Names) -> str:
    steps = names.words.phrases["steps"].join(
        _step(i, s.wait, s.template, names) for i, s in enumerate(sequence.steps)
    )
    sentence = names.say("sequence", id=sequence_id, steps=steps)
    if sequence.exit_on:
        sentence += names.say("sequence_ends", events=_events(sequence.exit_on, names))
    return sentence


def template_in_words(template_id: str, template: Template, names: _Names) -> str:
    sentence = names.say("template", id=template_id, subject=template.subject)
    if template.subject_variants:
        sentence += names.say(
            "template_variants", variants=names.listing(sorted(template.subject_variants), "and")
        )
    return sentence


def _shares(experiment: Experiment) -> dict[str, str]:
    total = sum(v.weight for v in experiment.variants.values()) or 1
    return {
        name: f"{round(100 * v.weight / total, 1):g}" for name, v in experiment.variants.items()
    }


def experiment_in_words(experiment_id: str, experiment: Experiment, names: _Names) -> str:
    variants = names.listing(
        (names.say("variant", name=n, share=s) for n, s in _shares(experiment).items()), "and"
    )
    return names.say("experiment", id=experiment_id, variants=variants)


def pool_in_words(pool: PoolPolicy, names: _Names) -> str:
    cooldown = (
        names.say("pool_cooldown", duration=names.duration(pool.claim_cooldown))
        if pool.claim_cooldown
        else names.say("pool_no_cooldown")
    )
    limit = (
        names.say("pool_limit", count=pool.daily_claim_limit)
        if pool.daily_claim_limit is not None
        else names.say("pool_no_limit")
    )
    return names.say("pool", cooldown=cooldown, limit=limit)


def _parts(ruleset: Ruleset, names: _Names) -> list[tuple[Subject, str, BaseModel, str]]:
    """(subject, id, part, sentence) for every part, in the document's order."""
    parts: list[tuple[Subject, str, BaseModel, str]] = []
    parts += [("rule", r.id, r, rule_in_words(r, names)) for r in ruleset.rules]
    parts += [("timer", t.id, t, timer_in_words(t, names)) for t in ruleset.timers]
    parts += [
        ("sequence", i, s, sequence_in_words(i, s, names)) for i, s in ruleset.sequences.items()
    ]
    parts += [
        ("template", i, t, template_in_words(i, t, names)) for i, t in ruleset.templates.items()
    ]
    parts += [
        ("experiment", i, e, experiment_in_words(i, e, names))
        for i, e in ruleset.experiments.items()
    ]
    parts.append(("pool", POOL_ID, ruleset.pool, pool_in_words(ruleset.pool, names)))
    return parts


def describe_ruleset(
    ruleset: Ruleset, directory: Directory | None, locale: Locale = API_DEFAULT_LOCALE
) -> list[dict[str, str]]:
    """One `{"subject", "id", "sentence"}` per rule, timer, sequence, template,
    experiment, and the pool policy, in that order, in `locale`."""
    return [
        {"subject": subject, "id": part_id, "sentence": sentence}
        for subject, part_id, _, sentence in _parts(ruleset, _Names(directory, vocabulary(locale)))
    ]


# -- differences ---------------------------------------------------------------------------


def _event_changes(verb: str, before: list[str], after: list[str], names: _Names) -> list[str]:
    added = [e for e in after if e not in before]
    removed = [e for e in before if e not in after]
    words = names.words.phrases[verb]
    changes = []
    if added:
        changes.append(names.say("now_also", verb=words, events=_events(added, names)))
    if removed:
        changes.append(names.say("no_longer", verb=words, events=_events(removed, names)))
    return changes


def _action_difference(before: Action, after: Action, names: _Names) -> list[str]:
    """What changed in one action whose name stayed."""
    b, a = before.params, after.params
    changed = {k for k in b.keys() | a.keys() if b.get(k) != a.get(k)}
    found: list[str] = []
    if "rep" in changed:
        found.append(
            names.say(
                "assigns_instead",
                after=names.rep(_text(a, "rep")),
                before=names.rep(_text(b, "rep")),
            )
        )
    if "team" in changed and after.name == "assign_to_team":
        found.append(
            names.say(
                "assigns_team_instead",
                after=names.team(_text(a, "team")),
                before=names.team(_text(b, "team")),
            )
        )
    if "strategy" in changed:
        strategies = names.words.values["strategy"]
        found.append(
            names.say(
                "strategy_instead",
                after=strategies.get(_text(a, "strategy"), _text(a, "strategy")),
                before=strategies.get(_text(b, "strategy"), _text(b, "strategy")),
            )
        )
    if "reassign" in changed:
        found.append(names.say("now_reassigns" if a.get("reassign") else "no_longer_reassigns"))
    if changed == {"due_in"}:
        found.append(
            names.say(
                "task_due_instead",
                task=_humane(_text(a, "task")),
                after=names.duration(_text(a, "due_in")),
                before=names.duration(_text(b, "due_in")),
            )
        )
    if "to" in changed:
        found.append(
            names.say(
                "notifies_instead",
                after=names.recipient(_text(a, "to")),
                before=names.recipient(_text(b, "to")),
            )
        )
    if "template" in changed:
        found.append(
            names.say("message_instead", after=_text(a, "template"), before=_text(b, "template"))
        )
    if changed == {"points"}:
        found.append(names.say("points_instead", after=a.get("points"), before=b.get("points")))
    if not found:
        found.append(
            names.say(
                "action_instead",
                after=action_in_words(after, names),
                before=action_in_words(before, names),
            )
        )
    return found


def _action_differences(before: list[Action], after: list[Action], names: _Names) -> list[str]:
    found: list[str] = []
    unmatched_after = list(after)
    unmatched_before: list[Action] = []
    for old in before:
        new = next((a for a in unmatched_after if a.name == old.name), None)
        if new is None:
            unmatched_before.append(old)
            continue
        unmatched_after.remove(new)
        if new != old:
            found += _action_difference(old, new, names)
    found += [names.say("action_added", action=action_in_words(a, names)) for a in unmatched_after]
    found += [
        names.say("action_removed", action=action_in_words(a, names)) for a in unmatched_before
    ]
    if not found and [a.name for a in before] != [a.name for a in after]:
        found.append(names.say("actions_reordered"))
    return found


def _rule_differences(before: Rule, after: Rule, names: _Names) -> list[str]:
    found: list[str] = []
    if sorted(before.when) != sorted(after.when):
        found.append(
            names.say(
                "runs_when_instead",
                after=names.listing((names.event(t) for t in after.when), "or"),
                before=names.listing((names.event(t) for t in before.when), "or"),
            )
        )
    if before.conditions != after.conditions:
        found.append(
            names.say(
                "applies_if_instead",
                after=condition_in_words(after.conditions, names),
                before=condition_in_words(before.conditions, names),
            )
        )
    if before.priority != after.priority:
        found.append(names.say("priority", before=before.priority, after=after.priority))
    if before.stop != after.stop:
        found.append(names.say("now_stops" if after.stop else "no_longer_stops"))
    found += _action_differences(before.actions, after.actions, names)
    if before.description != after.description:
        found.append(names.say("description_changed"))
    return found


def _timer_differences(before: Timer, after: Timer, names: _Names) -> list[str]:
    found: list[str] = []
    if before.after != after.after:
        found.append(
            names.say(
                "runs_out_instead",
                after=names.duration(after.after),
                before=names.duration(before.after),
            )
        )
    found += _event_changes("verb_starts", before.start_on, after.start_on, names)
    found += _event_changes("verb_restarts", before.restart_on, after.restart_on, names)
    found += _event_changes("verb_stops", before.cancel_on, after.cancel_on, names)
    return found


def _sequence_differences(before: Sequence, after: Sequence, names: _Names) -> list[str]:
    found: list[str] = []
    for index in range(max(len(before.steps), len(after.steps))):
        step = index + 1
        if index >= len(before.steps):
            new = after.steps[index]
            found.append(
                names.say(
                    "step_added", step=step, words=_step(index, new.wait, new.template, names)
                )
            )
        elif index >= len(after.steps):
            old = before.steps[index]
            found.append(
                names.say(
                    "step_removed", step=step, words=_step(index, old.wait, old.template, names)
                )
            )
        else:
            old, new = before.steps[index], after.steps[index]
            if old.wait != new.wait:
                found.append(
                    names.say(
                        "step_waits_instead",
                        step=step,
                        after=names.duration(new.wait),
                        before=names.duration(old.wait),
                    )
                )
            if old.template != new.template:
                found.append(
                    names.say(
                        "step_sends_instead", step=step, after=new.template, before=old.template
                    )
                )
    found += _event_changes("verb_ends", before.exit_on, after.exit_on, names)
    return found


def _template_differences(before: Template, after: Template, names: _Names) -> list[str]:
    found: list[str] = []
    if before.subject != after.subject:
        found.append(names.say("subject_instead", after=after.subject, before=before.subject))
    if before.body != after.body:
        found.append(names.say("body_changed"))
    if before.subject_variants != after.subject_variants:
        found.append(names.say("variant_subjects_changed"))
    return found


def _experiment_differences(before: Experiment, after: Experiment, names: _Names) -> list[str]:
    old, new = _shares(before), _shares(after)
    found: list[str] = []
    for name, share in new.items():
        if name not in old:
            found.append(
                names.say("variant_added", words=names.say("variant", name=name, share=share))
            )
        elif old[name] != share:
            found.append(
                names.say("variant_share_instead", name=name, after=share, before=old[name])
            )
    found += [names.say("variant_removed", name=name) for name in old if name not in new]
    return found


def _pool_differences(before: PoolPolicy, after: PoolPolicy, names: _Names) -> list[str]:
    found: list[str] = []
    old_wait, new_wait = before.claim_cooldown, after.claim_cooldown
    if old_wait != new_wait:
        if new_wait is None and old_wait is not None:
            found.append(names.say("cooldown_removed", before=names.duration(old_wait)))
        elif old_wait is None and new_wait is not None:
            found.append(names.say("cooldown_added", after=names.duration(new_wait)))
        elif old_wait is not None and new_wait is not None:
            found.append(
                names.say(
                    "cooldown_instead",
                    after=names.duration(new_wait),
                    before=names.duration(old_wait),
                )
            )
    if before.daily_claim_limit != after.daily_claim_limit:

        def limit(policy: PoolPolicy) -> object:
            count = policy.daily_claim_limit
            return names.words.phrases["any_number"] if count is None else count

        found.append(names.say("limit_instead", after=limit(after), before=limit(before)))
    return found


_DIFFERENCES: dict[Subject, Callable[[Any, Any, _Names], list[str]]] = {
    "rule": _rule_differences,
    "timer": _timer_differences,
    "sequence": _sequence_differences,
    "template": _template_differences,
    "experiment": _experiment_differences,
    "pool": _pool_differences,
}


def describe_changes(
    base: Ruleset,
    candidate: Ruleset,
    directory: Directory | None,
    locale: Locale = API_DEFAULT_LOCALE,
) -> list[dict[str, Any]]:
    """What `candidate` adds, removes and changes against `base`: one
    `{"kind", "subject", "id", "before", "after", "differences"}` per part that differs:
    added and changed parts in the candidate's order, then removed ones in the base's.
    `before`/`after` are the part's sentences (None where it does not exist);
    `differences` name each change of a changed part (empty for added and removed)."""
    names = _Names(directory, vocabulary(locale))
    return _changes(_parts(base, names), _parts(candidate, names), names)


def _changes(
    base: list[tuple[Subject, str, BaseModel, str]],
    candidate: list[tuple[Subject, str, BaseModel, str]],
    names: _Names,
) -> list[dict[str, Any]]:
    old = {(s, i): (part, sentence) for s, i, part, sentence in base}
    new = {(s, i): (part, sentence) for s, i, part, sentence in candidate}
    changes: list[dict[str, Any]] = []
    for key, (part, sentence) in new.items():
        subject, part_id = key
        if key not in old:
            changes.append(_change("added", subject, part_id, None, sentence, []))
            continue
        old_part, old_sentence = old[key]
        if old_part == part:
            continue
        differences = _DIFFERENCES[subject](old_part, part, names) or [
            names.words.phrases["other_change"]
        ]
        changes.append(_change("changed", subject, part_id, old_sentence, sentence, differences))
    for key, (_, sentence) in old.items():
        if key not in new:
            changes.append(_change("removed", key[0], key[1], sentence, None, []))
    return changes


def _change(
    kind: str,
    subject: Subject,
    part_id: str,
    before: str | None,
    after: str | None,
    differences: list[str],
) -> dict[str, Any]:
    return {
        "kind": kind,
        "subject": subject,
        "id": part_id,
        "before": before,
        "after": after,
        "differences": differences,
    }


NO_RULESET = Ruleset(name="(none)")


def describe_against(
    base: Ruleset,
    base_version: int | None,
    candidate: Ruleset,
    directory: Directory | None,
    locale: Locale = API_DEFAULT_LOCALE,
) -> dict[str, Any]:
    """The answer of `POST /v1/rulesets/describe`: the changes, and both rulesets in
    sentences (each part described once), in `locale`."""
    names = _Names(directory, vocabulary(locale))
    base_parts, candidate_parts = _parts(base, names), _parts(candidate, names)

    def sentences(parts: list[tuple[Subject, str, BaseModel, str]]) -> list[dict[str, str]]:
        return [{"subject": s, "id": i, "sentence": sentence} for s, i, _, sentence in parts]

    return {
        "base_version": base_version,
        "changes": _changes(base_parts, candidate_parts, names),
        "base": sentences(base_parts),
        "candidate": sentences(candidate_parts),
    }
