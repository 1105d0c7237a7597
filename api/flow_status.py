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
from projections.base import Projection, events_after, tracking_name
from store.application import recorder_of
from store.leases import PROJECTOR_GROUP, Lease, LeaseStore
from store.log import EventLog
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
    followers: list[FollowerLag]
    quarantine: dict[str, StageSummary]  # by stage, stages with open items only
    leases: list[Lease]  # the projector processes' partitions and who follows each


def read_flow_status(store: Store, projections: Sequence[Projection], now: datetime) -> FlowStatus:
    event_log = store.event_log
    positions = store.positions.all()
    followers = [(DISPATCHER, DELIVERY, EXTERNAL_LEAD_TOPICS)] + [
        (tracking_name(p), projection_stage(p.name), p.topics) for p in projections
    ]
    lags: list[FollowerLag] = []
    with store.engine.connect() as conn:
        log_position = event_log.max_position()
        for name, stage, topics in followers:
            position = positions.get(name, 0)
            waiting = events_after(conn, event_log, topics, position)
            since = _oldest_waiting(event_log, topics, position) if waiting else None
            seconds = max(0.0, (now - since).total_seconds()) if since else 0.0
            lags.append(FollowerLag(name, stage, position, waiting, seconds))
    leases = LeaseStore(store.engine).leases(PROJECTOR_GROUP)
    return FlowStatus(log_position, lags, store.quarantine.stages(), leases)


def _oldest_waiting(event_log: EventLog, topics: tuple[str, ...], position: int) -> datetime | None:
    """When the first event of `topics` after `position` was recorded."""
    found = recorder_of(event_log).select_notifications(
        start=position, limit=1, topics=topics, inclusive_of_start=False
    )
    if not found:
        return None
    event = event_log.mapper.to_domain_event(found[0])
    recorded = getattr(event, "timestamp", None)  # every leadflow event has one
    return recorded if isinstance(recorded, datetime) else None
