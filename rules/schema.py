"""The rule-builder schema served at `GET /v1/rulesets/schema`: variables with their types
and operators, operators per type (names, labels and input kinds exactly as business-rules
exports them), actions with the JSON schema of their params, triggers, and the JSON schema
of the whole ruleset document, and the words a person reads for each (`labels`,
from `rules.vocabulary`)."""

from __future__ import annotations

from typing import Any

from business_rules.operators import BooleanType, NumericType, SelectType, StringType

from domain.locales import API_DEFAULT_LOCALE, Locale
from rules.builtin_templates import BUILTIN_TEMPLATES
from rules.catalog import (
    ACTIONS,
    LEAD_EVENT_TYPES,
    OPERATORS,
    TIMER_TRIGGER_PREFIX,
    VARIABLE_FAMILIES,
    VARIABLES,
    Variable,
    VariableType,
)
from rules.model import Ruleset
from rules.vocabulary import labels

_BUSINESS_RULES_TYPES: dict[VariableType, Any] = {
    "string": StringType,
    "numeric": NumericType,
    "boolean": BooleanType,
    "select": SelectType,
}


def _variable(variable: Variable) -> dict[str, Any]:
    return {
        "name": variable.name,
        "type": variable.type,
        "description": variable.description,
        "operators": list(OPERATORS[variable.type]),
    }


def ruleset_schema(locale: Locale = API_DEFAULT_LOCALE) -> dict[str, Any]:
    """Everything a rule-builder UI needs, as JSON-serialisable data, its `labels` in
    `locale` (the rest is names and schemas, the same in every language).

    Variable families (`variant.<experiment>`, `attributes.<key>`) are listed with a
    `pattern` their names match. Operators come from business-rules' own export, in the
    order of `rules.catalog.OPERATORS`.
    """
    families = [
        {
            **_variable(family),
            "name": f"{prefix}<{'experiment' if prefix.startswith('variant') else 'key'}>",
            "pattern": "^" + prefix.replace(".", r"\.") + ".+$",
        }
        for prefix, family in VARIABLE_FAMILIES.items()
    ]
    operators: dict[str, list[dict[str, str]]] = {}
    for type_name, allowed in OPERATORS.items():
        exported = {op["name"]: op for op in _BUSINESS_RULES_TYPES[type_name].get_all_operators()}
        operators[type_name] = [
            {"name": name, "label": exported[name]["label"], "input_type": input_type}
            for name, input_type in allowed.items()
        ]
    return {
        "variables": [_variable(v) for v in VARIABLES.values()] + families,
        "operators": operators,
        "actions": [
            {
                "name": name,
                "description": (model.__doc__ or "").strip(),
                "params": model.model_json_schema(),
            }
            for name, model in ACTIONS.items()
        ],
        "triggers": {
            "events": sorted(LEAD_EVENT_TYPES),
            "timers": {
                "pattern": "^" + TIMER_TRIGGER_PREFIX.replace(".", r"\.") + ".+$",
                "description": "timer.<id> of a timer declared in the ruleset's timers",
            },
        },
        "builtin_templates": sorted(BUILTIN_TEMPLATES),
        "ruleset": Ruleset.model_json_schema(),
        "labels": labels(locale),
    }
