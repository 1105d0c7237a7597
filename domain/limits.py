"""Bounds on what the door accepts, so that every hop behind it can process it.

An accepted event travels on: as a Temporal signal (JSON with non-ASCII text escaped as
`\\uXXXX`, so Chinese text grows ~3x; the server refuses a payload over 2 MiB and warns
from 512 KB), into PostgreSQL (no NUL in text or JSON, and text must encode to UTF-8),
into the read models and reports (Decimal sums, datetimes in UTC) and to the console
(JavaScript reads every number as a double). Each bound names the hop it protects.

Pure: the checks take values (and the clock, where a bound depends on it) and return the
faults they find, as `FieldError`s or messages; nothing here raises on bad input.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from domain.errors import FieldError, json_pointer

# One event's `data`, encoded as the Temporal signal carries it: a quarter of the size at
# which the server starts warning, so a signal (envelope included) never nears its 2 MiB
# refusal, and a lead's history holds many events before continuing as new.
MAX_EVENT_DATA_BYTES = 64 * 1024

# `lead.captured`'s free-form `attributes`: they are folded into the lead's state, which
# the workflow carries (queries, continue-as-new) and the leads read model stores whole.
MAX_ATTRIBUTES_BYTES = 16 * 1024
# Objects and arrays inside `attributes`; rules read `attributes.<key>` one level down.
MAX_ATTRIBUTES_DEPTH = 4
# Keys in all of `attributes`' objects, nested ones included.
MAX_ATTRIBUTES_KEYS = 200
MAX_ATTRIBUTE_KEY_CHARS = 100

# The largest integer a double (JavaScript, most JSON readers) holds exactly.
MAX_SAFE_INTEGER = 2**53 - 1

# Money (`lead.won`, `lead.opportunity_opened`, `campaign.spend_recorded`): the reports sum
# and divide these, and their JSON must stay finite and exact.
MAX_AMOUNT = Decimal(10**12)
AMOUNT_DECIMAL_PLACES = 4

# `occurred_at`: reports bucket by it and compare it with UTC clocks; before the Unix epoch
# or far ahead, an offset can push it out of what datetimes and the databases represent.
# A day ahead of the server's clock allows for a client's skewed clock.
EARLIEST_OCCURRED_AT = datetime(1970, 1, 1, tzinfo=UTC)
MAX_CLOCK_AHEAD = timedelta(days=1)
# A campaign's spend period (dates, no clock): any plausible campaign.
EARLIEST_PERIOD_DATE = date(1970, 1, 1)
LATEST_PERIOD_DATE = date(2100, 12, 31)

# Objects and arrays nested in a request body. The deepest body leadflow reads (a batch
# item's attributes) is 9 deep; a ruleset's conditions a few more.
MAX_JSON_DEPTH = 64

# Faults listed for one event; a hostile body could otherwise hold ~100,000 bad values,
# and the answer would be ten times its size.
MAX_LISTED_FAULTS = 100

Path = tuple[str | int, ...]

# NUL: PostgreSQL refuses it in text and JSON. A surrogate left in a Python string is a
# lone one (the JSON parser joins pairs): it cannot be encoded to UTF-8.
_UNSAFE_TEXT = re.compile("[\x00\ud800-\udfff]")


def _nodes(value: object, path: Path) -> Iterator[tuple[Path, object]]:
    """Every value inside `value` with its path, in document order. Iterative: a body
    nested deeper than the interpreter's recursion limit is still walked."""
    stack: list[tuple[Path, object]] = [(path, value)]
    while stack:
        at, node = stack.pop()
        yield at, node
        if isinstance(node, dict):
            stack.extend(((*at, key), child) for key, child in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend(((*at, i), node[i]) for i in reversed(range(len(node))))


def _text_fault(text: str) -> str | None:
    found = _UNSAFE_TEXT.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character (\\u0000), which cannot be stored"
    return "contains a lone UTF-16 surrogate (\\ud800-\\udfff), which is not valid Unicode"


def _number_fault(number: object) -> str | None:
    if isinstance(number, float) and not math.isfinite(number):
        return "must be a finite number (NaN, Infinity and numbers beyond a double refused)"
    if (
        isinstance(number, int)
        and not isinstance(number, bool)
        and not -MAX_SAFE_INTEGER <= number <= MAX_SAFE_INTEGER
    ):
        return f"integers must be within +/-{MAX_SAFE_INTEGER:,} (2**53 - 1)"
    return None


def _all_safe(value: object) -> bool:
    # The common case, answered without building a path for every value (3x faster).
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if _UNSAFE_TEXT.search(node):
                return False
        elif isinstance(node, dict):
            if any(isinstance(key, str) and _UNSAFE_TEXT.search(key) for key in node):
                return False
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif _number_fault(node) is not None:
            return False
    return True


def _unsafe_at(at: Path, node: object) -> Iterator[FieldError]:
    if isinstance(node, dict):
        for key in node:
            message = _text_fault(key) if isinstance(key, str) else None
            if message is not None:
                yield FieldError(json_pointer((*at, key)), "the key " + message)
        return
    message = _text_fault(node) if isinstance(node, str) else _number_fault(node)
    if message is not None:
        yield FieldError(json_pointer(at), message)


def _listed(faults: Iterator[FieldError], path: Path) -> list[FieldError]:
    """The first MAX_LISTED_FAULTS of `faults`, then one at `path` if there were more."""
    listed: list[FieldError] = []
    for fault in faults:
        if len(listed) == MAX_LISTED_FAULTS:
            listed.append(
                FieldError(json_pointer(path), f"more faults; the first {MAX_LISTED_FAULTS} shown")
            )
            break
        listed.append(fault)
    return listed


def unsafe_values(value: object, path: Path = ()) -> list[FieldError]:
    """Every string (keys too) that holds a NUL or a lone surrogate, and every number that
    is not finite or is an integer beyond +/-(2**53 - 1), anywhere in `value` (found at
    `path`); at most MAX_LISTED_FAULTS of them, then one saying more were left out."""
    if _all_safe(value):
        return []
    return _listed((f for at, node in _nodes(value, path) for f in _unsafe_at(at, node)), path)


def encoded_size(value: Any) -> int:
    """Bytes of `value` encoded as Temporal's JSON converter encodes it: compact, and
    non-ASCII escaped as `\\uXXXX` (two escapes for a character beyond the BMP)."""
    return len(json.dumps(value, ensure_ascii=True, separators=(",", ":")))


def event_data_fault(data: Mapping[str, Any]) -> FieldError | None:
    """A fault at `/data` when one event's data is over MAX_EVENT_DATA_BYTES encoded.
    `data` must already be free of unsafe values."""
    size = encoded_size(data)
    if size <= MAX_EVENT_DATA_BYTES:
        return None
    return FieldError(
        "/data",
        f"the event is {size:,} bytes once encoded (non-ASCII text as \\uXXXX escapes); "
        f"at most {MAX_EVENT_DATA_BYTES:,}",
    )


def _key_count(attributes: Mapping[str, Any]) -> int:
    return sum(len(node) for _, node in _nodes(attributes, ()) if isinstance(node, dict))


def _attributes_size_fault(attributes: Mapping[str, Any], what: str) -> str | None:
    size = encoded_size(attributes)
    if size <= MAX_ATTRIBUTES_BYTES:
        return None
    return (
        f"{what} {size:,} bytes once encoded (non-ASCII text as \\uXXXX escapes); "
        f"at most {MAX_ATTRIBUTES_BYTES:,}"
    )


def _key_count_fault(attributes: Mapping[str, Any], what: str) -> str | None:
    keys = _key_count(attributes)
    if keys <= MAX_ATTRIBUTES_KEYS:
        return None
    return f"{what} {keys:,} keys in all (nested objects included); at most {MAX_ATTRIBUTES_KEYS}"


def attributes_faults(
    attributes: Mapping[str, Any], path: Path = ("data", "attributes")
) -> list[FieldError]:
    """What is wrong with a capture's `attributes` (found at `path`): objects or arrays
    nested deeper than MAX_ATTRIBUTES_DEPTH (named once, at the first one too deep), keys
    of the wrong length (each, up to MAX_LISTED_FAULTS), more than MAX_ATTRIBUTES_KEYS keys,
    more than MAX_ATTRIBUTES_BYTES encoded. `attributes` must be free of unsafe values."""
    too_deep = next(
        (
            at
            for at, node in _nodes(attributes, path)
            if isinstance(node, dict | list) and len(at) - len(path) > MAX_ATTRIBUTES_DEPTH
        ),
        None,
    )
    faults: list[FieldError] = []
    if too_deep is not None:
        nesting = f"objects and arrays nest at most {MAX_ATTRIBUTES_DEPTH} deep inside attributes"
        faults.append(FieldError(json_pointer(too_deep), nesting))
    wrong_keys = (
        FieldError(
            json_pointer((*at, key)),
            f"keys are 1 to {MAX_ATTRIBUTE_KEY_CHARS} characters; this one has {len(key):,}",
        )
        for at, node in _nodes(attributes, path)
        if isinstance(node, dict)
        for key in node
        if not 1 <= len(key) <= MAX_ATTRIBUTE_KEY_CHARS
    )
    faults.extend(_listed(wrong_keys, path))
    for total in (
        _key_count_fault(attributes, "the attributes hold"),
        _attributes_size_fault(attributes, "the attributes are"),
    ):
        if total is not None:
            faults.append(FieldError(json_pointer(path), total))
    return faults


def merged_attributes_fault(kept: Mapping[str, Any], added: Mapping[str, Any]) -> FieldError | None:
    """A fault at `/data/attributes` when a later capture's `added` attributes, merged into
    a lead's `kept` ones, would exceed the attribute bounds. The merge is the one
    `domain.state.apply_event` makes: a touch adds only the keys the lead lacks. A capture
    that adds no key is never refused, even on a lead stored before these bounds."""
    if added.keys() <= kept.keys():
        return None
    merged = {**added, **kept}
    message = _key_count_fault(
        merged, "with this capture the lead's attributes would hold"
    ) or _attributes_size_fault(merged, "with this capture the lead's attributes would be")
    return None if message is None else FieldError("/data/attributes", message)


def _decimal_places(amount: Decimal) -> int:
    """Places after the point, trailing zeros not counted (1.50 has 1)."""
    _, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int), "only finite amounts have places"
    places = -exponent
    for digit in reversed(digits):
        if places <= 0 or digit != 0:
            break
        places -= 1
    return max(places, 0)


