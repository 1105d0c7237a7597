"""Compile a validated ruleset once into plain Python predicates.

Each condition tree becomes nested closures over a facts mapping (variable name → value):
no parsing, lookups of operators or Decimal conversion of rule values at evaluation time.
The closures reproduce business-rules 1.1.1 operator semantics exactly (the package is
the reference, checked by a property test):

- strings: a missing or falsy fact is "" (StringType casts `value or ""`); `matches_regex`
  is an unanchored search like `re.search`, but in RE2 syntax run by RE2 (see
  `compile_regex`); `equal_to_case_insensitive` compares `str.lower()`.
- numbers: compared as `Decimal(fact) - Decimal(value)` against an epsilon of 0.000001,
  in the current decimal context, as NumericType does; int against int takes an exact
  shortcut with the same result. A missing fact is 0 (business-rules would raise).
- booleans: `is_true` holds only for True; a missing fact is False.
- select: `contains` compares strings case-insensitively; a missing fact is empty.
- `{"all": []}` is always true and `{"any": []}` never (business-rules asserts on empty
  lists; the SPEC uses `{"all": []}` for "always").
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import re2
from pydantic import JsonValue

from rules.catalog import ACTIONS, ActionParams, lookup_variable
from rules.model import AllOf, AnyOf, Condition, Leaf, Ruleset

Facts = Mapping[str, Any]
Predicate = Callable[[Facts], bool]

EPSILON = Decimal("0.000001")

# RE2 memory per pattern. A program gets about two thirds of it and the matching automaton
# the rest, so a pattern whose program would not fit (`\pL{1000}`, hundreds of thousands of
# instructions) is refused when the ruleset is validated rather than held in every worker.
# 1 MiB keeps counted classes such as `[a-z]{1,1000}` or `\pL{1,50}`.
REGEX_MAX_MEMORY = 1 << 20


class InvalidRegex(ValueError):
    """A `matches_regex` pattern that RE2 refuses; the message names what is wrong."""


@dataclass(frozen=True)
class CompiledRule:
    """A rule ready to run: its predicate and its actions' parsed params."""

    rule_id: str
    priority: int
    stop: bool
    matches: Predicate
    actions: tuple[ActionParams, ...]


@dataclass(frozen=True)
class CompiledRuleset:
    """A ruleset's rules grouped by trigger, each group in evaluation order."""

    ruleset: Ruleset
    by_trigger: Mapping[str, tuple[CompiledRule, ...]]

    def rules_for(self, trigger: str) -> tuple[CompiledRule, ...]:
        """The rules to evaluate for `trigger`: higher priority first, ties in document order."""
        return self.by_trigger.get(trigger, ())


def compile_ruleset(ruleset: Ruleset) -> CompiledRuleset:
    """Compile every rule's conditions and actions once; the ruleset must come from
    `rules.validation.parse_ruleset` (raises ValueError on what validation rejects)."""
    groups: dict[str, list[CompiledRule]] = {}
    for rule in ruleset.rules:
        compiled = CompiledRule(
            rule_id=rule.id,
            priority=rule.priority,
            stop=rule.stop,
            matches=compile_condition(rule.conditions),
            actions=tuple(ACTIONS[a.name].model_validate(a.params) for a in rule.actions),
        )
        for trigger in dict.fromkeys(rule.when):
            groups.setdefault(trigger, []).append(compiled)
    return CompiledRuleset(
        ruleset=ruleset,
        # sorted() is stable: equal priorities keep document order.
        by_trigger={t: tuple(sorted(rs, key=lambda r: -r.priority)) for t, rs in groups.items()},
    )


def compile_condition(condition: Condition) -> Predicate:
    """A predicate over facts equivalent to business-rules' `check_conditions_recursively`."""
    if isinstance(condition, AllOf):
        return _all([compile_condition(c) for c in condition.all_])
    if isinstance(condition, AnyOf):
        return _any([compile_condition(c) for c in condition.any_])
    return _leaf(condition)


def _always(facts: Facts) -> bool:
    return True


def _never(facts: Facts) -> bool:
    return False


