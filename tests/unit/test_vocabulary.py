"""Words for a ruleset's parts (rules.vocabulary): durations in the units their author
wrote, and a label for everything a rule builder shows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.catalog import ACTIONS, LEAD_EVENT_TYPES, OPERATORS, VARIABLES
from rules.model import parse_duration
from rules.schema import ruleset_schema
from rules.vocabulary import (
    duration_in_words,
    event_in_words,
    labels,
    operator_in_words,
    variable_in_words,
)


@pytest.mark.parametrize(
    ("duration", "words"),
    [
        ("PT72H", "72 hours"),
        ("PT48H", "48 hours"),
        ("P7D", "7 days"),
        ("P1DT12H", "1 day 12 hours"),
        ("PT30M", "30 minutes"),
        ("PT2S", "2 seconds"),
        ("PT1S", "1 second"),
        ("PT1H", "1 hour"),
        ("P1W", "1 week"),
        ("P2W3D", "2 weeks 3 days"),
        ("PT1.5S", "1.5 seconds"),
        ("PT0,5S", "0.5 seconds"),
        ("PT0S", "0 seconds"),
        ("P1DT0H", "1 day"),
        ("PT024H", "24 hours"),
    ],
)
def test_a_duration_reads_in_the_units_its_author_wrote(duration: str, words: str) -> None:
    assert duration_in_words(duration) == words


def test_text_that_is_no_duration_reads_as_itself() -> None:
    assert duration_in_words("P1M") == "P1M"


_UNIT = st.integers(min_value=0, max_value=400).map(str)


@st.composite
def durations(draw: st.DrawFn) -> str:
    """Any text of the ISO 8601 shape the model parses (valid or too long)."""
    weeks, days, hours, minutes = (draw(st.none() | _UNIT) for _ in range(4))
    seconds = draw(st.none() | _UNIT | st.decimals(0, 100, places=3).map(str))
    date = (f"{weeks}W" if weeks else "") + (f"{days}D" if days else "")
    time = "".join(
        f"{value}{unit}" for value, unit in ((hours, "H"), (minutes, "M"), (seconds, "S")) if value
    )
    return "P" + date + ("T" + time if time else "")


@given(durations())
def test_every_duration_the_model_accepts_gets_words(text: str) -> None:
    try:
        length = parse_duration(text)
    except ValueError:
        return
    words = duration_in_words(text)
    assert words and words != text and "P" not in words
    # The words add up to the same length of time.
    seconds = {"week": 604800, "day": 86400, "hour": 3600, "minute": 60, "second": 1}
    tokens = words.split()
    total = sum(
        float(number) * seconds[unit.removesuffix("s")]
        for number, unit in zip(tokens[::2], tokens[1::2], strict=True)
    )
    assert abs(total - length / timedelta(seconds=1)) < 1e-3


def test_triggers_read_as_clauses() -> None:
    assert event_in_words("lead.captured") == "a lead arrives"
    assert event_in_words("lead.followed_up") == "a follow-up is logged"
    assert event_in_words("email.opened") == "an email is opened"
    assert event_in_words("timer.reclaim") == "the reclaim timer runs out"
    assert event_in_words("lead.unheard_of") == "lead.unheard_of"


def test_variables_and_operators_read_as_words() -> None:
    assert variable_in_words("hours_since_capture") == "hours since capture"
    assert variable_in_words("attributes.budget") == "attribute budget"
    assert variable_in_words("variant.subject") == "variant in experiment subject"
    assert operator_in_words("string", "equal_to") == "is"
    assert operator_in_words("numeric", "greater_than_or_equal_to") == "is at least"


def test_labels_name_every_event_variable_operator_action_and_param() -> None:
    words = labels()
    assert set(LEAD_EVENT_TYPES) <= set(words["events"])
    # No event type reads as its raw name: each has words.
    assert all(words["events"][name] != name for name in LEAD_EVENT_TYPES)
    assert set(VARIABLES) <= set(words["variables"])
    for type_name, operators in OPERATORS.items():
        assert set(words["operators"][type_name]) == set(operators)
    assert set(words["actions"]) == set(ACTIONS)
    assert words["actions"]["enroll_in_sequence"] == "enrol in a sequence"
    for name, model in ACTIONS.items():
        assert set(words["params"][name]) == set(model.model_fields)
    assert words["values"]["to"]["manager"] == "the lead's manager"
    assert words["values"]["strategy"].keys() == {"round_robin", "least_loaded"}


def test_the_schema_carries_the_labels_beside_its_existing_keys() -> None:
    schema = ruleset_schema()
    assert {"variables", "operators", "actions", "triggers", "builtin_templates"} <= set(schema)
    assert schema["labels"] == labels()