def amount_fault(amount: Decimal) -> str | None:
    """Why `amount` is not an amount of money leadflow accepts, or None: 0 to MAX_AMOUNT
    with at most AMOUNT_DECIMAL_PLACES places."""
    if not amount.is_finite() or not 0 <= amount <= MAX_AMOUNT:
        return f"must be from 0 to {MAX_AMOUNT:,}"
    if _decimal_places(amount) > AMOUNT_DECIMAL_PLACES:
        return f"must have at most {AMOUNT_DECIMAL_PLACES} decimal places"
    return None


def occurred_at_fault(at: datetime, now: datetime) -> str | None:
    """Why the time-zone-aware `at` is not a time an event can have occurred at, given
    the server's clock `now`, or None: from the Unix epoch to a day past `now`."""
    latest = now + MAX_CLOCK_AHEAD
    if EARLIEST_OCCURRED_AT <= at <= latest:
        return None
    return (
        f"must be from {EARLIEST_OCCURRED_AT:%Y-%m-%dT%H:%M:%SZ} to "
        f"{latest.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ} (a day past the server's clock)"
    )


def period_date_fault(day: date) -> str | None:
    """Why `day` cannot bound a spend period, or None: EARLIEST to LATEST_PERIOD_DATE."""
    if EARLIEST_PERIOD_DATE <= day <= LATEST_PERIOD_DATE:
        return None
    return f"must be from {EARLIEST_PERIOD_DATE} to {LATEST_PERIOD_DATE}"


def nests_deeper_than(value: object, limit: int) -> bool:
    """Whether objects and arrays in `value` nest more than `limit` deep (`[]` is 1 deep,
    `[[]]` 2). Iterative, and stops at the first container past the limit."""
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth + 1 > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