def _all(predicates: Sequence[Predicate]) -> Predicate:
    if not predicates:
        return _always
    if len(predicates) == 1:
        return predicates[0]
    # Halves, not a left fold: a long list nests log2(n) deep, far from the recursion limit.
    half = len(predicates) // 2
    first, second = _all(predicates[:half]), _all(predicates[half:])
    return lambda facts: first(facts) and second(facts)


def _any(predicates: Sequence[Predicate]) -> Predicate:
    if not predicates:
        return _never
    if len(predicates) == 1:
        return predicates[0]
    half = len(predicates) // 2
    first, second = _any(predicates[:half]), _any(predicates[half:])
    return lambda facts: first(facts) or second(facts)


def _leaf(leaf: Leaf) -> Predicate:
    variable = lookup_variable(leaf.name)
    if variable is None:
        raise ValueError(f"unknown variable {leaf.name!r}: validate with parse_ruleset first")
    match variable.type:
        case "string":
            return _string(leaf.name, leaf.operator, leaf.value)
        case "numeric":
            return _numeric(leaf.name, leaf.operator, leaf.value)
        case "boolean":
            return _boolean(leaf.name, leaf.operator)
        case "select":
            return _select(leaf.name, leaf.operator, leaf.value)


def _unsupported(name: str, op: str) -> ValueError:
    return ValueError(f"operator {op!r} is not allowed for {name!r}: validate first")


def _text(value: JsonValue) -> str:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{value!r} is not a string: validate with parse_ruleset first")
    return value or ""


def _string(name: str, op: str, value: JsonValue) -> Predicate:
    if op == "non_empty":
        return lambda facts: bool(facts.get(name))
    other = _text(value)
    match op:
        case "equal_to":
            return lambda facts: (facts.get(name) or "") == other
        case "equal_to_case_insensitive":
            lowered = other.lower()
            return lambda facts: (facts.get(name) or "").lower() == lowered
        case "starts_with":
            return lambda facts: (facts.get(name) or "").startswith(other)
        case "ends_with":
            return lambda facts: (facts.get(name) or "").endswith(other)
        case "contains":
            return lambda facts: other in (facts.get(name) or "")
        case "matches_regex":
            occurs_in = compile_regex(other)
            return lambda facts: occurs_in(facts.get(name) or "")
    raise _unsupported(name, op)


def _regex_options() -> re2.Options:
    options = re2.Options()
    options.max_mem = REGEX_MAX_MEMORY
    options.never_capture = True  # only whether it matches counts; groups cost time
    options.log_errors = False  # refusals are raised as InvalidRegex, not written to stderr
    return options


_REGEX_OPTIONS = _regex_options()

# What RE2 refuses that Python's `re` (or PCRE) accepts, by the start of the text RE2
# quotes; the binding reports a refusal only as "<what>: <quoted pattern text>".
_UNSUPPORTED_GROUPS = {
    "(?=": "lookahead (?=...)",
    "(?!": "negative lookahead (?!...)",
    "(?<=": "lookbehind (?<=...)",
    "(?<!": "negative lookbehind (?<!...)",
    "(?>": "atomic group (?>...)",
    "(?P": "named backreference (?P=name)",
    "(?(": "conditional group (?(...)",
    "(?#": "comment group (?#...)",
}


def compile_regex(pattern: str) -> Callable[[str], bool]:
    r"""Whether `pattern` occurs anywhere in a text (an unanchored search, as `re.search`),
    run by RE2 in time linear in the text (no backtracking) within `REGEX_MAX_MEMORY`.

    Raises InvalidRegex naming the construct when RE2 refuses the pattern: backreferences,
    lookaround, atomic groups, possessive quantifiers, conditionals, inline flags other
    than i, m, s and U, `\Z` (RE2 writes `\z`), repetition counts over 1000, or a pattern
    too large for the memory bound.
    """
    try:
        search = re2.compile(pattern, _REGEX_OPTIONS).search
    except UnicodeEncodeError:
        raise InvalidRegex("contains a lone surrogate, which is not valid Unicode") from None
    except re2.error as refused:
        raise InvalidRegex(_refusal(_text_of(refused))) from None

    def occurs_in(text: str) -> bool:
        # Encoded here, because a fact may hold a lone surrogate that strict UTF-8 cannot
        # encode: RE2 reads it as an invalid byte sequence rather than the search raising.
        return search(text.encode("utf-8", "surrogatepass")) is not None

    return occurs_in


