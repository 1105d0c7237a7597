"""The words a person reads for a ruleset's parts and for what happens to a lead, in each
language leadflow speaks: triggers, variables, operators, actions and their params,
values, durations ("72 hours", "72 小时"), the sentences `rules.describe` and
`replay.summary` write, and the names of event types, follow-up kinds, stages and pool
reasons (`GET /v1/words/events`).

The words themselves live in one table per language, `rules.vocabulary_en` and
`rules.vocabulary_zh_cn` (the same names and keys in each; a test holds them to it); this
module reads them as a `Vocabulary` and words things with it. Served as `labels` by
`GET /v1/rulesets/schema` (`labels()`). Pure: no I/O.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from business_rules.operators import BooleanType, NumericType, SelectType, StringType

from domain.events import ADMIN_TYPES, DECIDED_TYPES, EXTERNAL_DATA
from domain.locales import API_DEFAULT_LOCALE, Locale
from domain.personal import ERASED_TYPE
from rules import vocabulary_en, vocabulary_zh_cn
from rules.catalog import (
    ACTIONS,
    LEAD_EVENT_TYPES,
    TIMER_TRIGGER_PREFIX,
    VARIABLES,
    VariableType,
)
from rules.model import duration_parts

# Every event type the log may hold, each of which has a name in every language.
WORDED_EVENT_TYPES = frozenset(EXTERNAL_DATA) | DECIDED_TYPES | ADMIN_TYPES | {ERASED_TYPE}

_BUSINESS_RULES_TYPES: dict[VariableType, Any] = {
    "string": StringType,
    "numeric": NumericType,
    "boolean": BooleanType,
    "select": SelectType,
}


@dataclass(frozen=True)
class Vocabulary:
    """One language's words (the tables of `rules.vocabulary_<language>`)."""

    locale: Locale
    events: Mapping[str, str]
    timer_event: str
    event_names: Mapping[str, str]
    follow_up_kinds: Mapping[str, str]
    stages: Mapping[str, str]
    pool_reasons: Mapping[str, str]
    variables: Mapping[str, str]
    variable_families: Mapping[str, str]
    boolean_facts: Mapping[str, tuple[str, str]]
    operators: Mapping[VariableType, Mapping[str, str]]
    actions: Mapping[str, str]
    params: Mapping[str, Mapping[str, str]]
    values: Mapping[str, Mapping[str, str]]
    duration_units: Mapping[str, tuple[str, str]]
    phrases: Mapping[str, str]
    list_separator: str
    summary_phrases: Mapping[str, str]
    summary_outcomes: Mapping[str, tuple[str, str, str]]

    @classmethod
    def of(cls, locale: Locale, table: ModuleType) -> Vocabulary:
        return cls(
            locale=locale,
            events=table.EVENTS,
            timer_event=table.TIMER_EVENT,
            event_names=table.EVENT_NAMES,
            follow_up_kinds=table.FOLLOW_UP_KINDS,
            stages=table.STAGES,
            pool_reasons=table.POOL_REASONS,
            variables=table.VARIABLE_WORDS,
            variable_families=table.VARIABLE_FAMILY_WORDS,
            boolean_facts=table.BOOLEAN_FACTS,
            operators=table.OPERATOR_WORDS,
            actions=table.ACTION_WORDS,
            params=table.PARAM_WORDS,
            values=table.VALUE_WORDS,
            duration_units=table.DURATION_UNITS,
            phrases=table.PHRASES,
            list_separator=table.LIST_SEPARATOR,
            summary_phrases=table.SUMMARY_PHRASES,
            summary_outcomes=table.SUMMARY_OUTCOMES,
        )

    def say(self, key: str, **values: object) -> str:
        """The phrase `key` of `rules.describe` with its placeholders filled."""
        return self.phrases[key].format(**values)

    def listing(self, items: list[str], last_pair: str) -> str:
        """ "a, b and c" / "甲、乙和丙": `last_pair` is the phrase ("and", "or", or a
        summary's "list") joining the last two."""
        if len(items) <= 1:
            return "".join(items)
        phrase = self.phrases.get(last_pair) or self.summary_phrases[last_pair]
        return phrase.format(rest=self.list_separator.join(items[:-1]), last=items[-1])


VOCABULARIES: Mapping[Locale, Vocabulary] = {
    "en": Vocabulary.of("en", vocabulary_en),
    "zh-CN": Vocabulary.of("zh-CN", vocabulary_zh_cn),
}


def vocabulary(locale: Locale = API_DEFAULT_LOCALE) -> Vocabulary:
    """The words of `locale`."""
    return VOCABULARIES[locale]


