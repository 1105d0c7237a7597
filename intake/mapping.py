"""The mapping document of a CSV import (docs/imports.md): which CSV column fills which
`lead.captured` field, the constants for the whole file, the column holding each row's
`occurred_at` with its format and time zone, the file's encoding and delimiter.

`parse_mapping` validates the document and raises `InvalidMapping` naming every bad field
by JSON Pointer, as the API's other documents do; nothing is read from the file here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.errors import FieldError, InvalidDocument, json_pointer
from domain.limits import MAX_ATTRIBUTE_KEY_CHARS, MAX_ATTRIBUTES_KEYS, unsafe_values
from domain.state import CAPTURE_FIELDS

# A column or a constant fills one of the `lead.captured` fields (`CAPTURE_FIELDS`, SPEC §4)
# or `attributes.<name>`.
ATTRIBUTE_PREFIX = "attributes."

# UTF-8 is read with or without a byte-order mark; GBK and GB18030 are what Chinese Excel
# exports usually are ("CSV" saved on a Chinese Windows).
ENCODINGS = {"utf-8": "utf-8-sig", "gbk": "gbk", "gb18030": "gb18030"}
DEFAULT_TIME_ZONE = "Asia/Shanghai"
ISO_FORMAT = "iso"
MAX_COLUMN_CHARS = 200

_KEYS = {"columns", "constants", "occurred_at", "encoding", "delimiter"}
_TIME_KEYS = {"column", "format", "time_zone"}


class InvalidMapping(InvalidDocument):
    """The mapping document is not valid (HTTP 422); nothing was imported."""

    code = "invalid_mapping"
    what = "mapping"


@dataclass(frozen=True)
class OccurredAt:
    """Where a row's `occurred_at` comes from: its column, `format` ("iso": RFC 3339 /
    ISO 8601, else a `strptime` format) and the time zone of times without an offset."""

    column: str
    format: str = ISO_FORMAT
    time_zone: str = DEFAULT_TIME_ZONE

    def parse(self, text: str) -> datetime:
        """The moment `text` names; raises ValueError saying what was expected."""
        try:
            if self.format == ISO_FORMAT:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            else:
                moment = datetime.strptime(text, self.format)
        except ValueError:
            shape = (
                "an ISO 8601 time, e.g. 2026-01-31 09:00"
                if self.format == ISO_FORMAT
                else (f"a time in the format {self.format!r}")
            )
            raise ValueError(f"{text!r} is not {shape}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo(self.time_zone))
        return moment


@dataclass(frozen=True)
class ImportMapping:
    """A validated mapping: `columns` maps a CSV column to its target (a capture field or
    `attributes.<name>`); `constants` fill a target for every row (and a mapped column's
    empty cell)."""

    columns: dict[str, str]
    constants: dict[str, str] = field(default_factory=dict)
    occurred_at: OccurredAt | None = None
    encoding: str = "utf-8"
    delimiter: str = ","

    @property
    def codec(self) -> str:
        return ENCODINGS[self.encoding]

    def as_json(self) -> dict[str, Any]:
        """The document again, with every default filled in."""
        occurred = self.occurred_at
        return {
            "columns": dict(self.columns),
            "constants": dict(self.constants),
            "occurred_at": None
            if occurred is None
            else {
                "column": occurred.column,
                "format": occurred.format,
                "time_zone": occurred.time_zone,
            },
            "encoding": self.encoding,
            "delimiter": self.delimiter,
        }


def _target_fault(target: object) -> str | None:
    if not isinstance(target, str):
        return "must be a lead.captured field or attributes.<name>"
    if target in CAPTURE_FIELDS:
        return None
    if target.startswith(ATTRIBUTE_PREFIX):
        name = target.removeprefix(ATTRIBUTE_PREFIX)
        if not name or len(name) > MAX_ATTRIBUTE_KEY_CHARS or "." in name:
            return f"an attribute name is 1 to {MAX_ATTRIBUTE_KEY_CHARS} characters, no dots"
        return None
    return f"unknown field {target!r}: one of {', '.join(CAPTURE_FIELDS)}, or attributes.<name>"


def _column_fault(column: str) -> str | None:
    if not column.strip() or len(column) > MAX_COLUMN_CHARS:
        return f"a column name is 1 to {MAX_COLUMN_CHARS} characters"
    return None


def _columns(raw: object, errors: list[FieldError]) -> dict[str, str]:
    if not isinstance(raw, dict) or not raw:
        errors.append(FieldError("/columns", "required: an object of CSV column → field"))
        return {}
    columns: dict[str, str] = {}
    taken: dict[str, str] = {}
    for column, target in raw.items():
        path = json_pointer(("columns", column))
        fault = _column_fault(column) or _target_fault(target)
        if fault is not None:
            errors.append(FieldError(path, fault))
        elif target in taken:
            errors.append(
                FieldError(path, f"{target} is already filled by column {taken[target]!r}")
            )
        else:
            columns[column] = target
            taken[target] = column
    attributes = [t for t in columns.values() if t.startswith(ATTRIBUTE_PREFIX)]
    if len(attributes) > MAX_ATTRIBUTES_KEYS:
        errors.append(FieldError("/columns", f"at most {MAX_ATTRIBUTES_KEYS} attributes"))
    return columns


def _constants(raw: object, errors: list[FieldError]) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        errors.append(FieldError("/constants", "must be an object of field → text"))
        return {}
    constants: dict[str, str] = {}
    for target, value in raw.items():
        path = json_pointer(("constants", target))
        fault = _target_fault(target)
        if fault is None and not isinstance(value, str):
            fault = "must be text (every CSV cell is)"
        if fault is not None:
            errors.append(FieldError(path, fault))
        else:
            constants[target] = value
    return constants


def _occurred_at(raw: object, errors: list[FieldError]) -> OccurredAt | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = {"column": raw}
    if not isinstance(raw, dict):
        errors.append(FieldError("/occurred_at", "must be {column, format?, time_zone?}"))
        return None
    for key in raw:
        if key not in _TIME_KEYS:
            errors.append(FieldError(json_pointer(("occurred_at", key)), "unknown field"))
    column, format_, zone = (
        raw.get("column"),
        raw.get("format", ISO_FORMAT),
        raw.get("time_zone", DEFAULT_TIME_ZONE),
    )
    ok = True
    if not isinstance(column, str) or _column_fault(column):
        errors.append(FieldError("/occurred_at/column", "required: the column of the time"))
        ok = False
    if (
        not isinstance(format_, str)
        or not format_
        or len(format_) > 100
        or (format_ != ISO_FORMAT and "%" not in format_)
    ):
        errors.append(
            FieldError("/occurred_at/format", '"iso" or a strptime format, e.g. %Y/%m/%d %H:%M')
        )
        ok = False
    if not isinstance(zone, str) or not _known_zone(zone):
        errors.append(FieldError("/occurred_at/time_zone", "an IANA time zone, e.g. Asia/Shanghai"))
        ok = False
    if not ok:
        return None
    assert isinstance(column, str) and isinstance(format_, str) and isinstance(zone, str)
    return OccurredAt(column, format_, zone)


def _known_zone(name: str) -> bool:
    if not name or len(name) > 100 or name.startswith("/") or ".." in name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def parse_mapping(document: object) -> ImportMapping:
    """Validate a mapping document (parsed JSON); raise InvalidMapping naming every bad field."""
    if not isinstance(document, dict):
        raise InvalidMapping([FieldError("", "a mapping is a JSON object")])
    # Text no store can keep (a NUL, a lone surrogate) first: no message then echoes it.
    unsafe = unsafe_values(document)
    if unsafe:
        raise InvalidMapping(unsafe)
    errors = [
        FieldError(json_pointer((key,)), "unknown field") for key in document if key not in _KEYS
    ]
    columns = _columns(document.get("columns"), errors)
    constants = _constants(document.get("constants"), errors)
    occurred_at = _occurred_at(document.get("occurred_at"), errors)
    if occurred_at is not None and occurred_at.column in columns:
        errors.append(
            FieldError("/occurred_at/column", f"column {occurred_at.column!r} is also in /columns")
        )
    encoding = document.get("encoding", "utf-8")
    if not isinstance(encoding, str) or encoding.lower() not in ENCODINGS:
        errors.append(FieldError("/encoding", f"one of {', '.join(ENCODINGS)}"))
        encoding = "utf-8"
    else:
        encoding = encoding.lower()
    delimiter = document.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '"\r\n':
        errors.append(FieldError("/delimiter", 'one character, e.g. ",", ";" or "\\t"'))
        delimiter = ","
    targets = set(columns.values()) | set(constants)
    if not {"email", "phone"} & targets:
        errors.append(FieldError("/columns", "map a column to email or phone (a lead needs one)"))
    if "source" not in targets:
        errors.append(
            FieldError("/constants", "source is required: map a column or set a constant")
        )
    if errors:
        raise InvalidMapping(errors)
    return ImportMapping(columns, constants, occurred_at, encoding, delimiter)
