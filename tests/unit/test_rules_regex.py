"""`matches_regex` runs RE2: patterns that keep a backtracking engine busy for hours on a
sender's text finish at once, and what RE2 cannot run is refused when the ruleset is
validated, by the pattern's JSON Pointer."""

from typing import Any

import pytest

from rules.compile import compile_ruleset
from rules.evaluate import evaluate
from rules.validation import MAX_REGEX_CONDITIONS, parse_ruleset, validate_ruleset

VALUE = "/rules/2/conditions/all/0/value"


def regex_rule(pattern: str, rule_id: str = "r", name: str = "attributes.note") -> dict[str, Any]:
    leaf = {"name": name, "operator": "matches_regex", "value": pattern}
    return {"id": rule_id, "when": ["lead.captured"], "conditions": {"all": [leaf]}}


def third_rule_tests(pattern: str) -> dict[str, Any]:
    """A ruleset whose third rule tests `pattern`, so its value is at VALUE."""
    return {
        "name": "t",
        "rules": [
            {"id": "a", "when": ["lead.captured"]},
            {"id": "b", "when": ["lead.captured"]},
            regex_rule(pattern),
        ],
    }


def fires(pattern: str, note: str | None) -> bool:
    compiled = compile_ruleset(parse_ruleset({"name": "t", "rules": [regex_rule(pattern)]}, None))
    facts = {} if note is None else {"attributes.note": note}
    return [f.rule_id for f in evaluate(compiled, "lead.captured", facts)] == ["r"]


# Each of these takes a backtracking engine (Python's `re`) exponential time on the texts
# that do not match; with RE2 each search is linear. The timeout only keeps a regression
# from holding the run for hours: what is asserted is the answer.
@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("pattern", "note", "expected"),
    [
        (r"^(a+)+$", "a" * 10_000, True),
        (r"^(a+)+$", "a" * 9_999 + "b", False),
        (r"(a|aa)+$", "b" + "a" * 9_999, True),
        (r"(a|aa)+$", "a" * 9_999 + "b", False),
        (r"(.*a){20}", "ab" * 5_000, True),
        (r"(.*a){20}", "a" * 19 + "b" * 9_981, False),
    ],
)
def test_catastrophic_patterns_finish_on_10000_characters(
    pattern: str, note: str, expected: bool
) -> None:
    assert validate_ruleset(third_rule_tests(pattern), None) == []
    assert fires(pattern, note) is expected


def test_a_pattern_is_searched_for_anywhere_and_a_missing_fact_is_empty() -> None:
    assert fires("b", "abc")
    assert not fires("^b", "abc")
    assert fires(r"^(mailinator|tempmail)\.", "tempmail.org")
    assert fires("^$", None)
    assert not fires(".", None)


def test_unicode_text_and_a_lone_surrogate_in_a_fact() -> None:
    assert fires("(?i)^café$", "CAFÉ")
    assert fires(r"^\pL+$", "上海")
    # Text from a sender may hold a lone surrogate: the rule is decided, nothing raises.
    assert fires("x", "\ud800x")
    assert not fires("y", "\ud800x")


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (r"(a)\1", r"backreference \1 is not supported"),
        (r"(?P<x>a)(?P=x)", "named backreference (?P=name) is not supported"),
        (r"(?P<x>a)\k<x>", r"named backreference \k<...> is not supported"),
        (r"x(?=y)", "lookahead (?=...) is not supported"),
        (r"x(?!y)", "negative lookahead (?!...) is not supported"),
        (r"(?<=x)y", "lookbehind (?<=...) is not supported"),
        (r"(?<!x)y", "negative lookbehind (?<!...) is not supported"),
        (r"a*+b", "possessive quantifier *+ is not supported"),
        (r"a{1,3}+b", "possessive quantifier {1,3}+ is not supported"),
        (r"(?>a+)b", "atomic group (?>...) is not supported"),
        (r"(a)?(?(1)b|c)", "conditional group (?(...) is not supported"),
        (r"(?x) a b", "inline flags other than i, m, s and U are not supported"),
        (r"end\Z", r"write \z for the end of the text"),
        ("(unclosed", "not a valid regular expression (RE2 syntax): missing )"),
    ],
)
def test_what_re2_cannot_run_is_refused_by_path(pattern: str, message: str) -> None:
    found = validate_ruleset(third_rule_tests(pattern), None)
    assert [e.path for e in found] == [VALUE]
    assert message in found[0].message


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        # RE2 bounds counted repetition, nested counts multiplied, at 1000.
        (r"(a{1000}){1000}", "repetition {1000} is too large"),
        # Within the count bound, but the program would not fit the memory per pattern.
        (r"\pL{1000}", "needs more than 1024 KiB"),
    ],
)
def test_patterns_too_large_to_run_are_refused_at_validation(pattern: str, message: str) -> None:
    found = validate_ruleset(third_rule_tests(pattern), None)
    assert [e.path for e in found] == [VALUE]
    assert message in found[0].message


def test_patterns_a_sales_team_writes_are_accepted() -> None:
    for pattern in [
        r"^(gmail|qq)\.com$",
        r"(?i)^VIP-\d{3,5}$",
        r"^1[3-9]\d{9}$",
        r"(?P<area>\d{3})-\d{4}",
        r"[\p{Han}]+",
        r"\bbudget\b",
        r"[a-z]{1,1000}",
    ]:
        assert validate_ruleset(third_rule_tests(pattern), None) == [], pattern


def test_a_ruleset_has_a_bounded_number_of_patterns() -> None:
    rules = [regex_rule(f"x{n}", f"r{n}") for n in range(MAX_REGEX_CONDITIONS + 3)]
    found = validate_ruleset({"name": "t", "rules": rules}, None)
    assert [(e.path, e.message) for e in found] == [
        (
            f"/rules/{MAX_REGEX_CONDITIONS}/conditions/all/0/value",
            f"a ruleset may have at most {MAX_REGEX_CONDITIONS} matches_regex conditions",
        )
    ]
    assert validate_ruleset({"name": "t", "rules": rules[:MAX_REGEX_CONDITIONS]}, None) == []
