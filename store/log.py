"""The event log: an eventsourcing Application over SQLite or PostgreSQL, assembled from
its jobs — appends (`store.ingest`), decisions (`store.decisions`) and reads
(`store.application`) — over leadflow's recorder (`store.recorder`). The log is also the
outbox the dispatcher follows."""

from __future__ import annotations

import logging

from prometheus_client import Counter

from store.decisions import Decisions
from store.erasure import Erasure
from store.ingest import Ingest
from store.recorder import LogFactory

log = logging.getLogger(__name__)

# Aggregates the repository keeps per process (LRU): every rep and team, and the leads read
# last (a lead's aggregate is a few KB).
AGGREGATE_CACHE_SIZE = 1000

LOG_APPENDS = Counter(
    "leadflow_log_appends",
    "Events appended to the log, by who appended them (ingest, decisions, tracking)",
    ["origin"],
)


class EventLog(Ingest, Decisions, Erasure):
    """leadflow's one event store: appends, decisions, erasure and reads. Tables: `leadflow_events`
    (+ the library's own)."""

    # The library names an application's tables after the class that sets `name`: every
    # subclass must say it again, or the log would be looked for in other tables.
    name = "LeadFlow"


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
