"""A CSV file read through its mapping: each row becomes the `lead.captured` envelope the
API would have been posted, validated by the same `domain.events.parse_event`, or the
row's errors, each naming the row and the CSV column (never the internal field).

A row's event id is a hash of the envelope it became (`import-<32 hex>`): the same row
imported again, by the CLI or the API, is the same event and appends nothing.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from domain.errors import FieldError, InvalidDocument, InvalidEvent, json_pointer
from domain.events import IncomingEvent, parse_event
from domain.timers import IMPORTED_ID_PREFIX
from intake.mapping import ATTRIBUTE_PREFIX, ImportMapping, InvalidMapping

# Ids of imported events: "import-" and 128 bits of the envelope's SHA-256.
EVENT_ID_PREFIX = IMPORTED_ID_PREFIX


class InvalidImportFile(InvalidDocument):
    """The file cannot be read as the mapping says (encoding, no header): 422, nothing
    imported."""

    code = "invalid_import_file"
    what = "import file"


@dataclass(frozen=True)
class RowError:
    """One fault of one row: its number (the header is row 1), the CSV column (None when
    the fault is the row's shape) and what is wrong."""

    row: int
    column: str | None
    message: str

    def as_json(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "message": self.message}


@dataclass(frozen=True)
class Row:
    """A row that became a valid event."""

    row: int
    event: IncomingEvent


@dataclass(frozen=True)
class CsvTable:
    """The file's header and its records, each with its row number."""

    header: list[str]
    records: list[tuple[int, list[str]]]


def read_table(content: bytes, mapping: ImportMapping) -> CsvTable:
    """Decode and split the file; raise InvalidImportFile when it is not text in the
    mapping's encoding or has no header, InvalidMapping when a mapped column is missing."""
    try:
        text = content.decode(mapping.codec)
    except UnicodeDecodeError as bad:
        line = content[: bad.start].count(b"\n") + 1
        raise InvalidImportFile(
            [
                FieldError(
                    "/file",
                    f"not {mapping.encoding} text (byte {bad.start}, line {line}); set the "
                    "mapping's encoding (utf-8, gbk or gb18030)",
                )
            ]
        ) from None
    try:
        lines = list(csv.reader(io.StringIO(text, newline=""), delimiter=mapping.delimiter))
    except csv.Error as bad:
        raise InvalidImportFile([FieldError("/file", f"not CSV: {bad}")]) from None
    if not lines or not any(cell.strip() for cell in lines[0]):
        raise InvalidImportFile([FieldError("/file", "empty: the first row must name the columns")])
    header = [cell.strip() for cell in lines[0]]
    wanted = list(mapping.columns) + ([mapping.occurred_at.column] if mapping.occurred_at else [])
    missing = [column for column in wanted if column not in header]
    if missing:
        found = ", ".join(repr(c) for c in header[:20])
        raise InvalidMapping(
            [
                FieldError(
                    "/occurred_at/column"
                    if mapping.occurred_at and column == mapping.occurred_at.column
                    else json_pointer(("columns", column)),
                    f"the file has no column {column!r} (its header: {found})",
                )
                for column in missing
            ]
        )
    records = [(number, cells) for number, cells in enumerate(lines[1:], start=2) if any(cells)]
    return CsvTable(header, records)


class RowReader:
    """Turns records of one table into events, as `mapping` says."""

    def __init__(self, table: CsvTable, mapping: ImportMapping, phone_region: str) -> None:
        self.mapping = mapping
        self.width = len(table.header)
        self.phone_region = phone_region
        self.index = {column: table.header.index(column) for column in mapping.columns}
        self.time_index = (
            table.header.index(mapping.occurred_at.column) if mapping.occurred_at else None
        )
        # What a parse_event error's path means in the file's words.
        self.places: dict[str, str] = {}
        for target in (*mapping.constants, *mapping.columns.values()):
            self.places[_pointer(target)] = f"(constant {target})"
        for column, target in mapping.columns.items():
            self.places[_pointer(target)] = column
        identity = [c for c, t in mapping.columns.items() if t in ("email", "phone")]
        self.places["/data"] = " / ".join(identity) or "(constant email / phone)"
        if mapping.occurred_at is not None:
            self.places["/occurred_at"] = mapping.occurred_at.column

    def read(self, number: int, cells: list[str], now: datetime) -> Row | list[RowError]:
        """Record `number` as an event, or its errors."""
        if len(cells) > self.width:
            return [RowError(number, None, f"{len(cells)} cells, the header has {self.width}")]
        envelope: dict[str, Any] = {"type": "lead.captured"}
        if self.time_index is not None and self.mapping.occurred_at is not None:
            text = _cell(cells, self.time_index)
            if not text:
                return [
                    RowError(number, self.mapping.occurred_at.column, "empty: a time is required")
                ]
            try:
                moment = self.mapping.occurred_at.parse(text)
            except ValueError as bad:
                return [RowError(number, self.mapping.occurred_at.column, str(bad))]
            envelope["occurred_at"] = moment.astimezone(UTC).isoformat()
        data: dict[str, Any] = {}
        attributes: dict[str, str] = {}
        for target, value in self._values(cells):
            if target.startswith(ATTRIBUTE_PREFIX):
                attributes[target.removeprefix(ATTRIBUTE_PREFIX)] = value
            else:
                data[target] = value
        if attributes:
            data["attributes"] = attributes
        envelope["data"] = data
        canonical = json.dumps(envelope, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        digest = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()
        envelope["event_id"] = EVENT_ID_PREFIX + digest[:32]
        try:
            event = parse_event(envelope, now=now, phone_region=self.phone_region)
        except InvalidEvent as invalid:
            return [
                RowError(number, self._place(error.path), error.message) for error in invalid.errors
            ]
        return Row(number, event)

    def _values(self, cells: list[str]) -> Iterator[tuple[str, str]]:
        filled: set[str] = set()
        for column, target in self.mapping.columns.items():
            value = _cell(cells, self.index[column])
            if value:
                filled.add(target)
                yield target, value
        for target, value in self.mapping.constants.items():
            if target not in filled and value:
                yield target, value

    def _place(self, path: str) -> str | None:
        while path:
            if path in self.places:
                return self.places[path]
            path = path.rpartition("/")[0]
        return None


def _cell(cells: list[str], index: int) -> str:
    return cells[index].strip() if index < len(cells) else ""


def _pointer(target: str) -> str:
    if target.startswith(ATTRIBUTE_PREFIX):
        return json_pointer(("data", "attributes", target.removeprefix(ATTRIBUTE_PREFIX)))
    return json_pointer(("data", target))
