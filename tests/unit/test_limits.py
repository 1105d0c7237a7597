"""Bounds at the door (domain/limits.py), through `parse_event` as every intake route
uses it: each bound at its limit is accepted, one past it is refused naming the field and
the limit; and, for arbitrary JSON, what is accepted is something every later hop can
process (Temporal's encoding, PostgreSQL's text, the reports' numbers)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.errors import InvalidEvent
from domain.events import EXTERNAL_DATA, IncomingEvent, parse_event
from domain.limits import (
    MAX_ATTRIBUTES_BYTES,
    MAX_EVENT_DATA_BYTES,
    MAX_JSON_DEPTH,
    MAX_LISTED_FAULTS,
    encoded_size,
    event_data_fault,
    merged_attributes_fault,
    nests_deeper_than,
)
from domain.state import LoggedEvent, fold

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LEAD = "6f1c1b7e-2a5d-4c44-9a7b-0c1f5b1f0c11"


def parse(body: object) -> IncomingEvent:
    return parse_event(body, now=NOW, phone_region="CN")


def refused(body: object) -> dict[str, str]:
    """The refusal's bad fields: JSON Pointer -> message (the last one for a path)."""
    with pytest.raises(InvalidEvent) as caught:
        parse(body)
    return {e.path: e.message for e in caught.value.errors}


def capture(**data: Any) -> dict[str, Any]:
    return {"type": "lead.captured", "data": {"email": "a@x.io", "source": "web", **data}}


def with_attributes(attributes: object) -> dict[str, Any]:
    return capture(attributes=attributes)


def nested(depth: int) -> Any:
    """Objects nested `depth` deep: {"n": {"n": ... 1}}."""
    value: Any = 1
    for _ in range(depth):
        value = {"n": value}
    return value


def keys(prefix: str, count: int) -> dict[str, int]:
    return {f"{prefix}{i}": i for i in range(count)}


# --- encoded size ------------------------------------------------------------------------


def test_one_event_is_at_most_64_kib_as_temporal_encodes_it() -> None:
    # '{"note":""}' is 11 bytes; the rest is the note.
    assert event_data_fault({"note": "x" * (MAX_EVENT_DATA_BYTES - 11)}) is None
    fault = event_data_fault({"note": "x" * (MAX_EVENT_DATA_BYTES - 10)})
    assert fault is not None and fault.path == "/data"
    assert "65,537 bytes once encoded" in fault.message and "at most 65,536" in fault.message


def test_non_ascii_text_counts_as_temporal_escapes_it() -> None:
    assert encoded_size({"k": "中"}) == len('{"k":"\\u4e2d"}')
    assert encoded_size({"k": "😀"}) == len('{"k":"\\ud83d\\ude00"}')


def test_attributes_are_at_most_16_kib_encoded() -> None:
    # '{"k":""}' is 8 bytes.
    at_limit = parse(with_attributes({"k": "x" * (MAX_ATTRIBUTES_BYTES - 8)}))
    assert encoded_size(at_limit.data["attributes"]) == MAX_ATTRIBUTES_BYTES
    message = refused(with_attributes({"k": "x" * (MAX_ATTRIBUTES_BYTES - 7)}))["/data/attributes"]
    assert "16,385 bytes" in message and "at most 16,384" in message


def test_chinese_attributes_are_measured_escaped_not_by_characters() -> None:
    # 3,000 characters: 9 KB in UTF-8, 18 KB escaped.
    message = refused(with_attributes({"k": "中" * 3000}))["/data/attributes"]
    assert "18,008 bytes" in message


# --- attributes' shape -------------------------------------------------------------------


def test_attributes_nest_at_most_four_deep() -> None:
    assert parse(with_attributes({"a": nested(4)})).data["attributes"] == {"a": nested(4)}
    assert parse(with_attributes({"a": [[[[1]]]]})).data["attributes"]["a"] == [[[[1]]]]
    errors = refused(with_attributes({"a": nested(5)}))
    assert errors == {
        "/data/attributes/a/n/n/n/n": "objects and arrays nest at most 4 deep inside attributes"
    }
    assert set(refused(with_attributes({"a": [[[[[1]]]]]}))) == {"/data/attributes/a/0/0/0/0"}


