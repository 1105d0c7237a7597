"""`GET /v1/leads?format=csv`: the list's current view (its search, filters, sort and the
caller's scope) as CSV, streamed a page at a time (docs/leads-search.md).

UTF-8 with a byte order mark, so Excel shows Chinese names; a header row; at most
MAX_EXPORT_ROWS rows. A cell that a spreadsheet would read as a formula (starting with
= + - @, a tab or a carriage return) is prefixed with an apostrophe, so a lead named
`=HYPERLINK(...)` stays text (OWASP's CSV injection advice).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from domain.access import LeadScope
from domain.state import LeadState
from leadflow.bootstrap import Store
from projections.leads import LeadFilters, LeadKey, LeadOrder, find_leads, key_of

MAX_EXPORT_ROWS = 100_000
PAGE_ROWS = 1000
COLUMNS = (
    "lead_id",
    "name",
    "company",
    "email",
    "phone",
    "stage",
    "owner",
    "team",
    "in_pool",
    "source",
    "channel",
    "region",
    "score",
    "created_at",
    "last_activity_at",
)
BOM = "\ufeff"
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def export_rows(
    store: Store, filters: LeadFilters, order: LeadOrder, scope: LeadScope
) -> Iterator[str]:
    """The CSV text, a page of leads at a time (each page on a connection of its own, so
    a slow reader holds no transaction open)."""
    yield BOM + _line(COLUMNS)
    after: LeadKey | None = None
    sent = 0
    while sent < MAX_EXPORT_ROWS:
        want = min(PAGE_ROWS, MAX_EXPORT_ROWS - sent)
        with store.engine.connect() as conn:
            page = find_leads(conn, filters, after, want, order=order, scope=scope)
        if page:
            yield "".join(_line(_cells(state)) for state in page)
        sent += len(page)
        if len(page) < want:
            return
        after = key_of(page[-1], order)


def _cells(state: LeadState) -> list[str]:
    return [_cell(getattr(state, column)) for column in COLUMNS]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _line(cells: Any) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(cells)
    return out.getvalue()
