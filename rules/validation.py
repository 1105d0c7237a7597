"""Validation of a ruleset document: every error, each with a JSON Pointer and a message.

The document is walked as raw JSON rather than parsed first, so that one malformed part
does not hide the errors in the others, and so that any JSON at all yields a list of
errors instead of an exception. Reps, teams and channels are checked only when a directory
is given (at publish and at activation). Sizes are bounded (the limits below), so that no
published ruleset can make every decision slow or every worker hold much memory.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sized
from dataclasses import dataclass

from pydantic import ValidationError

from domain.directory import Directory
from domain.errors import FieldError, InvalidDocument
from rules.builtin_templates import BUILTIN_TEMPLATES
from rules.catalog import (
    ACTIONS,
    LEAD_EVENT_TYPES,
    NOT_RULE_TRIGGERS,
    OPERATORS,
    TIMER_TRIGGER_PREFIX,
    VARIABLE_FAMILIES,
    VARIANT_PREFIX,
    lookup_variable,
)
from rules.compile import InvalidRegex, compile_regex
from rules.model import Ruleset, parse_duration

# Limits. Every rule of a trigger is tested on every lead event and every timer, and every
# worker keeps each version it has used compiled in memory, so a ruleset's size is its
# cost on each decision. Each limit is far above what a sales process needs (the default
# ruleset has 8 rules, 4 timers, 1 sequence of 5 steps).
MAX_CONDITION_DEPTH = 32  # also keeps the recursive checks far from Python's stack limit
MAX_RULES = 500
MAX_CONDITIONS_PER_RULE = 100  # leaves, however they are grouped
MAX_ACTIONS_PER_RULE = 20
MAX_TIMERS = 50
MAX_SEQUENCES = 50
MAX_SEQUENCE_STEPS = 60  # more than a year of weekly emails
MAX_TEMPLATES = 200
MAX_SUBJECT_LENGTH = 200
MAX_BODY_LENGTH = 20_000
MAX_EXPERIMENTS = 20
MAX_VARIANTS = 10
MAX_ID_LENGTH = 200
MAX_CONDITION_TEXT_LENGTH = 1000
MAX_REGEX_LENGTH = 1000
# Each pattern may take up to `rules.compile.REGEX_MAX_MEMORY` in every worker.
MAX_REGEX_CONDITIONS = 100

# PostgreSQL text columns (read models) refuse NUL; a lone surrogate is not Unicode and
# cannot be encoded as UTF-8, in an answer or an email.
_NUL_OR_SURROGATE = re.compile("[\x00\ud800-\udfff]")
_RULESET_KEYS = {
    "name",
    "description",
    "timers",
    "rules",
    "sequences",
    "templates",
    "experiments",
    "pool",
}

Path = tuple[str | int, ...]


@dataclass
class InvalidRuleset(InvalidDocument):
    """The ruleset document is invalid; it cannot be published or activated."""

    code = "invalid_ruleset"
    what = "ruleset"


def validate_ruleset(doc: object, directory: Directory | None) -> list[FieldError]:
    """Every error in the document, section by section; empty when it is valid.

    Never raises on any JSON value. Checks structure and types, variables and the
    operators their types allow, operator values (`matches_regex` patterns in RE2
    syntax), actions and their params, ISO 8601 durations, references to sequences,
    templates (the ruleset's and the built-in ones), timers, experiments and, with a
    directory, reps, teams and channels; trigger event types; duplicate rule and timer
    ids; the size limits of this module. A document with a NUL character or a lone
    surrogate in any string or key gets those errors alone: a path through such a key
    could not be encoded in an answer.
    """
    return _Check(directory).ruleset(doc)


def parse_ruleset(doc: object, directory: Directory | None) -> Ruleset:
    """The typed ruleset, or InvalidRuleset listing every error."""
    errors = validate_ruleset(doc, directory)
    if not errors:
        try:
            return Ruleset.model_validate(doc)
        except ValidationError as exc:
            errors = [FieldError(_pointer(tuple(e["loc"])), e["msg"]) for e in exc.errors()]
    raise InvalidRuleset(errors)


def _pointer(path: Path) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _is_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def _pydantic_message(error: Mapping[str, object]) -> str:
    if error["type"] == "missing":
        return "required param"
    if error["type"] == "extra_forbidden":
        return "unknown param"
    return str(error["msg"]).removeprefix("Value error, ")


class _Check:
    def __init__(self, directory: Directory | None) -> None:
        self.directory = directory
        self.errors: list[FieldError] = []
        self.templates: set[str] = set(BUILTIN_TEMPLATES)
        self.experiments: dict[str, set[str]] = {}
        self.sequences: set[str] = set()
        self.timers: set[str] = set()
        self.leaves = 0  # condition leaves seen so far, for the per-rule limit
        self.regexes = 0  # matches_regex patterns seen so far

    def fail(self, path: Path, message: str) -> None:
        self.errors.append(FieldError(_pointer(path), message))

    # -- shapes -------------------------------------------------------------------------

    def obj(self, path: Path, value: object, allowed: set[str], required: set[str]) -> bool:
        """Check that `value` is an object with only `allowed` keys and every `required`."""
        if not isinstance(value, dict):
            self.fail(path, "must be an object")
            return False
        for key in value:
            if key not in allowed:
                self.fail((*path, key), "unknown field")
        for key in sorted(required - value.keys()):
            self.fail((*path, key), "required")
        return True

    def text(
        self,
        path: Path,
        value: object,
        *,
        max_length: int | None = None,
        may_be_empty: bool = False,
    ) -> bool:
        if not isinstance(value, str):
            self.fail(path, "must be a string")
            return False
        if max_length is None:
            return True
        if may_be_empty and len(value) > max_length:
            self.fail(path, f"must be at most {max_length} characters")
            return False
        if not may_be_empty and not 1 <= len(value) <= max_length:
            self.fail(path, f"must be 1 to {max_length} characters")
            return False
        return True

    def at_most(self, path: Path, items: Sized, limit: int, owner: str, what: str) -> None:
        """Report more than `limit` items: "<owner> may have at most <limit> <what>"."""
        if len(items) > limit:
            self.fail(path, f"{owner} may have at most {limit} {what}")

    def duration(self, path: Path, value: object) -> None:
        if not isinstance(value, str):
            self.fail(path, "must be an ISO 8601 duration string such as PT24H")
            return
        try:
            parse_duration(value)
        except ValueError as exc:
            self.fail(path, str(exc))

    def mapping(
        self, doc: dict[str, object], key: str, entry: Callable[[Path, object], None], limit: int
    ) -> list[str]:
        """Check an optional `{id: entry}` section of at most `limit` entries; return its ids."""
        if key not in doc:
            return []
        section = doc[key]
        if not isinstance(section, dict):
            self.fail((key,), "must be an object of id → definition")
            return []
        self.at_most((key,), section, limit, "a ruleset", key)
        for entry_id, value in section.items():
            if not isinstance(entry_id, str) or not 1 <= len(entry_id) <= MAX_ID_LENGTH:
                self.fail((key, entry_id), f"an id must be 1 to {MAX_ID_LENGTH} characters")
            entry((key, entry_id), value)
        return list(section)

    def items(self, doc: dict[str, object], key: str, limit: int) -> list[tuple[Path, object]]:
        """The entries of an optional list section of at most `limit`, with their paths."""
        section = doc.get(key, [])
        if not isinstance(section, list):
            self.fail((key,), "must be a list")
            return []
        self.at_most((key,), section, limit, "a ruleset", key)
        return [((key, index), value) for index, value in enumerate(section)]

    def event_types(self, path: Path, value: object, *, at_least_one: bool = False) -> None:
        if not isinstance(value, list):
            self.fail(path, "must be a list of event types")
            return
        if at_least_one and not value:
            self.fail(path, "must name at least one event type")
        for index, event_type in enumerate(value):
            if not isinstance(event_type, str):
                self.fail((*path, index), "must be an event type string")
            elif event_type not in LEAD_EVENT_TYPES:
                self.fail((*path, index), f"unknown event type {event_type!r}")

    def unique_ids(self, entries: list[tuple[Path, object]], kind: str) -> None:
        first: dict[str, Path] = {}
        for path, entry in entries:
            entry_id = entry.get("id") if isinstance(entry, dict) else None
            if not isinstance(entry_id, str):
                continue
            if entry_id in first:
                where = _pointer(first[entry_id])
                self.fail((*path, "id"), f"duplicate {kind} id {entry_id!r} (first at {where})")
            else:
                first[entry_id] = path

    # -- the document -------------------------------------------------------------------

    def ruleset(self, doc: object) -> list[FieldError]:
        self.encodable_text(doc)
        if self.errors:
            return self.errors
        if not self.obj((), doc, _RULESET_KEYS, {"name"}):
            return self.errors
        assert isinstance(doc, dict)
        if "name" in doc:
            self.text(("name",), doc["name"], max_length=200)
        if doc.get("description") is not None:
            self.text(("description",), doc["description"])

        # Collect ids before checking references to them, whatever their order in the doc.
        self.templates.update(self.mapping(doc, "templates", self.template, MAX_TEMPLATES))
        experiments = self.mapping(doc, "experiments", self.experiment, MAX_EXPERIMENTS)
        for experiment_id in experiments:
            self.experiments.setdefault(experiment_id, set())
        self.check_subject_variants(doc)
        self.sequences.update(self.mapping(doc, "sequences", self.sequence, MAX_SEQUENCES))

        timers = self.items(doc, "timers", MAX_TIMERS)
        self.unique_ids(timers, "timer")
        for path, timer in timers:
            self.timer(path, timer)
        rules = self.items(doc, "rules", MAX_RULES)
        self.unique_ids(rules, "rule")
        for path, rule in rules:
            self.rule(path, rule)
        self.check_notification_loops(timers, rules)
        if "pool" in doc:
            self.pool(("pool",), doc["pool"])
        return self.errors

    def encodable_text(self, doc: object) -> None:
        """Report every string and key holding a NUL character or a lone surrogate; a bad
        key is reported at its object, and what lies under it is not visited."""
        pending: list[tuple[Path, object]] = [((), doc)]
        while pending:  # a loop, not recursion: the document may nest deeply anywhere
            path, node = pending.pop()
            if isinstance(node, str):
                if _NUL_OR_SURROGATE.search(node):
                    self.fail(path, "must not contain NUL characters or lone surrogates")
            elif isinstance(node, dict):
                children: list[tuple[Path, object]] = []
                for key, child in node.items():
                    if isinstance(key, str) and _NUL_OR_SURROGATE.search(key):
                        self.fail(path, f"key {key!r} contains a NUL character or lone surrogate")
                    else:
                        children.append(((*path, key), child))
                pending.extend(reversed(children))  # popped in document order
            elif isinstance(node, list):
                pending.extend(reversed([((*path, i), c) for i, c in enumerate(node)]))

    def pool(self, path: Path, value: object) -> None:
        if not self.obj(path, value, {"claim_cooldown", "daily_claim_limit"}, set()):
            return
        assert isinstance(value, dict)
        if value.get("claim_cooldown") is not None:
            self.duration((*path, "claim_cooldown"), value["claim_cooldown"])
        limit = value.get("daily_claim_limit")
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            self.fail((*path, "daily_claim_limit"), "must be a whole number ≥ 0")

    def template(self, path: Path, value: object) -> None:
        if not self.obj(path, value, {"subject", "body", "subject_variants"}, {"subject", "body"}):
            return
        assert isinstance(value, dict)
        for key, limit in (("subject", MAX_SUBJECT_LENGTH), ("body", MAX_BODY_LENGTH)):
            if key in value:
                self.text((*path, key), value[key], max_length=limit, may_be_empty=True)
        variants = value.get("subject_variants", {})
        if not isinstance(variants, dict):
            self.fail((*path, "subject_variants"), "must be an object of variant → subject")
            return
        for variant, subject in variants.items():
            variant_path = (*path, "subject_variants", variant)
            self.text(variant_path, subject, max_length=MAX_SUBJECT_LENGTH, may_be_empty=True)

    def check_subject_variants(self, doc: dict[str, object]) -> None:
        templates = doc.get("templates")
        if not isinstance(templates, dict):
            return
        known = set[str]().union(*self.experiments.values())
        for template_id, template in templates.items():
            variants = template.get("subject_variants") if isinstance(template, dict) else None
            for variant in variants if isinstance(variants, dict) else ():
                if variant not in known:
                    self.fail(
                        ("templates", template_id, "subject_variants", variant),
                        f"no experiment has a variant {variant!r}",
                    )

    def experiment(self, path: Path, value: object) -> None:
        if not self.obj(path, value, {"variants"}, {"variants"}):
            return
        assert isinstance(value, dict)
        variants = value.get("variants")
        if not isinstance(variants, dict) or not variants:
            if "variants" in value:
                self.fail((*path, "variants"), "must be an object of variant → {weight}")
            return
        self.at_most((*path, "variants"), variants, MAX_VARIANTS, "an experiment", "variants")
        self.experiments[str(path[-1])] = set(variants)
        for name, variant in variants.items():
            variant_path = (*path, "variants", name)
            if not 1 <= len(name) <= MAX_ID_LENGTH:
                self.fail(variant_path, f"a variant name must be 1 to {MAX_ID_LENGTH} characters")
            if not self.obj(variant_path, variant, {"weight"}, {"weight"}):
                continue
            assert isinstance(variant, dict)
            weight = variant.get("weight")
            if "weight" in variant and (
                isinstance(weight, bool) or not isinstance(weight, int) or weight <= 0
            ):
                self.fail((*variant_path, "weight"), "must be a whole number above 0")

    def sequence(self, path: Path, value: object) -> None:
        if not self.obj(path, value, {"steps", "exit_on"}, {"steps"}):
            return
        assert isinstance(value, dict)
        if "exit_on" in value:
            self.event_types((*path, "exit_on"), value["exit_on"])
        steps = value.get("steps")
        if "steps" not in value:
            return
        if not isinstance(steps, list) or not steps:
            self.fail((*path, "steps"), "must be a list of at least one step")
            return
        self.at_most((*path, "steps"), steps, MAX_SEQUENCE_STEPS, "a sequence", "steps")
        for index, step in enumerate(steps):
            step_path = (*path, "steps", index)
            if not self.obj(step_path, step, {"wait", "template"}, {"wait", "template"}):
                continue
            assert isinstance(step, dict)
            if "wait" in step:
                self.duration((*step_path, "wait"), step["wait"])
            if "template" in step:
                self.template_ref((*step_path, "template"), step["template"])

    def check_notification_loops(
        self, timers: list[tuple[Path, object]], rules: list[tuple[Path, object]]
    ) -> None:
        """A timer that `notification.sent` starts (or restarts), whose rules notify, would
        send a notification, be started by its delivery, fire, notify again: forever."""
        started_by_sends: dict[str, Path] = {}
        for path, timer in timers:
            if not isinstance(timer, dict) or not isinstance(timer.get("id"), str):
                continue
            for key in ("start_on", "restart_on"):
                names = timer.get(key)
                if isinstance(names, list) and "notification.sent" in names:
                    started_by_sends[timer["id"]] = (*path, key, names.index("notification.sent"))
        for path, rule in rules:
            if not isinstance(rule, dict):
                continue
            when, actions = rule.get("when"), rule.get("actions")
            if not isinstance(when, list) or not isinstance(actions, list):
                continue
            notifies = [
                index
                for index, action in enumerate(actions)
                if isinstance(action, dict) and action.get("name") == "notify"
            ]
            for trigger in when:
                timer_id = str(trigger).removeprefix(TIMER_TRIGGER_PREFIX)
                if str(trigger).startswith(TIMER_TRIGGER_PREFIX) and timer_id in started_by_sends:
                    for index in notifies:
                        self.fail(
                            (*path, "actions", index),
                            f"timer {timer_id!r} starts when a notification is sent: a rule "
                            f"for it that notifies would notify again and again",
                        )

    def timer(self, path: Path, value: object) -> None:
        allowed = {"id", "start_on", "cancel_on", "restart_on", "after", "calendar"}
        if not self.obj(path, value, allowed, {"id", "start_on", "after"}):
            return
        assert isinstance(value, dict)
        if "id" in value and self.text((*path, "id"), value["id"], max_length=MAX_ID_LENGTH):
            self.timers.add(value["id"])
        for key in ("start_on", "cancel_on", "restart_on"):
            if key in value:
                self.event_types((*path, key), value[key], at_least_one=key == "start_on")
        for key in ("start_on", "restart_on"):
            names = value.get(key)
            if isinstance(names, list) and "lead.timer_fired" in names:
                index = names.index("lead.timer_fired")
                self.fail(
                    (*path, key, index),
                    "lead.timer_fired is every timer's firing, this one's too: the timer "
                    "would start itself again forever. Start it on what starts the first "
                    "timer (with a longer `after`), or on a decision of `timer.<id>`'s rules "
                    "(e.g. lead.tagged)",
                )
        if "after" in value:
            self.duration((*path, "after"), value["after"])
        if value.get("calendar") not in (None, "business"):
            self.fail(
                (*path, "calendar"),
                'must be "business" (working time of the team\'s calendar) or null (wall clock)',
            )

    def rule(self, path: Path, value: object) -> None:
        allowed = {"id", "description", "when", "priority", "stop", "conditions", "actions"}
        if not self.obj(path, value, allowed, {"id", "when"}):
            return
        assert isinstance(value, dict)
        if "id" in value:
            self.text((*path, "id"), value["id"], max_length=MAX_ID_LENGTH)
        if value.get("description") is not None:
            self.text((*path, "description"), value["description"])
        if "when" in value:
            self.triggers((*path, "when"), value["when"])
        priority = value.get("priority", 0)
        if isinstance(priority, bool) or not isinstance(priority, int):
            self.fail((*path, "priority"), "must be a whole number (higher runs first)")
        if not isinstance(value.get("stop", False), bool):
            self.fail((*path, "stop"), "must be true or false")
        if "conditions" in value:
            leaves_before = self.leaves
            self.condition((*path, "conditions"), value["conditions"], depth=1)
            if self.leaves - leaves_before > MAX_CONDITIONS_PER_RULE:
                self.fail(
                    (*path, "conditions"),
                    f"a rule may have at most {MAX_CONDITIONS_PER_RULE} conditions "
                    f"(name, operator, value), however grouped",
                )
        actions = value.get("actions", [])
        if not isinstance(actions, list):
            self.fail((*path, "actions"), "must be a list of actions")
            return
        self.at_most((*path, "actions"), actions, MAX_ACTIONS_PER_RULE, "a rule", "actions")
        for index, action in enumerate(actions):
            self.action((*path, "actions", index), action)

    def triggers(self, path: Path, value: object) -> None:
        if not isinstance(value, list) or not value:
            self.fail(path, "must be a list of at least one trigger (event type or timer.<id>)")
            return
        for index, trigger in enumerate(value):
            if not isinstance(trigger, str):
                self.fail((*path, index), "must be a trigger string")
            elif trigger.startswith(TIMER_TRIGGER_PREFIX):
                timer_id = trigger.removeprefix(TIMER_TRIGGER_PREFIX)
                if timer_id not in self.timers:
                    self.fail((*path, index), f"no timer {timer_id!r} is declared in timers")
            elif trigger in NOT_RULE_TRIGGERS:
                self.fail((*path, index), NOT_RULE_TRIGGERS[trigger])
            elif trigger not in LEAD_EVENT_TYPES:
                self.fail((*path, index), f"unknown trigger {trigger!r}")

    # -- conditions ---------------------------------------------------------------------

    def condition(self, path: Path, node: object, depth: int) -> None:
        if depth > MAX_CONDITION_DEPTH:
            self.fail(path, f"conditions nest deeper than {MAX_CONDITION_DEPTH} levels")
            return
        if not isinstance(node, dict):
            self.fail(path, 'must be {"all": []}, {"any": []} or {"name", "operator", "value"}')
            return
        if "all" in node or "any" in node:
            if len(node) != 1:
                self.fail(path, '"all" or "any" must be the only key of its object')
                return
            group, children = next(iter(node.items()))
            if not isinstance(children, list):
                self.fail((*path, group), "must be a list of conditions")
                return
            for index, child in enumerate(children):
                self.condition((*path, group, index), child, depth + 1)
            return
        self.leaf(path, node)

    def leaf(self, path: Path, node: dict[str, object]) -> None:
        self.leaves += 1
        self.obj(path, node, {"name", "operator", "value"}, {"name", "operator"})
        name, operator = node.get("name"), node.get("operator")
        variable = None
        if "name" in node and self.text((*path, "name"), name):
            assert isinstance(name, str)
            variable = lookup_variable(name)
            if variable is None:
                families = ", ".join(f"{prefix}<key>" for prefix in VARIABLE_FAMILIES)
                self.fail((*path, "name"), f"unknown variable {name!r} (or {families})")
            elif name.startswith(VARIANT_PREFIX):
                experiment = name.removeprefix(VARIANT_PREFIX)
                if experiment not in self.experiments:
                    self.fail((*path, "name"), f"no experiment {experiment!r} is declared")
        if "operator" not in node or not self.text((*path, "operator"), operator):
            return
        assert isinstance(operator, str)
        if variable is None:
            if not any(operator in ops for ops in OPERATORS.values()):
                self.fail((*path, "operator"), f"unknown operator {operator!r}")
            return
        allowed = OPERATORS[variable.type]
        if operator not in allowed:
            self.fail(
                (*path, "operator"),
                f"{operator!r} is not an operator of {variable.type} variable {variable.name!r}; "
                f"use one of {', '.join(allowed)}",
            )
            return
        input_type = allowed[operator]
        if input_type == "none":
            if isinstance(node.get("value"), list | dict):
                self.fail((*path, "value"), f"{operator} takes no value; leave it out")
            return
        if "value" not in node:
            self.fail((*path, "value"), f"required by {operator}")
            return
        value = node["value"]
        value_path = (*path, "value")
        if input_type == "numeric":
            if not _is_number(value):
                self.fail(value_path, f"{operator} compares with a number")
        elif not isinstance(value, str):
            self.fail(value_path, f"{operator} compares with a string")
        elif operator == "matches_regex":
            self.regex(value_path, value)
        elif len(value) > MAX_CONDITION_TEXT_LENGTH:
            self.fail(value_path, f"may have at most {MAX_CONDITION_TEXT_LENGTH} characters")
        elif operator == "equal_to" and variable.name.startswith(VARIANT_PREFIX):
            experiment = variable.name.removeprefix(VARIANT_PREFIX)
            variants = self.experiments.get(experiment)
            if variants and value not in variants:
                self.fail(value_path, f"not a variant of experiment {experiment!r}")

    def regex(self, path: Path, pattern: str) -> None:
        if len(pattern) > MAX_REGEX_LENGTH:
            self.fail(path, f"a regular expression may have at most {MAX_REGEX_LENGTH} characters")
            return
        self.regexes += 1
        if self.regexes > MAX_REGEX_CONDITIONS:
            if self.regexes == MAX_REGEX_CONDITIONS + 1:  # once, at the first one too many
                self.fail(
                    path,
                    f"a ruleset may have at most {MAX_REGEX_CONDITIONS} matches_regex conditions",
                )
            return
        try:
            compile_regex(pattern)
        except InvalidRegex as refused:
            self.fail(path, str(refused))

    # -- actions ------------------------------------------------------------------------

    def action(self, path: Path, node: object) -> None:
        if not self.obj(path, node, {"name", "params"}, {"name"}):
            return
        assert isinstance(node, dict)
        name, params = node.get("name"), node.get("params", {})
        if not isinstance(params, dict):
            self.fail((*path, "params"), "must be an object")
            return
        if "name" not in node or not self.text((*path, "name"), name):
            return
        assert isinstance(name, str)
        model = ACTIONS.get(name)
        if model is None:
            self.fail((*path, "name"), f"unknown action {name!r}; one of {', '.join(ACTIONS)}")
            return
        try:
            model.model_validate(params)
        except ValidationError as exc:
            for error in exc.errors():
                self.fail((*path, "params", *error["loc"]), _pydantic_message(error))
        self.references((*path, "params"), name, params)

    def references(self, path: Path, action: str, params: dict[str, object]) -> None:
        """Check what the params name, wherever they are strings: a param malformed in
        another way has already been reported."""
        known: dict[str, tuple[Callable[[str], bool], str]] = {
            "sequence": (self.sequences.__contains__, "in sequences"),
            "experiment": (self.experiments.__contains__, "in experiments"),
            "template": (self.templates.__contains__, "in templates or the built-in ones"),
        }
        directory = self.directory
        if directory is not None:
            known |= {
                "rep": (lambda rep: directory.rep(rep) is not None, "in the directory"),
                "to": (
                    lambda to: not to.startswith("rep:") or directory.rep(to[4:]) is not None,
                    "in the directory",
                ),
                "team": (lambda team: directory.team(team) is not None, "in the directory"),
                "channel": (
                    lambda channel: channel == "email" or directory.channel(channel) is not None,
                    "in the directory",
                ),
            }
        fields = ACTIONS[action].model_fields
        for key, (exists, where) in known.items():
            value = params.get(key)
            if key in fields and isinstance(value, str) and not exists(value):
                noun = "rep" if key == "to" else key
                named = value.removeprefix("rep:") if key == "to" else value
                self.fail((*path, key), f"no {noun} {named!r} {where}")

    def template_ref(self, path: Path, template: object) -> None:
        if not isinstance(template, str):
            self.fail(path, "must be a template id")
        elif template not in self.templates:
            self.fail(path, f"no template {template!r} in templates or the built-in ones")
