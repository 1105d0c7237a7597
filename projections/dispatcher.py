"""The dispatcher: the log is the outbox (SPEC §3.2).

It follows the log from its tracked position and delivers every external lead event to
that lead's `LeadWorkflow` by signal-with-start. Events of one lead go in log order; leads
are delivered concurrently. The position moves only after a whole page is delivered, so a
crash or a Temporal outage re-delivers (the workflow drops sequences it has seen) and
never loses an event. It reads when the log grows (`projections.log_watch`), not on a timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable

from domain.state import LoggedEvent
from leadflow.eventlog import EventLog
from projections.follower import PositionStore
from projections.log_watch import LogWatch

log = logging.getLogger(__name__)

FOLLOWER_NAME = "dispatcher"

Deliver = Callable[[LoggedEvent], Awaitable[None]]


class Dispatcher:
    def __init__(
        self,
        event_log: EventLog,
        positions: PositionStore,
        deliver: Deliver,
        *,
        concurrency: int = 32,
        page_size: int = 500,
        poll_seconds: float = 0.2,
    ) -> None:
        self.event_log = event_log
        self.positions = positions
        self.deliver = deliver
        self.concurrency = concurrency
        self.page_size = page_size
        self.poll_seconds = poll_seconds

    async def run_forever(self, stop: asyncio.Event, watch: LogWatch | None = None) -> None:
        """Deliver until `stop` is set: whenever `watch` says the log grew, and at the latest
        every `watch.poll_seconds` (without a watch: every `poll_seconds`). On a delivery
        failure, back off and retry the page."""
        watch = watch or LogWatch(self.poll_seconds)
        backoff = self.poll_seconds
        while not stop.is_set():
            seen = watch.changes  # taken before the read: a later append ends the wait below
            try:
                delivered = await self.dispatch_page()
                backoff = self.poll_seconds
            except Exception as exc:
                backoff = min(backoff * 2, 5.0)
                # One line per failed attempt: an outage of Temporal would otherwise flood the log.
                log.warning("delivery failed (%s); retrying in %.1fs", exc, backoff)
                log.debug("delivery failure", exc_info=True)
                await _sleep_or_stop(stop, backoff)
                continue
            if delivered < self.page_size:  # it read up to the end of the log
                await watch.wait(seen, stop)

    async def dispatch_page(self) -> int:
        """Deliver the next page of events; returns how many were delivered."""
        position = await asyncio.to_thread(self.positions.get, FOLLOWER_NAME)
        events, last = await asyncio.to_thread(
            self.event_log.read_lead_events_after, position, self.page_size
        )
        if last is None:
            return 0
        by_lead: dict[str, list[LoggedEvent]] = defaultdict(list)
        for event in events:
            by_lead[event.lead_id].append(event)
        gate = asyncio.Semaphore(self.concurrency)

        async def deliver_in_order(stream: list[LoggedEvent]) -> None:
            async with gate:
                for event in stream:
                    await self.deliver(event)

        await asyncio.gather(*(deliver_in_order(stream) for stream in by_lead.values()))
        await asyncio.to_thread(self.positions.set, FOLLOWER_NAME, last)
        log.debug("delivered %d events up to position %d", len(events), last)
        return len(events)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