@functools.lru_cache(maxsize=1024)  # a ruleset has a handful, read once per part
def duration_in_words(text: str, locale: Locale = API_DEFAULT_LOCALE) -> str:
    """An ISO 8601 duration in the units its author wrote: `PT72H` → "72 hours" ("72
    小时"), `P7D` → "7 days", `P1DT12H` → "1 day 12 hours", `PT1.5S` → "1.5 seconds".
    Units written as 0 are left out unless all are 0 (`PT0S` → "0 seconds"). A text that
    is not a valid duration is returned as it is (a sentence about a broken ruleset still
    reads)."""
    try:
        parts = duration_parts(text)
    except ValueError:
        return text
    units = VOCABULARIES[locale].duration_units
    # "01" reads "1"; a fraction of a second keeps the digits its author wrote.
    parts = [(unit, number if "." in number else str(int(number))) for unit, number in parts]
    shown = [(unit, number) for unit, number in parts if float(number) != 0] or parts[-1:]
    return " ".join(
        f"{number} {units[unit][0 if float(number) == 1 else 1]}" for unit, number in shown
    )


def event_in_words(event_type: str, locale: Locale = API_DEFAULT_LOCALE) -> str:
    """An event type or trigger as the clause of "when …" ("a lead arrives"); a timer
    trigger `timer.<id>` reads "the <id> timer runs out"; an unknown type reads as itself."""
    words = VOCABULARIES[locale]
    if event_type.startswith(TIMER_TRIGGER_PREFIX):
        return words.timer_event.format(
            id=event_type.removeprefix(TIMER_TRIGGER_PREFIX).replace("_", " ")
        )
    return words.events.get(event_type, event_type)


def variable_in_words(name: str, locale: Locale = API_DEFAULT_LOCALE) -> str:
    """A condition variable as a noun ("hours since capture", "attribute budget")."""
    words = VOCABULARIES[locale]
    if name in words.variables:
        return words.variables[name]
    for prefix, family in words.variable_families.items():
        if name.startswith(prefix) and len(name) > len(prefix):
            return family.format(key=name.removeprefix(prefix))
    return name


def operator_in_words(
    type_name: VariableType, operator: str, locale: Locale = API_DEFAULT_LOCALE
) -> str:
    """An operator of a variable type as it reads in a sentence; business-rules' own label
    (lower-cased) for one the vocabulary has no words for; the name for an unknown one."""
    words = VOCABULARIES[locale].operators.get(type_name, {})
    if operator in words:
        return words[operator]
    for exported in _BUSINESS_RULES_TYPES[type_name].get_all_operators():
        if exported["name"] == operator:
            return str(exported["label"]).lower()
    return operator


def labels(locale: Locale = API_DEFAULT_LOCALE) -> dict[str, Any]:
    """Every label a rule-builder UI shows, as JSON: `events` (each lead event type, and
    `timer.<id>` with `{id}` to fill), `variables` (and the `variant.`/`attributes.`
    families with `{key}`), `operators` per variable type, `actions`, `params` per action,
    `values` per param kind (recipients: `rep:` with `{name}`), and `durations` units."""
    words = VOCABULARIES[locale]
    return {
        "events": {
            **{name: words.events.get(name, name) for name in sorted(LEAD_EVENT_TYPES)},
            TIMER_TRIGGER_PREFIX + "<id>": words.timer_event,
        },
        "variables": {
            **{name: variable_in_words(name, locale) for name in VARIABLES},
            **{prefix + "<key>": family for prefix, family in words.variable_families.items()},
        },
        "operators": {
            type_name: {name: operator_in_words(type_name, name, locale) for name in operators}
            for type_name, operators in words.operators.items()
        },
        "actions": {name: words.actions.get(name, name) for name in ACTIONS},
        "params": {
            name: {
                param: words.params.get(name, {}).get(param, param) for param in model.model_fields
            }
            for name, model in ACTIONS.items()
        },
        "values": {kind: dict(values) for kind, values in words.values.items()},
        "durations": {unit: list(forms) for unit, forms in words.duration_units.items()},
    }


def event_words(locale: Locale = API_DEFAULT_LOCALE) -> dict[str, Any]:
    """The answer of `GET /v1/words/events`: every event type's name, and the words for
    follow-up kinds, stages and pool reasons, in `locale`."""
    words = VOCABULARIES[locale]
    return {
        "locale": locale,
        "events": {name: words.event_names[name] for name in sorted(words.event_names)},
        "kinds": dict(words.follow_up_kinds),
        "stages": dict(words.stages),
        "pool_reasons": dict(words.pool_reasons),
    }
