"""The event log: an eventsourcing Application over SQLite or PostgreSQL.

`append` is the commit point of the ingest path (SPEC §3): identity resolution, the state
guards and the idempotency record all happen inside one transaction, retried when a
concurrent writer got there first. The log is also the outbox the dispatcher follows.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, ClassVar, TypeVar
from uuid import UUID, uuid4

from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    LRUCache,
    project_aggregate,
)
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    DatetimeAsISO,
    IntegrityError,
    JSONTranscoder,
    Mapper,
    Notification,
    StoredEvent,
)
from eventsourcing.utils import get_topic
from eventsourcing_sqlalchemy.datastore import SQLAlchemyDatastore
from eventsourcing_sqlalchemy.factory import SQLAlchemyFactory
from eventsourcing_sqlalchemy.recorders import SQLAlchemyApplicationRecorder
from sqlalchemy import Select, bindparam, func, insert, select
from sqlalchemy.orm import Session

from domain.directory import Directory
from domain.errors import (
    DomainError,
    EventIdInUse,
    IdempotencyKeyReused,
    LeadAttributesFull,
    LeadNotFound,
)
from domain.events import LEADLESS_TYPES, IncomingEvent
from domain.identity import (
    campaign_id_for,
    decided_event_id,
    idempotency_record_id,
    identity_index_id,
    legacy_event_id,
)
from domain.lead import (
    EXTERNAL_LEAD_TOPICS,
    LEAD_EVENT_CLASSES,
    Campaign,
    IdempotencyRecord,
    IdentityIndex,
    Lead,
    LeadEvent,
)
from domain.lifecycle import ActiveRuleset, step
from domain.limits import merged_attributes_fault
from domain.pool import check_claim, claim_day
from domain.state import (
    Decision,
    LeadState,
    LoggedEvent,
    check_external_event,
    is_trigger,
    state_at_trigger,
)
from domain.timers import RunningTimer, plan_sequences, plan_timers
from domain.workload import RepWorkload, TeamRotation, rep_workload_id, team_rotation_id
from rules.evaluate import Checkpoint
from rules.model import PoolPolicy

log = logging.getLogger(__name__)

T = TypeVar("T", bound=Aggregate)

MAX_CONFLICT_RETRIES = 50
# Aggregates the repository keeps per process (LRU): every rep and team, and the leads read
# last (a lead's aggregate is a few KB).
AGGREGATE_CACHE_SIZE = 1000


@dataclass(frozen=True)
class Decided:
    """What one trigger led to: the decided events, the lead's state after them, and the
    running timers."""

    events: list[LoggedEvent]
    state: LeadState
    timers: dict[str, RunningTimer]


@dataclass(frozen=True)
class Appended:
    """What the API answers for one accepted event (SPEC §4)."""

    event_id: str
    lead_id: UUID | None
    sequence: int
    new_lead: bool
    duplicate: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "lead_id": str(self.lead_id) if self.lead_id else None,
            "sequence": self.sequence,
            "new_lead": self.new_lead,
            "duplicate": self.duplicate,
        }


@dataclass(frozen=True)
class PendingAppend:
    """One append of `append_many`: events with their idempotency keys, and whose keys
    they are (`scope`: the API key's stable id; None: the keys leadflow itself uses)."""

    events: Sequence[IncomingEvent]
    keys: Sequence[str | None]
    scope: str | None = None


class ItemRejected(DomainError):
    """Item `index` of an append was refused; nothing of the append was written."""

    def __init__(self, index: int, cause: DomainError) -> None:
        super().__init__(cause.message, cause.details)
        self.index = index
        self.cause = cause
        self.code = cause.code


class EventLog(Application):
    """leadflow's one event store. Tables: `leadflow_events` (+ the library's own)."""

    name = "LeadFlow"
    log_section_size = 1000
    # Workload and rotation streams grow with every assignment; read them from snapshots.
    snapshotting_intervals: ClassVar[dict[Any, int]] = {
        RepWorkload: 50,
        TeamRotation: 50,
    }

    def append(
        self,
        events: Sequence[IncomingEvent],
        keys: Sequence[str | None],
        directory: Directory | None = None,
        pool: PoolPolicy | None = None,
        *,
        scope: str | None = None,
    ) -> list[Appended]:
        """Append validated events atomically, all or nothing, in order.

        `keys[i]` is event i's idempotency key (client event id or Idempotency-Key), one of
        `scope`'s (the API key that sent it): a key seen before in that scope answers the
        earlier result with `duplicate: true` and appends nothing.
        `directory` and `pool` are what claims are checked against (rep known, active, with
        room; the former owner's cool-down and the rep's daily claim limit).
        """
        # A lone capture is first written assuming its identities (and key) are new, without
        # reading: a known one already has its index (or idempotency record) stream, whose
        # unique (stream, version 1) key refuses the write, and the retry reads as usual.
        assume_new = _lone_capture(events)
        for _ in range(MAX_CONFLICT_RETRIES):
            try:
                return self._append_once(events, keys, directory, assume_new, pool, scope)
            except IntegrityError:
                # Another writer appended to one of these streams first: read again, retry.
                assume_new = False
                continue
        raise RuntimeError("could not append: too many concurrent writers on one stream")

    def _append_once(
        self,
        events: Sequence[IncomingEvent],
        keys: Sequence[str | None],
        directory: Directory | None,
        assume_new: bool = False,
        pool: PoolPolicy | None = None,
        scope: str | None = None,
    ) -> list[Appended]:
        # The reads and the write share one transaction (the library's nested transactions
        # join it): no BEGIN/ROLLBACK round trips per read, and on SQLite the in-process
        # write lock is taken once. What a concurrent writer did in between still surfaces
        # as an IntegrityError on the unique (stream, version) key, and `append` retries.
        with _recorder_of(self).transaction(commit=True):
            return self._append_in_transaction(events, keys, directory, assume_new, pool, scope)

    def _append_in_transaction(
        self,
        events: Sequence[IncomingEvent],
        keys: Sequence[str | None],
        directory: Directory | None,
        assume_new: bool,
        pool: PoolPolicy | None,
        scope: str | None,
    ) -> list[Appended]:
        """One append's reads and writes, inside the caller's transaction. Raises
        ItemRejected before writing anything when an item is refused."""
        unit = _UnitOfWork(self, directory, pool, scope)
        unit.preload(events, keys, assume_new=assume_new)
        results: list[Appended] = []
        for index, (event, key) in enumerate(zip(events, keys, strict=True)):
            try:
                results.append(unit.add(event, key))
            except DomainError as exc:
                raise ItemRejected(index, exc) from exc
        unit.save()
        return results

    def append_many(
        self,
        appends: Sequence[PendingAppend],
        directory: Directory | None = None,
        pool: PoolPolicy | None = None,
    ) -> list[list[Appended] | DomainError]:
        """Several independent appends, each all or nothing as `append` makes it, committed
        together: one transaction and one commit (a group commit). Each answer is in its
        append's place: its results, or the DomainError (an ItemRejected) that refused it
        and left the others be.

        As `append` does for a lone capture, the group first writes its captures assuming
        their identities are new, without reading; if a unique key refuses that (a known
        identity, two members on one new identity), nothing of it is kept and the group is
        written again with reads (a member then sees the earlier members' writes). If that
        meets a concurrent writer too (another process), each append is made on its own, in
        order, with `append`'s retries.
        """
        if len(appends) > 1:
            for assume_new in (True, False):
                try:
                    return self._append_group(appends, directory, pool, assume_new)
                except IntegrityError:
                    # A read inside the group may have cached an aggregate with an earlier
                    # member's writes, which were just rolled back: forget every cached one.
                    if isinstance(self.repository.cache, LRUCache):
                        self.repository.cache.clear()
        answers: list[list[Appended] | DomainError] = []
        for pending in appends:
            try:
                answers.append(
                    self.append(pending.events, pending.keys, directory, pool, scope=pending.scope)
                )
            except DomainError as refused:
                answers.append(refused)
        return answers

    def _append_group(
        self,
        appends: Sequence[PendingAppend],
        directory: Directory | None,
        pool: PoolPolicy | None,
        assume_new: bool,
    ) -> list[list[Appended] | DomainError]:
        answers: list[list[Appended] | DomainError] = []
        with _recorder_of(self).transaction(commit=True):
            for pending in appends:
                events = pending.events
                unread = assume_new and _lone_capture(events)
                try:
                    answers.append(
                        self._append_in_transaction(
                            events, pending.keys, directory, unread, pool, pending.scope
                        )
                    )
                except ItemRejected as refused:
                    answers.append(refused)  # it wrote nothing: the others go on
        return answers

    def decide(
        self,
        lead_id: UUID,
        trigger: str,
        cause_id: str,
        now: datetime,
        active: ActiveRuleset,
        directory: Directory,
        timers: Mapping[str, RunningTimer],
        fired: RunningTimer | None = None,
        *,
        checkpoint: Checkpoint | None = None,
    ) -> Decided:
        """Run the lifecycle step for `trigger` and append its decisions to the lead's stream;
        returns them with the lead's state after them (folded from the whole stream) and
        the timers `timers` become once the trigger and its decisions have happened.
        `checkpoint` is called before each rule is tested (see `domain.lifecycle.step`).

        Idempotent: decisions already recorded for `cause_id` (a retried activity) are
        returned instead of being decided again. A concurrent append is retried on the
        fresh state.
        """
        for _ in range(MAX_CONFLICT_RETRIES):
            try:
                # The reads join the write's transaction (the library's nested transactions),
                # as in `_append_once`: one session and BEGIN/COMMIT per decision instead of
                # one per read. A concurrent writer still surfaces as an IntegrityError.
                with _recorder_of(self).transaction(commit=True):
                    return self._decide_once(
                        lead_id,
                        trigger,
                        cause_id,
                        now,
                        active,
                        directory,
                        timers,
                        fired,
                        checkpoint,
                    )
            except IntegrityError:
                continue  # another writer appended to one of these streams first
        raise RuntimeError("could not append decisions: too many concurrent writers")

    def _decide_once(
        self,
        lead_id: UUID,
        trigger: str,
        cause_id: str,
        now: datetime,
        active: ActiveRuleset,
        directory: Directory,
        timers: Mapping[str, RunningTimer],
        fired: RunningTimer | None,
        checkpoint: Checkpoint | None,
    ) -> Decided:
        unit = _UnitOfWork(self, directory)
        events = [e for e in self.events.get(lead_id) if isinstance(e, LeadEvent)]
        lead: Any = None
        for event in events:
            lead = event.mutate(lead)
        if not isinstance(lead, Lead):
            raise LeadNotFound(f"no lead {lead_id}")
        logged = [e.to_logged() for e in events]
        # The trigger with that id (a decided event of an older release may share it).
        cause = next(e for e in logged if e.event_id == cause_id and is_trigger(e))
        earlier = [e for e in logged if e.caused_by == cause_id and not is_trigger(e)]
        if earlier:
            return self._decided(cause, earlier, lead.state, active, timers, now, fired)
        at_trigger = state_at_trigger(str(lead_id), logged, cause_id)
        unit.adopt(lead)
        result = step(
            at_trigger, trigger, active, directory, unit, now, fired, checkpoint=checkpoint
        )
        decided = [
            lead.record_decision(
                decision,
                event_id=decided_event_id(f"decision:{lead_id}:{cause_id}:{i}"),
                occurred_at=now,
                ruleset_version=active.version,
                caused_by=cause_id,
            )
            for i, decision in enumerate(result.decisions)
        ]
        for team_id, rep_id in result.rotations:
            unit.rotation_for_change(team_id).choose(str(lead_id), rep_id)
        unit.save()
        new = [e.to_logged() for e in decided]
        return self._decided(cause, new, lead.state, active, timers, now, fired)

    @staticmethod
    def _decided(
        cause: LoggedEvent,
        events: list[LoggedEvent],
        state: LeadState,
        active: ActiveRuleset,
        timers: Mapping[str, RunningTimer],
        now: datetime,
        fired: RunningTimer | None,
    ) -> Decided:
        happened = [cause, *events]
        planned = plan_timers(
            timers, active.ruleset.timers, [(e.type, e.event_id) for e in happened], now
        )
        planned = plan_sequences(
            planned,
            active.ruleset.sequences,
            [(e.type, e.event_id, e.data) for e in happened],
            now,
            fired,
        )
        return Decided(events, state, planned)

    def fire_timer(
        self,
        lead_id: UUID,
        timer: RunningTimer,
        active: ActiveRuleset,
        directory: Directory,
        timers: Mapping[str, RunningTimer],
        *,
        checkpoint: Checkpoint | None = None,
    ) -> Decided:
        """Record `lead.timer_fired` (once, however often this is retried) and run the rules
        for `timer.<id>` at the time the timer was due. The result's events start with the
        `lead.timer_fired` event."""
        fired_id = decided_event_id(f"timer:{lead_id}:{timer.timer_id}:{timer.due_at}")
        data: dict[str, Any] = {"timer": timer.timer_id, "due_at": timer.due_at}
        if timer.step is not None:
            data["step"] = timer.step
        fired = self.record_once(
            lead_id,
            Decision("lead.timer_fired", data),
            event_id=fired_id,
            occurred_at=timer.due,
            ruleset_version=active.version,
            caused_by=timer.started_by,
        )
        remaining = {k: v for k, v in timers.items() if k != timer.timer_id}
        decided = self.decide(
            lead_id,
            f"timer.{timer.timer_id}",
            fired.event_id,  # the id it was recorded with, by this release or an older one
            timer.due,
            active,
            directory,
            remaining,
            fired=timer,
            checkpoint=checkpoint,
        )
        return Decided([fired, *decided.events], decided.state, decided.timers)

    def record_once(
        self,
        lead_id: UUID,
        decision: Decision,
        *,
        event_id: str,
        occurred_at: datetime,
        ruleset_version: int | None,
        caused_by: str,
    ) -> LoggedEvent:
        """Append one decided event unless the stream already has `event_id` (a retried
        activity records it once), or had it under the id an older release gave it."""
        ids = {event_id, legacy_event_id(event_id)}
        for _ in range(MAX_CONFLICT_RETRIES):
            recorded = [
                e
                for e in self.lead_events(lead_id)
                if e.event_id in ids and e.type == decision.type
            ]
            if recorded:
                return recorded[0]
            lead = self.get_lead(lead_id)
            event = lead.record_decision(
                decision,
                event_id=event_id,
                occurred_at=occurred_at,
                ruleset_version=ruleset_version,
                caused_by=caused_by,
            )
            try:
                self.save(lead)
            except IntegrityError:
                continue
            return event.to_logged()
        raise RuntimeError("could not record: too many concurrent writers")

    def get_lead(self, lead_id: UUID) -> Lead:
        try:
            lead: Aggregate = self.repository.get(lead_id)
        except AggregateNotFoundError:
            raise LeadNotFound(f"no lead {lead_id}") from None
        if not isinstance(lead, Lead):
            raise LeadNotFound(f"no lead {lead_id}")
        return lead

    def lead_state(self, lead_id: UUID) -> LeadState:
        return self.get_lead(lead_id).state

    def lead_events(self, lead_id: UUID) -> list[LoggedEvent]:
        """The lead's whole stream, external and decided events, in order."""
        decode = self.logged_event_decoder.decode
        try:
            events = [decode(stored) for stored in self.recorder.select_events(lead_id)]
        except NotALeadEvent:
            raise LeadNotFound(f"no lead {lead_id}") from None
        if not events:
            raise LeadNotFound(f"no lead {lead_id}")
        return events

    def read_lead_events_after(
        self, position: int, limit: int
    ) -> tuple[list[LoggedEvent], int | None]:
        """External lead events after log `position`, and the last position read (or None)."""
        entries = self.lead_entries_after(position, limit)
        if not entries:
            return [], None
        return [event for _, event in entries], entries[-1][0]

    def lead_entries_after(self, position: int, limit: int) -> list[tuple[int, LoggedEvent]]:
        """Up to `limit` external lead events after log `position`, each with its position."""
        notifications: Sequence[Notification] = self.recorder.select_notifications(
            start=position,
            limit=limit,
            topics=EXTERNAL_LEAD_TOPICS,
            inclusive_of_start=False,
        )
        decode = self.logged_event_decoder.decode
        return [(notification.id, decode(notification)) for notification in notifications]

    def stream_notifications(
        self, stream_id: UUID, start: int, stop: int, topics: Sequence[str]
    ) -> list[Notification]:
        """One stream's events of `topics` at log positions `start` to `stop` (both
        included), in log order: what a follower held for that stream while it was in
        quarantine."""
        return _recorder_of(self).select_stream_notifications(stream_id, start, stop, topics)

    def max_position(self) -> int:
        return self.recorder.max_notification_id() or 0

    @cached_property
    def logged_event_decoder(self) -> LoggedEventDecoder:
        """How this log's stored lead events are read as `LoggedEvent`s (see the class)."""
        return LoggedEventDecoder(self.mapper)


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
        # Stored topic → the public event type, for the classes decoded here.
        self.types: dict[str, str] = {}
        if _is_plain_json(mapper):
            self.types = {
                get_topic(cls): cls.TYPE
                for cls in LEAD_EVENT_CLASSES
                if getattr(cls, "class_version", 1) == 1 and cls.to_logged is LeadEvent.to_logged
            }

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
            }
        except (KeyError, TypeError, ValueError):
            return None  # not a lead event's JSON: the library's error says what it is
        # Every field set at once, as the library's mapper makes its events: the frozen
        # dataclass's __init__ sets them one `object.__setattr__` at a time, 0.8 µs of the
        # ~5 µs an event takes here. (LoggedEvent has no __post_init__ to skip.)
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
    its own mapper and JSON transcoder, datetimes as ISO text, no cipher or compressor."""
    transcoder = mapper.transcoder
    return (
        type(mapper) is Mapper
        and type(transcoder) is JSONTranscoder
        and type(transcoder.names.get("datetime_iso")) is DatetimeAsISO
        and mapper.cipher is None
        and mapper.compressor is None
    )


class _UnitOfWork:
    """Aggregates touched by one append, saved in one transaction. A batch sees its own
    earlier items; every change of a lead's open owner moves the reps' workloads with it."""

    def __init__(
        self,
        log: EventLog,
        directory: Directory | None = None,
        pool: PoolPolicy | None = None,
        scope: str | None = None,
    ) -> None:
        self.pool = pool or PoolPolicy()
        self.scope = scope
        self.log = log
        self.directory = directory
        self.aggregates: dict[UUID, Aggregate] = {}
        # Streams read (by `preload`, or on first use): the aggregate, or None for a stream
        # with no events.
        self.loaded: dict[UUID, Aggregate | None] = {}
        self.index_ids: dict[tuple[str, str], UUID] = {}  # uuid5 is not free: ~4 µs
        self.seen_keys: dict[str, tuple[str, Appended]] = {}
        self.owner_before: dict[UUID, str | None] = {}

    def preload(
        self,
        events: Sequence[IncomingEvent],
        keys: Sequence[str | None],
        *,
        assume_new: bool = False,
    ) -> None:
        """Read every stream `add` will look at in two queries, however many events: the
        idempotency records, identity indexes, named leads and campaigns; then the leads the
        found indexes point at. (One read per stream made identity lookups 50-70% of a
        batch's time.) `assume_new`: read nothing, take all of them to be empty."""
        wanted = [
            record_id for key in keys if key is not None for record_id in self._record_ids(key)
        ]
        for event in events:
            if event.type in LEADLESS_TYPES:
                wanted.append(campaign_id_for(str(event.data["campaign_id"])))
            elif event.is_capture:
                wanted.extend(self._index_id(k, v) for k, v in event.identities.items())
            elif event.lead_id is not None:
                wanted.append(event.lead_id)
        if assume_new:
            self.loaded.update(dict.fromkeys(wanted))
            return
        self._load(wanted)
        self._load([a.lead_id for a in self.loaded.values() if isinstance(a, IdentityIndex)])

    def _load(self, ids: Sequence[UUID]) -> None:
        wanted = [
            i for i in dict.fromkeys(ids) if i not in self.loaded and i not in self.aggregates
        ]
        if not wanted:
            return
        streams = _recorder_of(self.log).select_streams(wanted)
        to_domain_event = self.log.mapper.to_domain_event
        for stream_id in wanted:
            stored = streams.get(stream_id)
            self.loaded[stream_id] = (
                project_aggregate(None, map(to_domain_event, stored)) if stored else None
            )

    def adopt(self, lead: Lead, *, is_new: bool = False) -> None:
        if lead.id not in self.owner_before:
            self.owner_before[lead.id] = None if is_new else lead.state.open_owner
        self._track(lead)

    def _existing(self, aggregate_id: UUID, kind: type[T]) -> T | None:
        found = self._get(aggregate_id)
        return found if isinstance(found, kind) else None

    def open_leads(self, rep_id: str) -> int:
        workload = self._existing(rep_workload_id(rep_id), RepWorkload)
        return workload.open_leads if workload else 0

    def last_assigned(self, team_id: str) -> str | None:
        rotation = self._existing(team_rotation_id(team_id), TeamRotation)
        return rotation.last_assigned if rotation else None

    def workload_for_change(self, rep_id: str) -> RepWorkload:
        workload = self._existing(rep_workload_id(rep_id), RepWorkload) or RepWorkload.open(rep_id)
        self._track(workload)
        return workload

    def rotation_for_change(self, team_id: str) -> TeamRotation:
        rotation = self._existing(team_rotation_id(team_id), TeamRotation)
        rotation = rotation or TeamRotation.open(team_id)
        self._track(rotation)
        return rotation

    def save(self) -> None:
        for lead_id, before in self.owner_before.items():
            lead = self.aggregates[lead_id]
            assert isinstance(lead, Lead)
            after = lead.state.open_owner
            if before != after:
                if before is not None:
                    self.workload_for_change(before).change(str(lead_id), -1)
                if after is not None:
                    self.workload_for_change(after).change(str(lead_id), +1)
        # Events go straight to the event store: `Application.save` checks each object it is
        # given against a runtime Protocol, ~9% of a batch's time. Only aggregates the
        # library must see whole to snapshot them go through it, after the others (their
        # streams are independent), all in one transaction.
        snapshotted = self.log.snapshotting_intervals
        events: list[Any] = []
        whole: list[Aggregate] = []
        for aggregate in self.aggregates.values():
            if not aggregate.pending_events:
                continue
            if type(aggregate) in snapshotted:
                whole.append(aggregate)
            else:
                events.extend(aggregate.collect_events())
        with _recorder_of(self.log).transaction(commit=True):
            if events:
                self.log.events.put(events)
            if whole:
                self.log.save(*whole)

    def _get(self, aggregate_id: UUID) -> Aggregate | None:
        if aggregate_id in self.aggregates:
            return self.aggregates[aggregate_id]
        if aggregate_id in self.loaded:
            return self.loaded[aggregate_id]
        # Kept, so the workload a decision counted is the one it changes when saving
        # (`open_leads` then `workload_for_change`): one read per stream per unit.
        try:
            aggregate: Aggregate | None = self.log.repository.get(aggregate_id)
        except AggregateNotFoundError:
            aggregate = None
        self.loaded[aggregate_id] = aggregate
        return aggregate

    def _index_id(self, kind: str, value: str) -> UUID:
        index_id = self.index_ids.get((kind, value))
        if index_id is None:
            index_id = self.index_ids[kind, value] = identity_index_id(kind, value)
        return index_id

    def _track(self, aggregate: Aggregate) -> None:
        self.aggregates[aggregate.id] = aggregate

    def add(self, event: IncomingEvent, key: str | None) -> Appended:
        if key is not None:
            earlier = self._earlier_answer(key, event.fingerprint)
            if earlier is not None:
                return earlier
        event_id = event.event_id or str(uuid4())
        if event.type in LEADLESS_TYPES:
            result = self._record_spend(event, event_id)
        elif event.is_capture:
            result = self._capture(event, event_id)
        else:
            result = self._record_on_lead(event, event_id)
        if key is not None:
            self._track(
                IdempotencyRecord.remember(
                    idempotency_record_id(key, self.scope),
                    fingerprint=event.fingerprint,
                    event_id=result.event_id,
                    lead_id=result.lead_id,
                    sequence=result.sequence,
                    new_lead=result.new_lead,
                )
            )
            self.seen_keys[key] = (event.fingerprint, result)
        return result

    def _earlier_answer(self, key: str, fingerprint: str) -> Appended | None:
        if key in self.seen_keys:
            seen_fingerprint, seen = self.seen_keys[key]
            record_fingerprint = seen_fingerprint
            answer = Appended(seen.event_id, seen.lead_id, seen.sequence, seen.new_lead, True)
        else:
            record = self._record(key, fingerprint)
            if record is None:
                return None
            record_fingerprint = record.fingerprint
            answer = Appended(
                record.event_id, record.lead_id, record.sequence, record.new_lead, True
            )
        if record_fingerprint != fingerprint:
            raise IdempotencyKeyReused(
                f"idempotency key {key!r} was already used for a different event"
            )
        return answer

    def _record_ids(self, key: str) -> list[UUID]:
        """Where the answer to `key` may be recorded: in its scope, and (read only) where
        keys were kept before they were scoped."""
        if self.scope is None:
            return [idempotency_record_id(key)]
        return [idempotency_record_id(key, self.scope), idempotency_record_id(key)]

    def _record(self, key: str, fingerprint: str) -> IdempotencyRecord | None:
        """The record of an earlier post with `key` in this scope. A record kept before
        keys were scoped counts only for the same event: its key may have been another
        integration's."""
        scoped, *unscoped = self._record_ids(key)
        record = self._get(scoped)
        if isinstance(record, IdempotencyRecord):
            return record
        for record_id in unscoped:
            older = self._get(record_id)
            if isinstance(older, IdempotencyRecord) and older.fingerprint == fingerprint:
                return older
        return None

    def _check_event_id(self, lead: Lead, event_id: str) -> None:
        """Event ids are unique in a lead's stream: a decision names the event it answers
        by its id. Another integration's id (keys are scoped per API key) may clash."""
        if event_id in lead.event_ids:
            raise EventIdInUse(
                f"lead {lead.id} already has an event {event_id!r} (from another API key); "
                "use another event_id",
                [{"path": "/event_id", "message": "already used on this lead"}],
            )

    def _capture(self, event: IncomingEvent, event_id: str) -> Appended:
        lead_id: UUID | None = None
        unindexed: list[UUID] = []
        # Email first: when email and phone point at different leads, the email wins.
        for kind in ("email", "phone"):
            if kind not in event.identities:
                continue
            index_id = self._index_id(kind, event.identities[kind])
            index = self._get(index_id)
            if isinstance(index, IdentityIndex):
                lead_id = lead_id or index.lead_id
            else:
                unindexed.append(index_id)
        new_lead = lead_id is None
        if lead_id is None:
            lead = Lead.capture(uuid4(), event_id, event.occurred_at, event.data)
            self.adopt(lead, is_new=True)
        else:
            existing = self._get(lead_id)
            assert isinstance(existing, Lead)
            lead = existing
            # Checked before recording: the touch merges its attributes into the lead's.
            full = merged_attributes_fault(lead.state.attributes, event.data.get("attributes", {}))
            if full is not None:
                raise LeadAttributesFull(full.message, [full.as_dict()])
            self._check_event_id(lead, event_id)
            self.adopt(lead)
            lead.record("lead.captured", event_id, event.occurred_at, event.data)
        for index_id in unindexed:
            self._track(IdentityIndex.for_identity(index_id, lead.id))
        return Appended(event_id, lead.id, lead.version, new_lead, False)

    def _record_on_lead(self, event: IncomingEvent, event_id: str) -> Appended:
        assert event.lead_id is not None
        lead = self._get(event.lead_id)
        if not isinstance(lead, Lead):
            raise LeadNotFound(f"no lead {event.lead_id}")
        check_external_event(lead.state, event.type, event.data)
        self._check_event_id(lead, event_id)
        if event.type == "lead.claimed":
            rep_id = str(event.data["rep_id"])
            # Server time, not the client's occurred_at: a back-dated claim gains nothing.
            day = self._check_claimant(rep_id, lead.state, datetime.now(UTC))
            self.workload_for_change(rep_id).count_claim(str(lead.id), day)
        self.adopt(lead)
        lead.record(event.type, event_id, event.occurred_at, event.data)
        return Appended(event_id, lead.id, lead.version, False, False)

    def _check_claimant(self, rep_id: str, lead: LeadState, at: datetime) -> str:
        """Raise unless `rep_id` may claim this lead at `at` (see `domain.pool`); returns
        the claim's day, which the daily limit counts by."""
        day = claim_day(at)
        workload = self._existing(rep_workload_id(rep_id), RepWorkload)
        rep = self.directory.rep(rep_id) if self.directory else None
        claims_today = workload.claims.get(day, 0) if workload else 0
        check_claim(lead, rep_id, rep, self.open_leads(rep_id), claims_today, self.pool, at)
        return day

    def _record_spend(self, event: IncomingEvent, event_id: str) -> Appended:
        campaign_key = str(event.data["campaign_id"])
        stream_id = campaign_id_for(campaign_key)
        campaign = self._get(stream_id)
        if not isinstance(campaign, Campaign):
            campaign = Campaign.register(stream_id, campaign_key)
        sequence = campaign.record_spend(event_id, event.occurred_at, event.data)
        self._track(campaign)
        return Appended(event_id, None, sequence, False, False)


class LogRecorder(SQLAlchemyApplicationRecorder):
    """eventsourcing_sqlalchemy's recorder (same table, lock, NOTIFY and notification ids),
    writing with one multi-row `INSERT ... RETURNING id` (SQLAlchemy Core) instead of the ORM
    unit of work: 3-5x less CPU per row, the biggest cost of a batch. Also reads many
    streams in one query. Statements are built once: building and hashing a statement per
    call cost more than running it on SQLite."""

    def __init__(self, datastore: SQLAlchemyDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        table = self.events_record_cls.__table__
        self._insert = insert(table).returning(table.c.id)
        self._selects: dict[int, Select[Any]] = {}
        self._stream_selects: dict[tuple[bool, bool, bool, bool], Select[Any]] = {}
        self._stream_version = select(func.max(table.c.originator_version)).where(
            table.c.originator_id == bindparam("stream_id")
        )

    def stream_version(self, originator_id: UUID) -> int | None:
        """The version of a stream's last event (None: no events), read from the primary
        key alone: how a reader tells whether what it decoded earlier is still current."""
        with self.transaction(commit=False) as session:
            found = (
                session.connection()
                .execute(self._stream_version, {"stream_id": originator_id})
                .scalar_one_or_none()
            )
        return None if found is None else int(found)

    def _insert_stored_events(
        self, session: Session, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int]:
        if not stored_events:
            return []
        rows = [
            {
                "originator_id": e.originator_id,
                "originator_version": e.originator_version,
                "topic": e.topic,
                "state": e.state,
            }
            for e in stored_events
        ]
        connection = session.connection()
        if connection.dialect.name == "postgresql":
            # The library's lock (so ids commit in the order they are given) and NOTIFY
            # (delivered at commit), sent in one round trip instead of two.
            table_name = self.events_table_name
            if self.schema_name is not None:
                table_name = f"{self.schema_name}.{table_name}"
            connection.exec_driver_sql(
                f"LOCK TABLE {table_name} IN EXCLUSIVE MODE; NOTIFY {self.channel_name}"
            )
        else:
            self._lock_table(session)
        # One writer at a time (the lock above; SQLite's single writer) numbers the rows in
        # the order given, so sorting gives each event its id. Asking SQLAlchemy for that
        # order (`sort_by_parameter_order`) costs 1.3-3x more per row.
        return sorted(connection.execute(self._insert, rows).scalars())

    def select_events(
        self,
        originator_id: UUID | str,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> list[StoredEvent]:
        """The library's `select_events` (one stream's events, by version), with a Core
        statement built once per shape instead of an ORM query per call: every aggregate
        read and fast-forward comes here (~10% of the worker's CPU went to building and
        running those queries)."""
        shape = (gt is not None, lte is not None, desc, limit is not None)
        statement = self._stream_selects.get(shape)
        if statement is None:
            statement = self._stream_selects[shape] = self._stream_select(*shape)
        params = {"stream_id": originator_id, "gt": gt, "lte": lte, "limit": limit}
        with self.transaction(commit=False) as session:
            rows = session.connection().execute(statement, params)
            return [
                StoredEvent(
                    originator_id=row.originator_id,
                    originator_version=row.originator_version,
                    topic=row.topic,
                    state=bytes(row.state),
                )
                for row in rows
            ]

    def _stream_select(self, gt: bool, lte: bool, desc: bool, limit: bool) -> Select[Any]:
        table = self.events_record_cls.__table__
        version = table.c.originator_version
        statement = select(table.c.originator_id, version, table.c.topic, table.c.state).where(
            table.c.originator_id == bindparam("stream_id")
        )
        if gt:
            statement = statement.where(version > bindparam("gt"))
        if lte:
            statement = statement.where(version <= bindparam("lte"))
        statement = statement.order_by(version.desc() if desc else version)
        if limit:
            statement = statement.limit(bindparam("limit"))
        return statement

    def select_streams(self, originator_ids: Sequence[UUID]) -> dict[UUID, list[StoredEvent]]:
        """The stored events of each given stream that has any, in order."""
        streams: dict[UUID, list[StoredEvent]] = {}
        with self.transaction(commit=False) as session:
            connection = session.connection()
            for start in range(0, len(originator_ids), _IDS_PER_QUERY):
                chunk = list(originator_ids[start : start + _IDS_PER_QUERY])
                # Padded to a power of two (repeating an id): a handful of statements.
                size = 1 << (len(chunk) - 1).bit_length()
                chunk += chunk[-1:] * (size - len(chunk))
                params = {f"id{i}": stream_id for i, stream_id in enumerate(chunk)}
                for row in connection.execute(self._select_of(size), params):
                    streams.setdefault(row.originator_id, []).append(
                        StoredEvent(
                            originator_id=row.originator_id,
                            originator_version=row.originator_version,
                            topic=row.topic,
                            state=bytes(row.state),
                        )
                    )
        return streams

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> list[Notification]:
        """The library's notification read (same rows, same order), as one Core statement:
        its ORM query built an object per row and cost 2-3x as much, the biggest share of a
        projection rebuild's reading."""
        table = self.events_record_cls.__table__
        query = self._notifications()
        if start is not None:
            query = query.where(table.c.id >= start if inclusive_of_start else table.c.id > start)
        if stop is not None:
            query = query.where(table.c.id <= stop)
        if topics:
            query = query.where(table.c.topic.in_(topics))
        return self._read_notifications(query.order_by(table.c.id).limit(limit))

    def select_stream_notifications(
        self, originator_id: UUID, start: int, stop: int, topics: Sequence[str]
    ) -> list[Notification]:
        """One stream's notifications of `topics` with ids from `start` to `stop`."""
        table = self.events_record_cls.__table__
        query = self._notifications().where(
            table.c.originator_id == originator_id,
            table.c.id >= start,
            table.c.id <= stop,
            table.c.topic.in_(topics),
        )
        return self._read_notifications(query.order_by(table.c.id))

    def _notifications(self) -> Select[Any]:
        table = self.events_record_cls.__table__
        return select(
            table.c.id,
            table.c.originator_id,
            table.c.originator_version,
            table.c.topic,
            table.c.state,
        )

    def _read_notifications(self, query: Select[Any]) -> list[Notification]:
        with self.transaction(commit=False) as session:
            rows = session.connection().execute(query).all()
        return [
            Notification(
                id=id_,
                originator_id=originator_id,
                originator_version=originator_version,
                topic=topic,
                state=bytes(state),
            )
            for id_, originator_id, originator_version, topic, state in rows
        ]

    def _select_of(self, size: int) -> Select[Any]:
        statement = self._selects.get(size)
        if statement is None:
            table = self.events_record_cls.__table__
            ids = [bindparam(f"id{i}", type_=table.c.originator_id.type) for i in range(size)]
            statement = (
                select(
                    table.c.originator_id,
                    table.c.originator_version,
                    table.c.topic,
                    table.c.state,
                )
                .where(table.c.originator_id.in_(ids))
                .order_by(table.c.originator_id, table.c.originator_version)
            )
            self._selects[size] = statement
        return statement


# A power of two, well under SQLite's and PostgreSQL's limits on parameters per statement.
_IDS_PER_QUERY = 512


class LogDatastore(SQLAlchemyDatastore):
    """eventsourcing_sqlalchemy's datastore, whose PostgreSQL engine tests a pooled connection
    before lending it (`pool_pre_ping`, as the store's own engine does): after PostgreSQL
    restarts, the next transaction gets a new connection instead of failing on a dead one.
    (A SQLite file's connections do not die, and the ping would cost every transaction.)"""

    def __init__(self, *, url: str | None = None, **kwargs: Any) -> None:
        if url is not None and not url.startswith("sqlite"):
            kwargs["pool_pre_ping"] = True
        super().__init__(url=url, **kwargs)


class LogFactory(SQLAlchemyFactory):
    """eventsourcing_sqlalchemy with `LogRecorder` and `LogDatastore` (topic
    `leadflow.eventlog:LogFactory`)."""

    datastore_class = LogDatastore
    application_recorder_class = LogRecorder


def _lone_capture(events: Sequence[IncomingEvent]) -> bool:
    """An append of one capture: written assuming its identities (and key) are new, without
    reading first (docs/decisions.md, "Storage")."""
    return len(events) == 1 and events[0].is_capture


def _recorder_of(log: EventLog) -> LogRecorder:
    recorder = log.recorder
    assert isinstance(recorder, LogRecorder), "open the log with open_event_log()"
    return recorder


def open_event_log(sqlalchemy_url: str) -> EventLog:
    """The one way to construct the log (used by the composition root and the tests)."""
    return EventLog(
        env={
            "PERSISTENCE_MODULE": f"{__name__}:{LogFactory.__qualname__}",
            "SQLALCHEMY_URL": sqlalchemy_url,
            # Aggregates read through the repository (rep workloads, team rotations: long
            # streams every assignment reads) are kept, and each read only fetches the
            # events after the kept version ("fast-forward", the library's default): 3-6
            # events decoded per decision instead of 47-110. Always up to date with other
            # processes' writes: the kept copy is never trusted for the latest version.
            "AGGREGATE_CACHE_MAXSIZE": str(AGGREGATE_CACHE_SIZE),
            "AGGREGATE_CACHE_FASTFORWARD": "y",
        }
    )
