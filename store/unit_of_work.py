"""The aggregates one append or one decision touches, read once and saved in one
transaction; every change of a lead's open owner moves the reps' workloads with it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import (
    AggregateNotFoundError,
    project_aggregate,
)
from eventsourcing.domain import Aggregate

from domain.directory import Directory
from domain.lead import Lead
from domain.workload import RepWorkload, TeamRotation, rep_workload_id, team_rotation_id
from store.application import LogApplication, recorder_of

T = TypeVar("T", bound=Aggregate)


class UnitOfWork:
    """Aggregates touched by one append or one decision, saved in one transaction. Later
    reads see earlier changes; every change of a lead's open owner moves the reps'
    workloads with it (`save`)."""

    def __init__(self, log: LogApplication, directory: Directory | None = None) -> None:
        self.log = log
        self.directory = directory
        self.aggregates: dict[UUID, Aggregate] = {}
        # Streams read (by `load`, or on first use): the aggregate, or None for a stream
        # with no events.
        self.loaded: dict[UUID, Aggregate | None] = {}
        self.owner_before: dict[UUID, str | None] = {}

    def load(self, ids: Sequence[UUID]) -> None:
        wanted = [
            i for i in dict.fromkeys(ids) if i not in self.loaded and i not in self.aggregates
        ]
        if not wanted:
            return
        streams = recorder_of(self.log).select_streams(wanted)
        to_domain_event = self.log.mapper.to_domain_event
        for stream_id in wanted:
            stored = streams.get(stream_id)
            self.loaded[stream_id] = (
                project_aggregate(None, map(to_domain_event, stored)) if stored else None
            )

    def adopt(self, lead: Lead, *, is_new: bool = False) -> None:
        if lead.id not in self.owner_before:
            self.owner_before[lead.id] = None if is_new else lead.state.open_owner
        self.track(lead)

    def existing(self, aggregate_id: UUID, kind: type[T]) -> T | None:
        found = self.get(aggregate_id)
        return found if isinstance(found, kind) else None

    def open_leads(self, rep_id: str) -> int:
        workload = self.existing(rep_workload_id(rep_id), RepWorkload)
        return workload.open_leads if workload else 0

    def last_assigned(self, team_id: str) -> str | None:
        rotation = self.existing(team_rotation_id(team_id), TeamRotation)
        return rotation.last_assigned if rotation else None

    def workload_for_change(self, rep_id: str) -> RepWorkload:
        workload = self.existing(rep_workload_id(rep_id), RepWorkload) or RepWorkload.open(rep_id)
        self.track(workload)
        return workload

    def rotation_for_change(self, team_id: str) -> TeamRotation:
        rotation = self.existing(team_rotation_id(team_id), TeamRotation)
        rotation = rotation or TeamRotation.open(team_id)
        self.track(rotation)
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
        with recorder_of(self.log).transaction(commit=True):
            if events:
                self.log.events.put(events)
            if whole:
                self.log.save(*whole)

    def get(self, aggregate_id: UUID) -> Aggregate | None:
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

    def track(self, aggregate: Aggregate) -> None:
        self.aggregates[aggregate.id] = aggregate
