"""Prometheus metrics of the API process, `GET /metrics` (text format).

- Every request, by method, route template (never the raw path: ids and tokens stay out
  of the labels) and status, and how long it took (`RequestMetrics`, observed by the one
  request middleware, `api.request_log`: a few microseconds a request).
- Read from the database at each scrape (`FlowCollector`): the log's position, each
  follower's lag in events and seconds, the quarantine's open items by stage and status.
- What the modules this process runs count themselves: group commits
  (`api.ingest_writer`), log appends (`store.log`), replay runs (`replay.jobs`).

The worker and the projector serve their own registries on their own ports
(`leadflow.processes`). The endpoint needs no key, as is usual for a scrape target: it
holds counts, route templates and stage names, never a lead's data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import Scope

from api.flow_status import FlowStatus

log = logging.getLogger(__name__)

HTTP_REQUESTS = Counter(
    "leadflow_http_requests",
    "HTTP requests answered, by method, route template and status",
    ["method", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "leadflow_http_request_duration_seconds",
    "Time from a request's arrival to its answer's end, by method and route template",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# The label of a request no route matched (a 404, or a probe): one series for all of them.
UNMATCHED = "unmatched"


class RequestMetrics:
    """Counts and times HTTP requests by route template: `observe` is called once per
    request by the API's one request middleware (`api.request_log.RequestLog`), after the
    route was matched (FastAPI puts the route in the scope)."""

    def __init__(self) -> None:
        # The labelled children, found once per (method, route, status): `labels()` takes
        # a lock and builds a key on every call.
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, scope: Scope, status: int, seconds: float) -> None:
        count, duration = self._children(scope, status)
        count.inc()
        duration.observe(seconds)

    def _children(self, scope: Scope, status: int) -> tuple[Any, Any]:
        route = getattr(scope.get("route"), "path", None) or UNMATCHED
        method = scope["method"] if scope["method"] in METHODS else "OTHER"
        key = (method, route, status)
        found = self._series.get(key)
        if found is None:
            found = (
                HTTP_REQUESTS.labels(method, route, str(status)),
                HTTP_SECONDS.labels(method, route),
            )
            self._series[key] = found
        return found


class FlowCollector(Collector):
    """The flow's figures, read from the database when Prometheus scrapes (`read`). The
    database away: `leadflow_database_up 0` and nothing else, the scrape still answers."""

    def __init__(self, read: Callable[[], FlowStatus]) -> None:
        self.read = read

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "leadflow_database_up", "1 when the API could read the flow's figures from the log"
        )
        try:
            flow = self.read()
        except Exception as failed:
            log.warning("metrics: the flow's figures could not be read: %s", failed)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily(
            "leadflow_log_position", "The log's last position", value=flow.log_position
        )
        lag_events = GaugeMetricFamily(
            "leadflow_follower_lag_events",
            "Events of a follower's topics in the log after its position, not yet handled",
            labels=["follower"],
        )
        lag_seconds = GaugeMetricFamily(
            "leadflow_follower_lag_seconds",
            "How long the oldest event a follower has yet to handle has waited (0: caught up)",
            labels=["follower"],
        )
        for follower in flow.followers:
            lag_events.add_metric([follower.name], follower.lag_events)
            lag_seconds.add_metric([follower.name], follower.lag_seconds)
        yield lag_events
        yield lag_seconds
        quarantined = GaugeMetricFamily(
            "leadflow_quarantine_open",
            "Open quarantine items (a lead's event waiting for a retry or an operator), by "
            "stage and status",
            labels=["stage", "status"],
        )
        for stage, summary in sorted(flow.quarantine.items()):
            for status, count in summary.open.items():
                quarantined.add_metric([stage, status], count)
        yield quarantined