def test_attributes_hold_at_most_200_keys_nested_ones_included() -> None:
    assert len(parse(with_attributes(keys("k", 200))).data["attributes"]) == 200
    # 149 keys, "inner", and the keys inside it.
    assert parse(with_attributes({**keys("k", 149), "inner": keys("i", 50)}))
    errors = refused(with_attributes({**keys("k", 149), "inner": keys("i", 51)}))
    assert errors["/data/attributes"] == (
        "the attributes hold 201 keys in all (nested objects included); at most 200"
    )


def test_attribute_keys_are_1_to_100_characters_at_any_depth() -> None:
    assert parse(with_attributes({"k" * 100: 1}))
    errors = refused(with_attributes({"k" * 101: 1, "inner": {"": 2}}))
    assert errors == {
        "/data/attributes/" + "k" * 101: "keys are 1 to 100 characters; this one has 101",
        "/data/attributes/inner/": "keys are 1 to 100 characters; this one has 0",
    }


# --- text ----------------------------------------------------------------------------------

NUL = "contains a NUL character (\\u0000), which cannot be stored"
SURROGATE = "contains a lone UTF-16 surrogate (\\ud800-\\udfff), which is not valid Unicode"


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"type": "lead.lost", "lead_id": LEAD, "event_id": "e\x00"}, "/event_id"),
        ({"type": "lead.lost\x00", "lead_id": LEAD}, "/type"),
        ({"type": "lead.lost", "lead_id": LEAD + "\x00"}, "/lead_id"),
        (
            {"type": "lead.lost", "lead_id": LEAD, "occurred_at": "2026-01-01T00:00:00Z\x00"},
            "/occurred_at",
        ),
        ({"type": "lead.lost", "lead_id": LEAD, "data": {"reason": "too\x00dear"}}, "/data/reason"),
        (capture(name="Ann\x00"), "/data/name"),
        (with_attributes({"k": {"deep": ["ok", "bad\x00"]}}), "/data/attributes/k/deep/1"),
    ],
)
def test_nul_is_refused_in_any_string(body: dict[str, Any], path: str) -> None:
    assert refused(body) == {path: NUL}


def test_nul_in_a_key_is_refused_naming_the_key() -> None:
    assert refused(with_attributes({"a\x00b": 1})) == {"/data/attributes/a\x00b": "the key " + NUL}
    assert refused({"type": "lead.lost", "lead_id": LEAD, "x\x00": 1}) == {
        "/x\x00": "the key " + NUL
    }


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"type": "lead.lost", "lead_id": LEAD, "event_id": "e\ud800"}, "/event_id"),
        ({"type": "lead.lost", "lead_id": LEAD, "data": {"reason": "\udfff"}}, "/data/reason"),
        (capture(company="Acme\udc00"), "/data/company"),
        (with_attributes({"k": [{"v": "x\ud83d"}]}), "/data/attributes/k/0/v"),
    ],
)
def test_lone_surrogates_are_refused_in_any_string(body: dict[str, Any], path: str) -> None:
    assert refused(body) == {path: SURROGATE}


def test_a_lone_surrogate_in_a_key_is_named_with_a_replacement_character() -> None:
    # The pointer goes out in a UTF-8 answer, which cannot carry the surrogate itself.
    errors = refused(with_attributes({"k\ud800": 1}))
    assert errors == {"/data/attributes/k\ufffd": "the key " + SURROGATE}
    assert json.dumps(errors, ensure_ascii=False).encode("utf-8")


def test_emoji_and_chinese_are_text_like_any_other() -> None:
    event = parse(capture(name="张三 😀", attributes={"备注": "你好 👋"}))
    assert event.data["name"] == "张三 😀" and event.data["attributes"] == {"备注": "你好 👋"}


def test_a_flood_of_bad_values_lists_the_first_hundred() -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse(with_attributes({"k": ["\x00"] * 5000}))
    errors = caught.value.errors
    assert len(errors) == MAX_LISTED_FAULTS + 1
    assert errors[-1].message == f"more faults; the first {MAX_LISTED_FAULTS} shown"


def test_a_flood_of_bad_keys_lists_the_first_hundred_and_still_the_totals() -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse(with_attributes({f"{i:0>101}": i for i in range(300)}))
    messages = [e.message for e in caught.value.errors]
    assert len(messages) == MAX_LISTED_FAULTS + 3
    assert messages[-3:] == [
        f"more faults; the first {MAX_LISTED_FAULTS} shown",
        "the attributes hold 300 keys in all (nested objects included); at most 200",
        "the attributes are 32,291 bytes once encoded (non-ASCII text as \\uXXXX escapes); "
        "at most 16,384",
    ]


