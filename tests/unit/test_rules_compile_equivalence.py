"""The compiled evaluator against business-rules itself, the reference for operator
semantics: random condition trees over leadflow's variables, random facts."""

from decimal import Decimal
from typing import Any

from business_rules.actions import BaseActions, rule_action
from business_rules.engine import check_conditions_recursively, run_all
from business_rules.fields import FIELD_TEXT
from business_rules.operators import BooleanType, NumericType, SelectType, StringType
from business_rules.variables import BaseVariables, rule_variable
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from rules.catalog import OPERATORS, VariableType
from rules.compile import compile_condition, compile_ruleset
from rules.evaluate import evaluate
from rules.model import Condition
from rules.validation import parse_ruleset, validate_ruleset

VARIABLES: dict[str, VariableType] = {
    "source": "string",
    "region": "string",
    "email_domain": "string",
    "attributes.budget": "string",
    "score": "numeric",
    "touch_count": "numeric",
    "hours_since_capture": "numeric",
    "has_phone": "boolean",
    "in_pool": "boolean",
    "tags": "select",
}
BUSINESS_RULES_TYPE = {
    "string": StringType,
    "numeric": NumericType,
    "boolean": BooleanType,
    "select": SelectType,
}


class Facts(BaseVariables):
    """business-rules variables answering from a facts dict."""

    def __init__(self, facts: dict[str, Any]) -> None:
        self.facts = facts


def _getter(name: str) -> Any:
    def read(self: Facts) -> Any:
        return self.facts[name]

    return read


for _name, _type in VARIABLES.items():
    # Dotted names are fine: the engine looks variables up with getattr.
    setattr(Facts, _name, rule_variable(BUSINESS_RULES_TYPE[_type])(_getter(_name)))


class Fired(BaseActions):
    def __init__(self) -> None:
        self.rule_ids: list[str] = []

    @rule_action(params={"rule_id": FIELD_TEXT})
    def fire(self, rule_id: str) -> None:
        self.rule_ids.append(rule_id)


# Small alphabets and shared anchors make equal, prefixed, case-folded and within-epsilon
# values common, so the edges of every operator are hit.
text = st.text(alphabet="aAbB.@-", max_size=4)
words = st.sampled_from(["", "a", "A", "aB", "Ab", ".", "b@"]) | text
anchors = st.sampled_from([0, 1, -1, 2, 24, 0.5, 0.1, 0.3, 0.1 + 0.2, 1e300, 10**30, 10**30 + 1])
numbers = anchors | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
EPSILON = Decimal("0.000001")
offsets = st.sampled_from(
    [EPSILON, -EPSILON, EPSILON / 2, -EPSILON / 2, 2 * EPSILON, Decimal("1e-30")]
)
near_anchors = st.builds(lambda a, d: Decimal(repr(a)) + d, anchors, offsets)
fact_numbers = numbers | near_anchors | near_anchors.map(float) | st.booleans()
# Patterns on which Python's `re` (business-rules) and RE2 (leadflow) agree, over texts
# without newlines or non-ASCII letters: there the engines differ (RE2's `$` never matches
# before a final newline, its `\w`, `\d`, `\b` are ASCII), by choice (docs/decisions.md).
regexes = st.sampled_from(["", "a", "^a", "b$", "A|b", ".", "a+b?", "(?i)a", "^$", r"\.", "@"])


def leaf_for(name: str) -> st.SearchStrategy[dict[str, Any]]:
    type_ = VARIABLES[name]

    def with_value(operator: str) -> st.SearchStrategy[dict[str, Any]]:
        input_type = OPERATORS[type_][operator]
        values: st.SearchStrategy[Any]
        if input_type == "none":
            values = st.none()
        elif input_type == "numeric":
            values = numbers
        elif operator == "matches_regex":
            values = regexes
        else:
            values = words
        return values.map(lambda v: {"name": name, "operator": operator, "value": v})

    return st.sampled_from(sorted(OPERATORS[type_])).flatmap(with_value)


leaves = st.sampled_from(sorted(VARIABLES)).flatmap(leaf_for)
# Non-empty groups only: business-rules asserts on empty ones (see test_empty_groups).
trees = st.recursive(
    leaves,
    lambda children: st.lists(children, min_size=1, max_size=4).flatmap(
        lambda items: st.sampled_from([{"all": items}, {"any": items}])
    ),
    max_leaves=12,
)