def _text_of(refused: re2.error) -> str:
    raw = refused.args[0] if refused.args else ""
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def _refusal(message: str) -> str:
    what, _, quoted = message.partition(": ")
    if what == "invalid perl operator":
        for opening, construct in _UNSUPPORTED_GROUPS.items():
            if quoted.startswith(opening):
                return f"{construct} is not supported (RE2 syntax)"
        return f"inline flags other than i, m, s and U are not supported (RE2 syntax): {quoted}"
    if what == "bad repetition operator" and quoted.endswith("+"):
        return f"possessive quantifier {quoted} is not supported (RE2 syntax)"
    if what == "invalid escape sequence":
        if len(quoted) == 2 and quoted[1] in "123456789":
            return f"backreference {quoted} is not supported (RE2 syntax)"
        if quoted == "\\Z":
            return "\\Z is not RE2 syntax: write \\z for the end of the text"
        if quoted in ("\\g", "\\k"):
            return f"named backreference {quoted}<...> is not supported (RE2 syntax)"
    if what == "invalid repetition size":
        return (
            f"repetition {quoted} is too large: RE2 allows counts up to 1000, "
            "nested counts multiplied included"
        )
    if what.startswith("pattern too large"):
        return (
            f"the pattern needs more than {REGEX_MAX_MEMORY // 1024} KiB to run; "
            "use smaller repetition counts"
        )
    return f"not a valid regular expression (RE2 syntax): {message}"


# operator → (comparison of two ints, test of Decimal(fact) - Decimal(value)). The Decimal
# tests are NumericType's, folded: `gt or eq` is `d >= -EPSILON`, and `other - value` is
# `-d` because decimal rounding (ROUND_HALF_EVEN) is symmetric.
_NUMERIC: dict[str, tuple[Callable[[int, int], bool], Callable[[Decimal], bool]]] = {
    "equal_to": (operator.eq, lambda d: abs(d) <= EPSILON),
    "greater_than": (operator.gt, lambda d: d > EPSILON),
    "greater_than_or_equal_to": (operator.ge, lambda d: d >= -EPSILON),
    "less_than": (operator.lt, lambda d: d < -EPSILON),
    "less_than_or_equal_to": (operator.le, lambda d: d <= EPSILON),
}


def _numeric(name: str, op: str, value: JsonValue) -> Predicate:
    if op not in _NUMERIC or isinstance(value, bool) or not isinstance(value, int | float):
        raise _unsupported(name, op)
    compare_ints, test_difference = _NUMERIC[op]
    operand = Decimal(value)  # exact for floats, like business-rules' float_to_decimal
    if type(value) is int:
        whole = value

        # An int difference is exact or, past 28 digits, rounded to a number of the same
        # sign that is still ≥ 1 in size: the int comparison gives the Decimal answer.
        def compare(facts: Facts) -> bool:
            fact = facts.get(name) or 0
            if type(fact) is int:
                return compare_ints(fact, whole)
            return test_difference(Decimal(fact) - operand)

        return compare
    return lambda facts: test_difference(Decimal(facts.get(name) or 0) - operand)


def _boolean(name: str, op: str) -> Predicate:
    match op:
        case "is_true":
            return lambda facts: facts.get(name) is True
        case "is_false":
            return lambda facts: facts.get(name) is not True
    raise _unsupported(name, op)


def _select(name: str, op: str, value: JsonValue) -> Predicate:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a string: validate with parse_ruleset first")
    other, lowered = value, value.lower()

    def contains(facts: Facts) -> bool:
        for item in facts.get(name) or ():
            if item.lower() == lowered if isinstance(item, str) else item == other:
                return True
        return False

    match op:
        case "contains":
            return contains
        case "does_not_contain":
            return lambda facts: not contains(facts)
    raise _unsupported(name, op)