# --- numbers -------------------------------------------------------------------------------


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf, float("1e400")])
def test_non_finite_numbers_are_refused(number: float) -> None:
    message = "must be a finite number (NaN, Infinity and numbers beyond a double refused)"
    assert refused(with_attributes({"k": [number]})) == {"/data/attributes/k/0": message}
    won = {"type": "lead.won", "lead_id": LEAD, "data": {"amount": number}}
    assert refused(won) == {"/data/amount": message}


def test_integers_stay_within_what_a_double_holds_exactly() -> None:
    safe = 2**53 - 1
    assert parse(with_attributes({"a": safe, "b": -safe})).data["attributes"]["a"] == safe
    message = "integers must be within +/-9,007,199,254,740,991 (2**53 - 1)"
    assert refused(with_attributes({"a": safe + 1})) == {"/data/attributes/a": message}
    assert refused(with_attributes({"a": {"b": -(10**5000)}})) == {"/data/attributes/a/b": message}


AMOUNTS = [
    ("lead.won", LEAD, {}),
    ("lead.opportunity_opened", LEAD, {}),
    ("campaign.spend_recorded", None, {"campaign_id": "spring"}),
]


def money(event: tuple[str, str | None, dict[str, Any]], amount: object) -> dict[str, Any]:
    type_, lead_id, data = event
    body: dict[str, Any] = {"type": type_, "data": {**data, "amount": amount}}
    if lead_id:
        body["lead_id"] = lead_id
    return body


@pytest.mark.parametrize("event", AMOUNTS, ids=[a[0] for a in AMOUNTS])
@pytest.mark.parametrize("amount", [0, "0.0001", 10**12, "999999999999.9999", "1200.50000"])
def test_amounts_within_bounds_are_accepted(
    event: tuple[str, str | None, dict[str, Any]], amount: object
) -> None:
    assert parse(money(event, amount)).data["amount"] == str(amount)


@pytest.mark.parametrize("event", AMOUNTS, ids=[a[0] for a in AMOUNTS])
@pytest.mark.parametrize(
    ("amount", "message"),
    [
        (1e30, "must be from 0 to 1,000,000,000,000"),
        (10**12 + 1, "must be from 0 to 1,000,000,000,000"),
        ("1000000000000.0001", "must be from 0 to 1,000,000,000,000"),
        ("-0.01", "must be from 0 to 1,000,000,000,000"),
        (0.00001, "must have at most 4 decimal places"),
        ("1." + "0" * 40 + "1", "must have at most 4 decimal places"),
        ("NaN", "Input should be a finite number"),
    ],
)
def test_amounts_out_of_bounds_are_refused(
    event: tuple[str, str | None, dict[str, Any]], amount: object, message: str
) -> None:
    assert refused(money(event, amount)) == {"/data/amount": message}


# --- times ---------------------------------------------------------------------------------

WINDOW = "must be from 1970-01-01T00:00:00Z to 2026-03-02T12:00:00Z (a day past the server's clock)"


def lost_at(occurred_at: str) -> dict[str, Any]:
    return {"type": "lead.lost", "lead_id": LEAD, "occurred_at": occurred_at}


@pytest.mark.parametrize(
    "occurred_at",
    [
        "0001-01-01T00:00:00+08:00",
        "0001-01-01T00:00:00-08:00",
        "9999-12-31T23:59:59-08:00",
        "9999-12-31T23:59:59+14:00",
        "1969-12-31T23:59:59Z",
        "1970-01-01T07:59:59+08:00",
        (NOW + timedelta(days=2)).isoformat(),
        (NOW + timedelta(days=1, seconds=1)).isoformat(),
    ],
)
def test_times_outside_the_window_are_refused(occurred_at: str) -> None:
    assert refused(lost_at(occurred_at)) == {"/occurred_at": WINDOW}


@pytest.mark.parametrize(
    ("occurred_at", "stored"),
    [
        ("1970-01-01T00:00:00Z", datetime(1970, 1, 1, tzinfo=UTC)),
        ("1970-01-01T08:00:00+08:00", datetime(1970, 1, 1, tzinfo=UTC)),
        ((NOW + timedelta(days=1)).isoformat(), NOW + timedelta(days=1)),
    ],
)
def test_times_at_the_window_edges_are_accepted(occurred_at: str, stored: datetime) -> None:
    assert parse(lost_at(occurred_at)).occurred_at == stored


