"""How the flow behind the API is doing, read from the database: how far each follower of
the log (the dispatcher, each read model) is behind it, in events and in seconds, and what
waits in the quarantine per stage with its newest error. `GET /v1/status` answers it
(with Temporal's and the worker's reachability) and `/metrics` exports it at each scrape
(`api.metrics`), so any API replica reports the same figures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from delivery.dispatcher import FOLLOWER_NAME as DISPATCHER
from domain.lead import EXTERNAL_LEAD_TOPICS
from leadflow.bootstrap import Store
from projections.base import (
    Counted,
    PartitionLag,
    Projection,
    partition_lags,
    slowest_and_behind,
    tracking_name,
)
from store.application import recorder_of
from store.leases import PROJECTOR_GROUP, Lease, LeaseStore
from store.log import EventLog
from store.partitions import Partitions
from store.quarantine import DELIVERY, StageSummary, projection_stage

# A follower whose oldest waiting event has waited longer than this is reported `behind`.
BEHIND_AFTER_SECONDS = 60.0


@dataclass(frozen=True)
class FollowerLag:
    """One follower of the log: its position, the events of its topics after it, and how
    long the oldest of them has waited (0 when there are none)."""

    name: str  # "dispatcher" or "projection:<name>"
    stage: str  # its quarantine stage
    position: int
    lag_events: int
    lag_seconds: float

    @property
    def behind(self) -> bool:
        return self.lag_seconds > BEHIND_AFTER_SECONDS


@dataclass(frozen=True)
class FlowStatus:
    log_position: int
    followers: list[FollowerLag]  # each at its slowest partition
    quarantine: dict[str, StageSummary]  # by stage, stages with open items only
    leases: list[Lease]  # the projector processes' partitions and who follows each
    # By partition: the most events one of its followers has still to read there.
    lag_by_partition: dict[int, int]


def read_flow_status(store: Store, projections: Sequence[Projection], now: datetime) -> FlowStatus:
    event_log = store.event_log
    followers = [(DISPATCHER, DELIVERY, EXTERNAL_LEAD_TOPICS)] + [
        (tracking_name(p), projection_stage(p.name), p.topics) for p in projections
    ]
    leases = LeaseStore(store.engine).leases(PROJECTOR_GROUP)
    count = max(1, len(leases))
    lags: list[FollowerLag] = []
    by_partition: dict[int, list[PartitionLag]] = {}
    counted: Counted = {}
    with store.engine.connect() as conn:
        log_position = event_log.max_position()
        for name, stage, topics in followers:
            partitions = partition_lags(conn, event_log, name, topics, count, counted)
            oldest: list[datetime] = []
            for partition, lag in partitions.items():
                by_partition.setdefault(partition, []).append(lag)
                if lag.events:
                    only = Partitions.one_of(count, partition)
                    since = _oldest_waiting(event_log, topics, lag.position, only)
                    oldest.extend([since] if since else [])
            seconds = max(0.0, (now - min(oldest)).total_seconds()) if oldest else 0.0
            slowest, behind = slowest_and_behind(partitions)
            lags.append(FollowerLag(name, stage, slowest, behind, seconds))
    return FlowStatus(
        log_position,
        lags,
        store.quarantine.stages(),
        leases,
        {partition: max(lag.events for lag in found) for partition, found in by_partition.items()},
    )


def _oldest_waiting(
    event_log: EventLog, topics: tuple[str, ...], position: int, partitions: Partitions | None
) -> datetime | None:
    """When the first event of `topics` (of `partitions`' streams) after `position` was
    recorded."""
    found = recorder_of(event_log).select_notifications(
        start=position, limit=1, topics=topics, inclusive_of_start=False, partitions=partitions
    )
    if not found:
        return None
    event = event_log.mapper.to_domain_event(found[0])
    recorded = getattr(event, "timestamp", None)  # every leadflow event has one
    return recorded if isinstance(recorded, datetime) else None
