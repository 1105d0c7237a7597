"""Stored lead events straight to `LoggedEvent`s, without the library's object-per-event
decoding: the replay's, the dispatcher's and the projections' reads decode every event of
the log through it."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    DatetimeAsISO,
    JSONTranscoder,
    Mapper,
    StoredEvent,
)
from eventsourcing.utils import get_topic

from domain.lead import (
    LEAD_EVENT_CLASSES,
    Lead,
    LeadEvent,
)
from domain.personal import ERASED_TYPE
from domain.state import LoggedEvent
from store.sealing import SEALED_MARKER, SealingMapper, open_data

log = logging.getLogger(__name__)

_ERASED_TOPIC = get_topic(Lead.Erased)


class NotALeadEvent(TypeError):
    """A stored event read as a lead's was of another aggregate."""


# The text `datetime.isoformat()` writes, for values whose text `fromisoformat` parses back
# to the same text: a valid date (days up to 28: any month has them), six-digit
# microseconds only when not all zero, a whole-minute UTC offset or none, never "-00:00"
# (isoformat writes "+00:00"). For such a text, isoformat(fromisoformat(text)) == text.
ISOFORMAT_TEXT = re.compile(
    r"(?!0000)[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(?:\.(?!000000)[0-9]{6})?"
    r"(?:\+(?:[01][0-9]|2[0-3]):[0-5][0-9]|-(?!00:00)(?:[01][0-9]|2[0-3]):[0-5][0-9])?"
)


class LoggedEventDecoder:
    """Stored lead events straight to `LoggedEvent`s: the same records as the library's
    `mapper.to_domain_event(stored).to_logged()`, at a fraction of its cost (the replay's
    history read, the dispatcher's and projections' reads decode every event of the log).

    The library decodes the JSON with a Python hook called for every object, parses each
    datetime, builds the event object, and `to_logged` formats the datetimes back into
    text. Here the JSON is decoded without the hook, and a datetime's stored text (the
    transcoder wrote `isoformat()`) is taken as it is when it is in the form isoformat
    writes (`ISOFORMAT_TEXT`), else formatted as `to_logged` would. What this does not
    know goes through the library, which gives the same answer (or its own error): a
    topic that is not a lead event class's, a class with upcasts (`class_version`) or its
    own `to_logged`, any other transcoded value than the two datetimes (a `_type_` key in
    the data), a state that is not the JSON of a lead event, and a mapper that is not the
    library's plain JSON one (a cipher or compressor can be configured by environment).
    """

    def __init__(self, mapper: Mapper[UUID]) -> None:
        self.mapper = mapper
        self.keyring = mapper.keyring if isinstance(mapper, SealingMapper) else None
        # Stored topic → the public event type, for the classes decoded here.
        self.types: dict[str, str] = {}
        if _is_plain_json(mapper):
            self.types = {
                get_topic(cls): cls.TYPE
                for cls in LEAD_EVENT_CLASSES
                if getattr(cls, "class_version", 1) == 1 and cls.to_logged is LeadEvent.to_logged
            }

    def decode_page(self, page: Sequence[StoredEvent]) -> list[LoggedEvent]:
        """`decode` of each, the keys of their sealed events read first in one query."""
        self.load_keys(page)
        return [self.decode(stored) for stored in page]

    def load_keys(self, page: Any) -> None:
        """Read the data keys a page of stored events needs in one query (not one per
        lead): what a follower calls before decoding a page."""
        if self.keyring is None:
            return
        # A lead erased (maybe by another process) since its key was cached: its key is
        # read again (and found gone) before any of its events in the page is opened.
        for stored in page:
            if stored.topic == _ERASED_TOPIC:
                self.keyring.forget(str(stored.originator_id))
        self.keyring.load(
            str(stored.originator_id) for stored in page if SEALED_MARKER in stored.state
        )

    def decode(self, stored: StoredEvent) -> LoggedEvent:
        """The stored lead event as a `LoggedEvent`; NotALeadEvent if it is not one."""
        logged = self.read_json(stored)
        if logged is not None:
            return logged
        event = self.mapper.to_domain_event(stored)
        if not isinstance(event, LeadEvent):
            raise NotALeadEvent(f"{stored.topic} is not a lead event")
        return event.to_logged()

    def read_json(self, stored: StoredEvent) -> LoggedEvent | None:
        """The record read from the stored JSON, or None for what the library must decode."""
        event_type = self.types.get(stored.topic)
        if event_type is None:
            return None
        state = stored.state
        # The transcoder writes each value it encodes (datetimes, UUIDs, decimals) as
        # `{"_type_": ..., "_data_": ...}`, and JSON writes the `"_type_":` key of each as
        # is (a string holding it escapes its quotes). A lead event has two such values,
        # its datetimes, unless its data holds one.
        if state.count(b'"_type_":') != 2 or not isinstance(stored.originator_id, UUID):
            return None
        try:
            fields = json.loads(state.decode("utf8"))
            record = {
                "lead_id": str(stored.originator_id),
                "sequence": stored.originator_version,
                "event_id": fields["event_id"],
                "type": event_type,
                "occurred_at": _isoformat_of(fields["occurred_at"]),
                "recorded_at": _isoformat_of(fields["timestamp"]),
                "data": fields["data"],
                "rule_id": fields["rule_id"],
                "ruleset_version": fields["ruleset_version"],
                "caused_by": fields["caused_by"],
                # Absent from events stored before traces existed.
                "traceparent": fields.get("traceparent"),
                # Absent from decisions and from events posted before issue #19.
                "actor": fields.get("actor"),
            }
        except (KeyError, TypeError, ValueError):
            return None  # not a lead event's JSON: the library's error says what it is
        # Every field set at once, as the library's mapper makes its events: the frozen
        # dataclass's __init__ sets them one `object.__setattr__` at a time, 0.8 µs of the
        # ~5 µs an event takes here. (LoggedEvent has no __post_init__ to skip.)
        if self.keyring is not None:
            if SEALED_MARKER in state:
                lead_id = record["lead_id"]
                key = self.keyring.key_for_reading(lead_id)
                record["data"] = open_data(event_type, record["data"], lead_id, key)
            elif event_type == ERASED_TYPE:
                self.keyring.forget(record["lead_id"])  # erased, maybe by another process
        logged = object.__new__(LoggedEvent)
        object.__setattr__(logged, "__dict__", record)
        return logged


def _isoformat_of(value: Any) -> str:
    """`isoformat()` of the datetime the library decodes from a stored value (what
    `to_logged` writes); ValueError if it is not one."""
    if not (isinstance(value, dict) and len(value) == 2 and value.get("_type_") == "datetime_iso"):
        raise ValueError("not a transcoded datetime")
    text = value["_data_"]
    if not isinstance(text, str):
        raise ValueError("not a transcoded datetime")
    if ISOFORMAT_TEXT.fullmatch(text):
        return text
    return datetime.fromisoformat(text).isoformat()


def _is_plain_json(mapper: Mapper[UUID]) -> bool:
    """Whether stored states are the library's JSON as `LoggedEventDecoder` reads it:
    its own mapper (or the sealing one, whose sealed fields it opens) and JSON transcoder,
    datetimes as ISO text, no cipher or compressor."""
    transcoder = mapper.transcoder
    return (
        type(mapper) in (Mapper, SealingMapper)
        and type(transcoder) is JSONTranscoder
        and type(transcoder.names.get("datetime_iso")) is DatetimeAsISO
        and mapper.cipher is None
        and mapper.compressor is None
    )