def spend(**period: str) -> dict[str, Any]:
    return {"type": "campaign.spend_recorded", "data": {"campaign_id": "c", "amount": 1, **period}}


def test_spend_periods_lie_between_1970_and_2100() -> None:
    edges = parse(spend(period_start="1970-01-01", period_end="2100-12-31"))
    assert (edges.data["period_start"], edges.data["period_end"]) == ("1970-01-01", "2100-12-31")
    message = "must be from 1970-01-01 to 2100-12-31"
    assert refused(spend(period_start="1969-12-31")) == {"/data/period_start": message}
    assert refused(spend(period_end="2101-01-01")) == {"/data/period_end": message}
    assert refused(spend(period_start="0001-01-01")) == {"/data/period_start": message}


# --- JSON depth and merged attributes (pure) -------------------------------------------------


def test_json_depth_is_measured_without_recursion() -> None:
    def lists(depth: int) -> Any:
        value: Any = []
        for _ in range(depth - 1):
            value = [value]
        return value

    assert not nests_deeper_than(lists(MAX_JSON_DEPTH), MAX_JSON_DEPTH)
    assert nests_deeper_than(lists(MAX_JSON_DEPTH + 1), MAX_JSON_DEPTH)
    assert nests_deeper_than(lists(100_000), MAX_JSON_DEPTH)
    assert nests_deeper_than(nested(MAX_JSON_DEPTH + 1), MAX_JSON_DEPTH)
    assert not nests_deeper_than("text", 0)


def test_a_touch_may_not_grow_the_merged_attributes_past_the_bounds() -> None:
    assert merged_attributes_fault(keys("a", 100), keys("b", 100)) is None
    fault = merged_attributes_fault(keys("a", 150), keys("b", 51))
    assert fault is not None and fault.path == "/data/attributes"
    assert fault.message == (
        "with this capture the lead's attributes would hold 201 keys in all "
        "(nested objects included); at most 200"
    )
    big = {"a": "x" * 10_000}
    fault = merged_attributes_fault(big, {"b": "y" * 10_000})
    assert fault is not None and "at most 16,384" in fault.message


def test_a_touch_that_adds_no_key_is_never_refused() -> None:
    # A lead stored before the bounds may already be over them; a touch that only repeats
    # its keys changes nothing in it.
    kept = keys("a", 500)
    assert merged_attributes_fault(kept, keys("a", 10)) is None


JSON_KEYS = st.text(alphabet="abc", min_size=1, max_size=3)
SMALL_VALUES = st.one_of(st.integers(-10, 10), st.text(alphabet="xyz中", max_size=400))


@given(
    kept=st.dictionaries(JSON_KEYS, SMALL_VALUES, max_size=40),
    added=st.dictionaries(JSON_KEYS, SMALL_VALUES, max_size=40),
)
def test_the_merge_checked_is_the_merge_the_lead_folds(
    kept: dict[str, Any], added: dict[str, Any]
) -> None:
    def touch(sequence: int, attributes: dict[str, Any]) -> LoggedEvent:
        data = {"email": "a@x.io", "source": "web", "attributes": attributes}
        at = f"2026-01-01T00:00:0{sequence}+00:00"
        return LoggedEvent("lead", sequence, f"e{sequence}", "lead.captured", at, at, data)

    folded = fold("lead", [touch(1, kept), touch(2, added)]).attributes
    over = len(folded) > 200 or encoded_size(folded) > MAX_ATTRIBUTES_BYTES
    grows = folded != kept
    assert (merged_attributes_fault(kept, added) is not None) == (grows and over)


# --- property: whatever is accepted, every hop can process -----------------------------------

HOSTILE_CHARACTERS = st.sampled_from(["\x00", "\ud800", "\udfff", "中", "😀", "~", "/", "é"])
TEXT = st.text(alphabet=st.one_of(st.characters(), HOSTILE_CHARACTERS), max_size=12)
PLAIN_TEXT = st.text(alphabet=st.characters(exclude_characters="\x00"), min_size=1, max_size=12)


def long_text(most: int) -> st.SearchStrategy[str]:
    return st.builds(
        lambda piece, count: piece * count, st.sampled_from(["中", "😀", "x"]), st.integers(0, most)
    )


NUMBERS = st.one_of(
    st.floats(),  # NaN and infinities included
    st.integers(),
    st.sampled_from([2**53 - 1, 2**53, -(2**63), 10**30, "1e30", "0.00001", "12.5"]),
)


