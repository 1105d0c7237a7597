"""The event log as an eventsourcing Application: its settings, and the reads every hop
uses (a lead's stream and state, the external events after a position, one stream's held
events, the log's end) plus the idempotent record of one decided event."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from functools import cached_property
from typing import Any, ClassVar, TypeVar
from uuid import UUID

from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
)
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    IntegrityError,
    Mapper,
    Notification,
)

from domain.errors import LeadNotFound
from domain.identity import legacy_event_id
from domain.lead import (
    EXTERNAL_LEAD_TOPICS,
    Lead,
)
from domain.state import (
    Decision,
    LeadState,
    LoggedEvent,
)
from domain.workload import RepWorkload, TeamRotation
from store.decoder import LoggedEventDecoder, NotALeadEvent
from store.partitions import Partitions
from store.recorder import LogRecorder
from store.sealing import LeadKeyring, SealingMapper

log = logging.getLogger(__name__)

T = TypeVar("T", bound=Aggregate)

MAX_CONFLICT_RETRIES = 50


class LogApplication(Application):
    """The log's settings and reads, the base of `store.log.EventLog`."""

    log_section_size = 1000
    # Workload and rotation streams grow with every assignment; read them from snapshots.
    snapshotting_intervals: ClassVar[dict[Any, int]] = {
        RepWorkload: 50,
        TeamRotation: 50,
    }

    def construct_mapper(self) -> Mapper[UUID]:
        """The library's mapper that seals leads' personal data (`store.sealing`), with the
        keyring it reads the leads' keys from (in the log's own transactions)."""
        plain: Mapper[UUID] = self.factory.mapper(transcoder=self.construct_transcoder())
        mapper = SealingMapper(plain.transcoder, plain.compressor, plain.cipher)
        mapper.keyring = LeadKeyring(self._transaction)
        return mapper

    def _transaction(self, commit: bool) -> Any:
        # Any eventsourcing_sqlalchemy recorder (leadflow's, or the library's stock one a
        # benchmark reads with): the session of the transaction under way, else a new one.
        recorder: Any = self.recorder
        return recorder.transaction(commit=commit)

    @property
    def keyring(self) -> LeadKeyring:
        mapper = self.mapper
        assert isinstance(mapper, SealingMapper)
        return mapper.keyring

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
        decode_page = self.logged_event_decoder.decode_page
        try:
            events = decode_page(self.recorder.select_events(lead_id))
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
        return self.lead_page_after(position, limit)[0]

    def lead_page_after(
        self, position: int, limit: int, partitions: Partitions | None = None
    ) -> tuple[list[tuple[int, LoggedEvent]], int]:
        """`read_through` of the external lead events, each decoded with its position."""
        notifications, last = self.read_through(
            position, limit, EXTERNAL_LEAD_TOPICS, partitions=partitions
        )
        decoder = self.logged_event_decoder
        decoder.load_keys(notifications)
        return [(n.id, decoder.decode(n)) for n in notifications], last

    def read_through(
        self,
        position: int,
        limit: int,
        topics: Sequence[str],
        until: int | None = None,
        partitions: Partitions | None = None,
    ) -> tuple[Sequence[Notification], int]:
        """Up to `limit` events of `topics` (of `partitions`' streams) after log `position`
        and up to `until`, in log order, and the position read through: the last one's when
        `limit` were found, else the log's end as it was read (or `until`), so that a
        follower of some partitions moves past the others' events. The end is read first:
        ids commit in order (the append lock), so every event up to it is there to read."""
        end = self.max_position() if until is None else min(until, self.max_position())
        if end <= position:
            return [], position
        notifications = recorder_of(self).select_notifications(
            start=position,
            limit=limit,
            stop=end,
            topics=topics,
            inclusive_of_start=False,
            partitions=partitions,
        )
        return notifications, notifications[-1].id if len(notifications) == limit else end

    def stream_notifications(
        self, stream_id: UUID, start: int, stop: int, topics: Sequence[str]
    ) -> list[Notification]:
        """One stream's events of `topics` at log positions `start` to `stop` (both
        included), in log order: what a follower held for that stream while it was in
        quarantine."""
        return recorder_of(self).select_stream_notifications(stream_id, start, stop, topics)

    def max_position(self) -> int:
        return self.recorder.max_notification_id() or 0

    @cached_property
    def logged_event_decoder(self) -> LoggedEventDecoder:
        """How this log's stored lead events are read as `LoggedEvent`s (see the class)."""
        return LoggedEventDecoder(self.mapper)


def recorder_of(log: LogApplication) -> LogRecorder:
    recorder = log.recorder
    assert isinstance(recorder, LogRecorder), "open the log with open_event_log()"
    return recorder