def fact_for(type_: VariableType) -> st.SearchStrategy[Any]:
    if type_ == "string":
        return st.none() | text
    if type_ == "numeric":
        return fact_numbers
    if type_ == "boolean":
        return st.booleans()
    return st.lists(text, max_size=4).map(tuple) | st.lists(text, max_size=4)


facts_dicts = st.fixed_dictionaries({name: fact_for(t) for name, t in VARIABLES.items()})
CONDITION = TypeAdapter(Condition)


def as_ruleset(rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": "generated", "rules": rules}


@settings(max_examples=300, deadline=None)
@given(trees, facts_dicts)
def test_a_compiled_condition_agrees_with_business_rules(tree: Any, facts: Any) -> None:
    assert (
        validate_ruleset(
            as_ruleset([{"id": "r", "when": ["lead.captured"], "conditions": tree}]), None
        )
        == []
    )
    expected = bool(check_conditions_recursively(tree, Facts(facts)))
    assert compile_condition(CONDITION.validate_python(tree))(facts) is expected


def related_fact(type_: VariableType, value: Any) -> st.SearchStrategy[Any]:
    """Facts at the edges of a leaf's value: within or at epsilon, other case, affixes."""
    if type_ == "numeric" and value is not None:
        exact = Decimal(value)
        near = st.builds(lambda d: exact + d, offsets | st.just(Decimal(0)))
        return near | near.map(float) | st.just(value)
    if type_ == "string" and isinstance(value, str):
        return st.sampled_from(
            [None, "", value, value.upper(), value.lower(), f"x{value}", f"{value}x"]
        )
    if type_ == "select" and isinstance(value, str):
        return st.lists(st.sampled_from([value, value.upper(), value.lower(), "other"]), max_size=3)
    return fact_for(type_)


@settings(max_examples=1000, deadline=None)
@given(leaves, facts_dicts, st.data())
def test_each_operator_agrees_with_business_rules_at_its_edges(
    leaf: dict[str, Any], facts: dict[str, Any], data: st.DataObject
) -> None:
    name = leaf["name"]
    facts[name] = data.draw(related_fact(VARIABLES[name], leaf["value"]))
    expected = bool(check_conditions_recursively(leaf, Facts(facts)))
    assert compile_condition(CONDITION.validate_python(leaf))(facts) is expected


@settings(max_examples=100, deadline=None)
@given(st.lists(trees, min_size=1, max_size=8), facts_dicts, st.booleans())
def test_a_compiled_ruleset_fires_what_run_all_fires(
    tree_list: Any, facts: Any, stop: bool
) -> None:
    ids = [f"rule-{i}" for i in range(len(tree_list))]
    documents = [
        {"id": rule_id, "when": ["lead.captured"], "stop": stop, "conditions": tree}
        for rule_id, tree in zip(ids, tree_list, strict=True)
    ]
    reference = [
        {"conditions": tree, "actions": [{"name": "fire", "params": {"rule_id": rule_id}}]}
        for rule_id, tree in zip(ids, tree_list, strict=True)
    ]
    fired = Fired()
    run_all(reference, Facts(facts), fired, stop_on_first_trigger=stop)
    compiled = compile_ruleset(parse_ruleset(as_ruleset(documents), None))
    assert [f.rule_id for f in evaluate(compiled, "lead.captured", facts)] == fired.rule_ids


def test_empty_groups() -> None:
    # business-rules asserts on empty groups; leadflow reads `all: []` as "always" (SPEC §5).
    assert compile_condition(CONDITION.validate_python({"all": []}))({}) is True
    assert compile_condition(CONDITION.validate_python({"any": []}))({}) is False
    nested = {"any": [{"any": []}, {"all": [{"all": []}]}]}
    assert compile_condition(CONDITION.validate_python(nested))({}) is True


def test_missing_facts_read_as_the_types_zero_value() -> None:
    def holds(condition: dict[str, Any]) -> bool:
        return compile_condition(CONDITION.validate_python(condition))({})

    assert holds({"name": "source", "operator": "equal_to", "value": ""})
    assert not holds({"name": "source", "operator": "non_empty"})
    assert holds({"name": "score", "operator": "equal_to", "value": 0})
    assert holds({"name": "has_phone", "operator": "is_false"})
    assert holds({"name": "tags", "operator": "does_not_contain", "value": "vip"})


def test_long_groups_do_not_nest_deeply() -> None:
    many = [{"name": "score", "operator": "less_than", "value": n} for n in range(1, 5001)]
    assert compile_condition(CONDITION.validate_python({"all": many}))({"score": 0}) is True
    assert compile_condition(CONDITION.validate_python({"any": many}))({"score": 5000}) is False