def json_values(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.one_of(PLAIN_TEXT, TEXT), children, max_size=4)
        ),
        max_leaves=30,
    )


# Two kinds of JSON: mostly harmless (most events built of it are accepted, so the
# property checks what is accepted), and hostile (NUL, surrogates, NaN, huge numbers).
SAFE_JSON = json_values(
    st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), PLAIN_TEXT, long_text(1500))
)
HOSTILE_JSON = json_values(st.one_of(st.none(), st.booleans(), NUMBERS, TEXT, long_text(12_000)))
JSON_VALUES = st.one_of(SAFE_JSON, HOSTILE_JSON)
TIMES = st.one_of(
    st.datetimes(timezones=st.timezones()).map(lambda t: t.isoformat()),
    st.datetimes(
        min_value=datetime(1969, 12, 1), max_value=datetime(2026, 3, 3), timezones=st.timezones()
    ).map(lambda t: t.isoformat()),
    st.sampled_from(["0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-08:00"]),
    JSON_VALUES,
)
# A valid payload of each type, for the strategy to spoil one or two fields of.
VALID_DATA: dict[str, dict[str, Any]] = {
    "lead.captured": {"email": "a@x.io", "source": "web"},
    "lead.followed_up": {"rep_id": "rep-a"},
    "lead.claimed": {"rep_id": "rep-a"},
    "lead.reassigned": {"rep_id": "rep-a"},
    "lead.released": {"rep_id": "rep-a"},
    "lead.qualified": {"stage": "MQL"},
    "lead.won": {"amount": "10"},
    "campaign.spend_recorded": {"campaign_id": "spring", "amount": "10"},
    **{
        f"email.{what}": {"message_id": "m1"}
        for what in ("opened", "clicked", "bounced", "replied")
    },
}


@st.composite
def envelopes(draw: st.DrawFn) -> dict[str, Any]:
    # Captures half the time: their attributes are where free-form JSON goes.
    type_ = draw(st.one_of(st.just("lead.captured"), st.sampled_from(sorted(EXTERNAL_DATA))))
    data = dict(VALID_DATA.get(type_, {}))
    fields = sorted(EXTERNAL_DATA[type_].model_fields)
    for name in draw(st.lists(st.sampled_from(fields), max_size=2)) if fields else []:
        data[name] = draw(st.one_of(JSON_VALUES, PLAIN_TEXT, NUMBERS))
    if type_ == "lead.captured" and draw(st.booleans()):
        data["attributes"] = draw(st.dictionaries(PLAIN_TEXT, JSON_VALUES, max_size=6))
    body: dict[str, Any] = {"type": type_, "data": data}
    if type_ not in ("lead.captured", "campaign.spend_recorded"):
        body["lead_id"] = LEAD
    if draw(st.booleans()):
        body["occurred_at"] = draw(TIMES)
    if draw(st.booleans()):
        body["event_id"] = draw(st.one_of(PLAIN_TEXT, PLAIN_TEXT, JSON_VALUES))
    return body


def hop_faults(value: object) -> list[object]:
    """What PostgreSQL, UTF-8 or a JSON reader would refuse in `value` (independent of
    domain.limits: a plain recursive walk)."""
    found: list[object] = []
    if isinstance(value, str):
        if "\x00" in value or any(0xD800 <= ord(c) <= 0xDFFF for c in value):
            found.append(value)
    elif isinstance(value, float) and not math.isfinite(value):
        found.append(value)
    elif isinstance(value, dict):
        for key, child in value.items():
            found.extend(hop_faults(key) + hop_faults(child))
    elif isinstance(value, list):
        for child in value:
            found.extend(hop_faults(child))
    return found


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=envelopes())
def test_what_is_accepted_every_later_hop_can_process(body: dict[str, Any]) -> None:
    try:
        event = parse(body)
    except InvalidEvent as invalid:
        # The refusal itself must be answerable: UTF-8 JSON.
        assert json.dumps(invalid.details, ensure_ascii=False).encode("utf-8")
        return
    data = event.data
    assert encoded_size(data) <= MAX_EVENT_DATA_BYTES
    assert encoded_size(data.get("attributes", {})) <= MAX_ATTRIBUTES_BYTES
    assert hop_faults(data) == []
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert json.dumps(data, ensure_ascii=False).encode("utf-8")
    assert datetime(1970, 1, 1, tzinfo=UTC) <= event.occurred_at <= NOW + timedelta(days=1)
