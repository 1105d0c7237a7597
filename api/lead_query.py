"""What `GET /v1/leads` is asked for — its search, filters and sort — read once, the same way
for the query string and for a saved view's `query` (docs/leads-search.md): each problem is
named by its parameter."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from projections.leads import STAGES, LeadFilters, LeadOrder
from projections.reports import LATEST_BOUND, parse_bound, parse_zone

# The parameters a view keeps (paging and the format are not part of a view).
VIEW_PARAMETERS = (
    "q",
    "owner",
    "team",
    "stage",
    "source",
    "region",
    "channel",
    "in_pool",
    "created_from",
    "created_to",
    "tz",
    "sort",
)
# Those that take several values (repeat the parameter): a lead matching any of them.
MULTI_VALUED = ("owner", "team", "stage", "source", "region", "channel")
MAX_VALUES = 50
MAX_TEXT = 200
DEFAULT_SORT = "-created_at"


@dataclass(frozen=True)
class LeadQuery:
    filters: LeadFilters
    order: LeadOrder


class InvalidLeadQuery(Exception):
    """Bad parameters: (parameter, message) each."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{name}: {message}" for name, message in problems))
        self.problems = problems


def parse_lead_query(values: Mapping[str, list[str]]) -> LeadQuery:
    """The filters and order of the parameters in `values` (each a list of the texts given
    for it; a parameter left out matches everything). InvalidLeadQuery names every bad one."""
    problems: list[tuple[str, str]] = []
    multi: dict[str, tuple[str, ...]] = {}
    for name in MULTI_VALUED:
        given = values.get(name) or []
        if len(given) > MAX_VALUES:
            problems.append((name, f"at most {MAX_VALUES} values"))
        elif any(not 0 < len(value) <= MAX_TEXT for value in given):
            problems.append((name, f"each value a text of 1 to {MAX_TEXT} characters"))
        elif name == "stage" and any(value not in STAGES for value in given):
            problems.append((name, f"each value one of {', '.join(STAGES)}"))
        else:
            multi[name] = tuple(dict.fromkeys(given))
    q = _single(values, "q", problems)
    if q is not None and not 0 < len(q.strip()) <= MAX_TEXT:
        problems.append(("q", f"a text of 1 to {MAX_TEXT} characters"))
    in_pool = _single(values, "in_pool", problems)
    if in_pool is not None and in_pool not in ("true", "false"):
        problems.append(("in_pool", "true or false"))
    zone = _zone(values, problems)
    created_from = _bound(values, "created_from", problems, zone, end=False)
    created_to = _bound(values, "created_to", problems, zone, end=True)
    if created_from and created_to and created_to <= created_from:
        problems.append(("created_to", "must be after created_from"))
    order = LeadOrder()
    sort = _single(values, "sort", problems) or DEFAULT_SORT
    try:
        order = LeadOrder.parse(sort)
    except ValueError as exc:
        problems.append(("sort", str(exc)))
    if problems:
        raise InvalidLeadQuery(problems)
    filters = LeadFilters(
        **multi,
        in_pool=None if in_pool is None else in_pool == "true",
        created_from=created_from,
        created_to=created_to,
        q=q.strip() if q else None,
    )
    return LeadQuery(filters, order)


def view_query_values(query: Any) -> dict[str, list[str]]:
    """A saved view's `query` object as the texts `parse_lead_query` reads: a text, a list
    of texts (for the parameters that take several) or, for `in_pool`, a boolean each.
    InvalidLeadQuery for an unknown parameter or a value of the wrong kind."""
    if not isinstance(query, dict):
        raise InvalidLeadQuery([("", "an object of list parameters")])
    problems: list[tuple[str, str]] = []
    values: dict[str, list[str]] = {}
    for name, value in query.items():
        if name not in VIEW_PARAMETERS:
            problems.append((name, f"unknown parameter: expected {', '.join(VIEW_PARAMETERS)}"))
        elif isinstance(value, bool) and name == "in_pool":
            values[name] = ["true" if value else "false"]
        elif isinstance(value, str):
            values[name] = [value]
        elif (
            name in MULTI_VALUED
            and isinstance(value, list)
            and all(isinstance(v, str) for v in value)
        ):
            values[name] = value
        else:
            kind = "a text or a list of texts" if name in MULTI_VALUED else "a text"
            problems.append((name, "true or false" if name == "in_pool" else kind))
    if problems:
        raise InvalidLeadQuery(problems)
    return values


def canonical_query(values: Mapping[str, list[str]]) -> dict[str, Any]:
    """A valid query as a view keeps it: lists for the parameters that take several values,
    a text for the others, `in_pool` a boolean; parameters not given are left out."""
    kept: dict[str, Any] = {}
    for name in VIEW_PARAMETERS:
        given = values.get(name)
        if not given:
            continue
        if name in MULTI_VALUED:
            kept[name] = list(dict.fromkeys(given))
        elif name == "in_pool":
            kept[name] = given[0] == "true"
        else:
            kept[name] = given[0]
    return kept


def _single(
    values: Mapping[str, list[str]], name: str, problems: list[tuple[str, str]]
) -> str | None:
    given = values.get(name) or []
    if len(given) > 1:
        problems.append((name, "give it once"))
        return None
    return given[0] if given else None


def _zone(values: Mapping[str, list[str]], problems: list[tuple[str, str]]) -> tzinfo:
    """The zone whose midnights the date bounds mean: `tz`, else UTC."""
    name = _single(values, "tz", problems)
    if name is None:
        return UTC
    try:
        return parse_zone(name)
    except ValueError as exc:
        problems.append(("tz", str(exc)))
        return UTC


def _bound(
    values: Mapping[str, list[str]],
    name: str,
    problems: list[tuple[str, str]],
    zone: tzinfo,
    *,
    end: bool,
) -> datetime | None:
    """A date (00:00 that day in `zone`) or date-time; `created_to` as a date includes that
    whole day: it ends at the next day's midnight in `zone`."""
    raw = _single(values, name, problems)
    if raw is None:
        return None
    try:
        bound = parse_bound(raw, zone)
    except ValueError as exc:
        problems.append((name, str(exc)))
        return None
    if not (end and len(raw.strip()) == 10):
        return bound
    try:
        next_day = date.fromisoformat(raw.strip()) + timedelta(days=1)
        return parse_bound(next_day.isoformat(), zone)
    except (OverflowError, ValueError):  # the next midnight is past the latest bound
        return LATEST_BOUND
