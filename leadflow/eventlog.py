"""The event log: an eventsourcing Application over SQLite or PostgreSQL.

`append` is the commit point of the ingest path (SPEC §3): identity resolution, the state
guards and the idempotency record all happen inside one transaction, retried when a
concurrent writer got there first. The log is also the outbox the dispatcher follows.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, TypeVar
from uuid import UUID, uuid4, uuid5

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, Notification

from domain.directory import Directory
from domain.errors import (
    DomainError,
    FieldError,
    IdempotencyKeyReused,
    InvalidEvent,
    LeadNotFound,
    RepAtCapacity,
    RepInactive,
)
from domain.events import LEADLESS_TYPES, IncomingEvent
from domain.identity import (
    LEADFLOW_NAMESPACE,
    campaign_id_for,
    idempotency_record_id,
    identity_index_id,
)
from domain.lead import (
    EXTERNAL_LEAD_TOPICS,
    Campaign,
    IdempotencyRecord,
    IdentityIndex,
    Lead,
    LeadEvent,
)
from domain.lifecycle import ActiveRuleset, step
from domain.state import LeadState, LoggedEvent, check_external_event, state_at_trigger
from domain.workload import RepWorkload, TeamRotation, rep_workload_id, team_rotation_id

log = logging.getLogger(__name__)

T = TypeVar("T", bound=Aggregate)

MAX_CONFLICT_RETRIES = 50


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
    ) -> list[Appended]:
        """Append validated events atomically, all or nothing, in order.

        `keys[i]` is event i's idempotency key (client event id or Idempotency-Key): a key
        seen before answers the earlier result with `duplicate: true` and appends nothing.
        `directory` is what claims are checked against (rep known, active, with room).
        """
        for _ in range(MAX_CONFLICT_RETRIES):
            try:
                return self._append_once(events, keys, directory)
            except IntegrityError:
                # Another writer appended to one of these streams first: read again, retry.
                continue
        raise RuntimeError("could not append: too many concurrent writers on one stream")

    def _append_once(
        self,
        events: Sequence[IncomingEvent],
        keys: Sequence[str | None],
        directory: Directory | None,
    ) -> list[Appended]:
        unit = _UnitOfWork(self, directory)
        results: list[Appended] = []
        for index, (event, key) in enumerate(zip(events, keys, strict=True)):
            try:
                results.append(unit.add(event, key))
            except DomainError as exc:
                raise ItemRejected(index, exc) from exc
        unit.save()
        return results

    def decide(
        self,
        lead_id: UUID,
        trigger: str,
        cause_id: str,
        now: datetime,
        active: ActiveRuleset,
        directory: Directory,
    ) -> tuple[list[LoggedEvent], LeadState]:
        """Run the lifecycle step for `trigger` and append its decisions to the lead's stream;
        returns them with the lead's state after them (folded from the whole stream).

        Idempotent: decisions already recorded for `cause_id` (a retried activity) are
        returned instead of being decided again. A concurrent append is retried on the
        fresh state.
        """
        for _ in range(MAX_CONFLICT_RETRIES):
            unit = _UnitOfWork(self, directory)
            events = [e for e in self.events.get(lead_id) if isinstance(e, LeadEvent)]
            lead: Any = None
            for event in events:
                lead = event.mutate(lead)
            if not isinstance(lead, Lead):
                raise LeadNotFound(f"no lead {lead_id}")
            earlier = [e for e in events if e.caused_by == cause_id and e.event_id != cause_id]
            if earlier:
                return [e.to_logged() for e in earlier], lead.state
            logged = [e.to_logged() for e in events]
            at_trigger = state_at_trigger(str(lead_id), logged, cause_id)
            unit.adopt(lead)
            result = step(at_trigger, trigger, active, directory, unit, now)
            decided = [
                lead.record_decision(
                    decision,
                    event_id=str(uuid5(LEADFLOW_NAMESPACE, f"decision:{lead_id}:{cause_id}:{i}")),
                    occurred_at=now,
                    ruleset_version=active.version,
                    caused_by=cause_id,
                )
                for i, decision in enumerate(result.decisions)
            ]
            for team_id, rep_id in result.rotations:
                unit.rotation_for_change(team_id).choose(str(lead_id), rep_id)
            try:
                unit.save()
            except IntegrityError:
                continue
            return [e.to_logged() for e in decided], lead.state
        raise RuntimeError("could not append decisions: too many concurrent writers")

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
        events = [e for e in self.events.get(lead_id) if isinstance(e, LeadEvent)]
        if not events:
            raise LeadNotFound(f"no lead {lead_id}")
        return [e.to_logged() for e in events]

    def read_lead_events_after(
        self, position: int, limit: int
    ) -> tuple[list[LoggedEvent], int | None]:
        """External lead events after log `position`, and the last position read (or None)."""
        notifications: Sequence[Notification] = self.recorder.select_notifications(
            start=position,
            limit=limit,
            topics=EXTERNAL_LEAD_TOPICS,
            inclusive_of_start=False,
        )
        if not notifications:
            return [], None
        events: list[LoggedEvent] = []
        for notification in notifications:
            event = self.mapper.to_domain_event(notification)
            assert isinstance(event, LeadEvent)
            events.append(event.to_logged())
        return events, notifications[-1].id

    def max_position(self) -> int:
        return self.recorder.max_notification_id() or 0


class _UnitOfWork:
    """Aggregates touched by one append, saved in one transaction. A batch sees its own
    earlier items; every change of a lead's open owner moves the reps' workloads with it."""

    def __init__(self, log: EventLog, directory: Directory | None = None) -> None:
        self.log = log
        self.directory = directory
        self.aggregates: dict[UUID, Aggregate] = {}
        self.seen_keys: dict[str, tuple[str, Appended]] = {}
        self.owner_before: dict[UUID, str | None] = {}

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
        pending = [a for a in self.aggregates.values() if a.pending_events]
        if pending:
            self.log.save(*pending)

    def _get(self, aggregate_id: UUID) -> Aggregate | None:
        if aggregate_id in self.aggregates:
            return self.aggregates[aggregate_id]
        try:
            aggregate: Aggregate = self.log.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        return aggregate

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
                    idempotency_record_id(key),
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
            record = self._get(idempotency_record_id(key))
            if not isinstance(record, IdempotencyRecord):
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

    def _capture(self, event: IncomingEvent, event_id: str) -> Appended:
        lead_id: UUID | None = None
        unindexed: list[UUID] = []
        # Email first: when email and phone point at different leads, the email wins.
        for kind in ("email", "phone"):
            if kind not in event.identities:
                continue
            index_id = identity_index_id(kind, event.identities[kind])
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
        if event.type == "lead.claimed":
            self._check_claimant(str(event.data["rep_id"]))
        self.adopt(lead)
        lead.record(event.type, event_id, event.occurred_at, event.data)
        return Appended(event_id, lead.id, lead.version, False, False)

    def _check_claimant(self, rep_id: str) -> None:
        rep = self.directory.rep(rep_id) if self.directory else None
        if rep is None:
            raise InvalidEvent([FieldError("/data/rep_id", f"no rep {rep_id!r} in the directory")])
        if not rep.active:
            raise RepInactive(f"rep {rep_id} is not active")
        if self.open_leads(rep_id) >= rep.capacity:
            raise RepAtCapacity(
                f"rep {rep_id} holds {self.open_leads(rep_id)} open leads (capacity {rep.capacity})"
            )

    def _record_spend(self, event: IncomingEvent, event_id: str) -> Appended:
        campaign_key = str(event.data["campaign_id"])
        stream_id = campaign_id_for(campaign_key)
        campaign = self._get(stream_id)
        if not isinstance(campaign, Campaign):
            campaign = Campaign.register(stream_id, campaign_key)
        sequence = campaign.record_spend(event_id, event.occurred_at, event.data)
        self._track(campaign)
        return Appended(event_id, None, sequence, False, False)


def open_event_log(sqlalchemy_url: str) -> EventLog:
    """The one way to construct the log (used by the composition root and the tests)."""
    return EventLog(
        env={
            "PERSISTENCE_MODULE": "eventsourcing_sqlalchemy",
            "SQLALCHEMY_URL": sqlalchemy_url,
        }
    )
